"""Secrets in answers files: inline, or a reference as ``env:NAME`` or ``file:PATH``.

A :class:`Secret` never shows its value in ``repr``, ``str`` or errors; a reference is
resolved only when a driver needs the value (:meth:`Secret.reveal`).
"""

from __future__ import annotations

import os
import re
import stat

from pydantic import SecretStr

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_SECRET_BYTES = 64 * 1024
"""The largest secret file read: a PEM key is ~2 KiB; more is a wrong path, not a secret."""


class SecretError(ValueError):
    """A secret reference that cannot be resolved; the message never holds the value."""


class Secret(SecretStr):
    """A password or key, as written in the file: inline text or an env:/file: reference."""

    @property
    def reference(self) -> str | None:
        """``env:NAME`` or ``file:PATH`` when the secret is a reference, else None."""
        raw = self.get_secret_value()
        return raw if raw.startswith(("env:", "file:")) else None

    @property
    def is_inline(self) -> bool:
        return self.reference is None

    def check(self) -> None:
        """Raise :class:`SecretError` if a reference is malformed (not if it is unset)."""
        ref = self.reference
        if ref is None:
            if not self.get_secret_value():
                raise SecretError("secret is empty")
            return
        kind, _, target = ref.partition(":")
        if kind == "env" and not _ENV_NAME.match(target):
            raise SecretError(f"{ref!r} does not name an environment variable")
        if kind == "file" and not target:
            raise SecretError("'file:' needs a path after it")

    def reveal(self) -> str:
        """The secret's value, reading the environment or the file it references."""
        ref = self.reference
        if ref is None:
            return self.get_secret_value()
        kind, _, target = ref.partition(":")
        if kind == "env":
            value = os.environ.get(target)
            if value is None:
                raise SecretError(f"environment variable {target} is not set")
            return value
        return read_secret_file(target)

    def __repr__(self) -> str:
        shown = self.reference if self.reference else "**********"
        return f"Secret({shown!r})"


def read_secret_file(path: str | os.PathLike[str]) -> str:
    """The text of a secret file, without its trailing newlines.

    Only a regular file of at most :data:`MAX_SECRET_BYTES` of UTF-8 text without NUL is
    a secret: a device such as ``/dev/zero`` or a FIFO would be read forever (or block),
    and binary data cannot go into the text files and headers secrets end up in.
    Raises :class:`SecretError` naming the path, never the content.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SecretError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SecretError(f"{path} is not a regular file")
        try:
            data = file.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise SecretError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError(f"{path} is larger than {MAX_SECRET_BYTES // 1024} KiB: not a secret")
    if b"\0" in data:
        raise SecretError(f"{path} holds binary data (NUL bytes), not a secret")
    try:
        return data.decode("utf-8").rstrip("\n")
    except UnicodeDecodeError:
        raise SecretError(f"{path} is not UTF-8 text") from None
