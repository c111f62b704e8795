"""Writing inside a directory this tool owns without following a symbolic link out of it.

Whoever can plant a link in such a tree (``DIR/http -> /etc``, a dangling
``DIR/dnsmasq/leases -> /root/.bashrc``) must not get a write elsewhere, least of all one
made as root. So, below the tree's root (which the operator names, and may well be a
link): directories are real directories or refused; files are created with ``O_EXCL`` or
``O_NOFOLLOW``, or written to an unpredictable temp file and renamed over the target (a
rename replaces a link, it never writes through one). These are checks, then uses: they
stop links planted beforehand, not one raced in between by a process that can write the
tree, which could as well replace the files themselves.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


class LinkError(OSError):
    """A path inside an owned tree is a symbolic link (or not a directory) where we write."""


def _refuse(path: Path) -> LinkError:
    return LinkError(f"{path} is a symbolic link: crowbar-wizard does not write through links "
                     "inside the directories it owns; remove it")


def real_dir(path: Path, root: Path, mode: int = 0o755) -> Path:
    """Make ``path`` and every directory between ``root`` and it real directories (created
    when missing); raise :class:`LinkError` when one is a link or not a directory."""
    path, root = Path(path), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            os.mkdir(current, mode)  # never follows: a link there is EEXIST
            continue
        except FileExistsError:
            pass
        info = os.lstat(current)
        if stat.S_ISLNK(info.st_mode):
            raise _refuse(current)
        if not stat.S_ISDIR(info.st_mode):
            raise LinkError(f"{current} is not a directory")
    return path


def _open(path: Path, flags: int, mode: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if os.path.islink(path):
            raise _refuse(path) from None
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def write_new(path: Path, data: str | bytes, mode: int) -> None:
    """Create ``path`` (it must not exist, not even as a dangling link) holding ``data``."""
    fd = _open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data.encode() if isinstance(data, str) else data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def open_append(path: Path, mode: int = 0o644) -> BinaryIO:
    """``path`` opened to append (a log), made if missing; a link there is refused."""
    return os.fdopen(_open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode), "ab")


def touch(path: Path, mode: int = 0o644) -> None:
    """Make ``path`` exist (kept as it is if it does); a link there is refused."""
    os.close(_open(path, os.O_WRONLY | os.O_CREAT, mode))


def read_text(path: Path) -> str:
    """``path``'s text, not read through a link (what a link points to is not ours)."""
    with os.fdopen(_open(path, os.O_RDONLY, 0), encoding="utf-8") as handle:
        return handle.read()


def copy_file(source: Path, target: Path, mode: int = 0o644) -> None:
    """Copy ``source`` to ``target`` through a temp file renamed over it: a link at
    ``target`` is replaced by the copy, never written through."""
    import tempfile

    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
