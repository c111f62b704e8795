"""Who controls the wizard: one session at a time edits the answers and drives apply.

Every other session (another console, another SSH login, the browser view) observes: it
sees the same answers and live progress, read-only. Control is a lock (:mod:`wizard.base.filelock`)
in the state directory shared by all sessions, so it is released when the controller's
process ends, however it ends. Taking control over asks the controller's process, by
SIGUSR1, to hand it on; it keeps its unsaved edits in the draft and becomes an observer.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from wizard.base import filelock
from wizard.engine.paths import control_lock

HANDOVER = signal.SIGUSR1
"""What a controller is sent when another session takes control over."""


def control_path() -> Path:
    """The control lock, beside every site's state (see ``crowbar-wizard status --help``)."""
    path = control_lock()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def this_session(kind: str = "terminal") -> dict[str, Any]:
    """How this session names itself to the others: user, terminal, SSH client address."""
    info: dict[str, Any] = {"user": getpass.getuser(), "kind": kind}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        info["tty"] = os.ttyname(sys.stdin.fileno())
    client = os.environ.get("SSH_CLIENT", "").split()
    if client:
        info["from"] = client[0]
    return info


def describe(who: dict[str, Any]) -> str:
    """``crowbar on /dev/pts/3 from 10.0.0.5, since 14:02:11``."""
    words = [str(who.get("user", "somebody"))]
    if who.get("tty"):
        words.append(f"on {who['tty']}")
    if who.get("from"):
        words.append(f"from {who['from']}")
    elif who.get("kind") == "web":
        words.append("in a browser")
    since = str(who.get("since", ""))[11:19]
    return " ".join(words) + (f", since {since} UTC" if since else "")


class Control:
    """This process's hold on control (or its lack of it)."""

    def __init__(self, info: dict[str, Any], path: Path | None = None):
        self.info = info
        self.path = path or control_path()
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_take(self) -> bool:
        """Take control if nobody has it; whether this process holds it now."""
        if self._fd is None:
            try:
                self._fd = filelock.take(self.path, self.info)
            except filelock.Locked:
                return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            filelock.release(self._fd)
            self._fd = None

    def controller(self) -> dict[str, Any] | None:
        """Who has control (None when nobody has; this process's details when it has)."""
        return self.info if self.held else filelock.holder(self.path)

    def take_over(self, wait: float = 5.0) -> bool:
        """Ask the controller to hand control on, then take it (False if it did not)."""
        who = filelock.holder(self.path)
        if who is not None and who.get("host") == socket.gethostname():
            with contextlib.suppress(ProcessLookupError, PermissionError, KeyError, ValueError):
                os.kill(int(who["pid"]), HANDOVER)
        deadline = time.monotonic() + wait
        while not self.try_take():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
