"""Secrets in answers files: inline, or a reference as ``env:NAME`` or ``file:PATH``.

A :class:`Secret` never shows its value in ``repr``, ``str`` or errors; a reference is
resolved only when a driver needs the value (:meth:`Secret.reveal`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import SecretStr

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
        try:
            return Path(target).read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise SecretError(f"cannot read {target}: {exc.strerror}") from None

    def __repr__(self) -> str:
        shown = self.reference if self.reference else "**********"
        return f"Secret({shown!r})"
