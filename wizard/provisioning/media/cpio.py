"""A reproducible initramfs: the kernel's ``newc`` cpio format, written in a fixed order.

Every entry has owner root, one timestamp and an inode number from its place in the
archive, so the same files give the same bytes on any machine, whatever the build
directory's owners, times or file system; gzip's header carries no time either.
"""

from __future__ import annotations

import gzip
import io
import stat
from dataclasses import dataclass

TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One file, directory or symbolic link (``data`` is a link's target)."""

    path: str
    mode: int
    data: bytes = b""


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def regular(path: str, data: bytes, executable: bool = False) -> Entry:
    return Entry(path, stat.S_IFREG | (0o755 if executable else 0o644), data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def archive(entries: list[Entry], mtime: int = 0) -> bytes:
    """The gzip-compressed newc archive of ``entries``, sorted by path, with every parent
    directory present (the kernel makes none on its own)."""
    by_path = {entry.path.strip("/"): entry for entry in entries}
    for path in list(by_path):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            by_path.setdefault("/".join(parts[:depth]), directory("/".join(parts[:depth])))
    raw = io.BytesIO()
    for inode, path in enumerate(sorted(by_path), start=1):
        entry = by_path[path]
        _write(raw, path, entry.mode, entry.data, inode, mtime)
    _write(raw, TRAILER, 0, b"", 0, 0)
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


def _write(out: io.BytesIO, name: str, mode: int, data: bytes, inode: int, mtime: int) -> None:
    encoded = name.encode() + b"\0"
    links = 2 if stat.S_ISDIR(mode) else 1
    fields = [inode, mode, 0, 0, links, mtime, len(data), 0, 0, 0, 0, len(encoded), 0]
    out.write(b"070701" + b"".join(b"%08X" % value for value in fields))
    out.write(encoded)
    out.write(b"\0" * (-(110 + len(encoded)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))
