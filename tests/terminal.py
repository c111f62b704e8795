"""Tests' terminals: a command run on a real pseudo-terminal of a given size, read and
typed into as a person at a terminal would; and waiting for a daemon's port."""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def set_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


@dataclass
class PtySession:
    """One process on a pty; ``screen`` is all it printed so far."""

    process: subprocess.Popen[bytes]
    master: int
    screen: bytearray = field(default_factory=bytearray)

    @classmethod
    def start(cls, command: Sequence[str], env: Mapping[str, str], *,
              cwd: Path | None = None, rows: int = 24, columns: int = 80) -> PtySession:
        master, slave = os.openpty()
        set_size(slave, rows, columns)
        process = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdin=slave,
                                   stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        return cls(process, master)

    def read(self, seconds: float) -> None:
        """Take in what it prints for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self.screen.extend(os.read(self.master, 65536))
                except OSError:
                    return

    def wait_for(self, text: bytes, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.screen:
            assert time.monotonic() < deadline, f"{text!r} not seen: {bytes(self.screen[-800:])!r}"
            assert self.process.poll() is None, bytes(self.screen[-800:])
            self.read(0.2)

    def keys(self, *keys: bytes) -> None:
        for key in keys:
            os.write(self.master, key)
            self.read(0.3)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


def wait_listening(port: int, process: subprocess.Popen, seconds: float = 20) -> None:
    """Until something listens on 127.0.0.1:``port`` (``process`` must not end first)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
