"""Exclusive locks that cannot go stale: ``fcntl.flock`` on a file that says who holds it.

The kernel drops a lock when its process ends, however it ends. The holder writes its
details (pid, host, since, and what the caller adds) into the file; :func:`holder` reads
them while the lock is held and returns None when nobody holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PATIENCE = 0.3
"""Seconds a taker tries for the lock: :func:`holder` takes it for a moment to look."""


class Locked(RuntimeError):
    """Somebody else holds the lock; ``who`` is what they wrote in it."""

    def __init__(self, path: Path, who: dict[str, Any]):
        super().__init__(f"{path} is held by pid {who.get('pid', '?')}")
        self.path, self.who = path, who


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def take(path: Path, info: dict[str, Any], patience: float = PATIENCE) -> int:
    """Take the lock on ``path`` (made if missing); the open descriptor that holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() < deadline:  # perhaps only a holder() look, gone at once
                time.sleep(0.01)
                continue
        who = _read(fd) or {}
        os.close(fd)
        raise Locked(path, who)
    details = {"pid": os.getpid(), "host": socket.gethostname(), "since": now()} | info
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(details) + "\n").encode(), 0)
    return fd


def release(fd: int) -> None:
    os.close(fd)  # closing the descriptor drops the lock


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds the lock on ``path`` now (None when nobody does)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read(fd: int) -> dict[str, Any] | None:
    try:
        found = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        return found if isinstance(found, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None
