"""The wizard on the terminals an admin node meets: a 256-color xterm over SSH, and the
Linux console or a vt100 without a mouse or 256 colors (a real pty, 80x24)."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
EXAMPLE = Path("answers/examples/lab-small.yaml").resolve()
MOUSE_ON = (b"\x1b[?1000h", b"\x1b[?1003h", b"\x1b[?1006h")


def first_screen(term: str, tmp_path: Path) -> bytes:
    """What the wizard writes to a terminal of type ``term`` in its first seconds."""
    (tmp_path / "lab.yaml").write_text(EXAMPLE.read_text())
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR")}
    env |= {"TERM": term, "CROWBAR_STATE_DIR": str(tmp_path / "state")}
    process = subprocess.Popen([sys.executable, "-m", "wizard.cli", "wizard", "lab.yaml"],
                               cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave, env=env,
                               start_new_session=True)
    os.close(slave)
    screen = bytearray()
    try:
        deadline = time.monotonic() + 30
        while b"Review & save" not in screen or b"valid" not in screen:
            assert time.monotonic() < deadline and process.poll() is None, screen[-500:]
            if select.select([master], [], [], 0.1)[0]:
                screen.extend(os.read(master, 65536))
    finally:
        process.kill()
        process.wait()
        os.close(master)
    return bytes(screen)


def test_an_xterm_gets_256_colors_and_the_mouse(tmp_path: Path) -> None:
    screen = first_screen("xterm-256color", tmp_path)
    assert b"38;5;" in screen and any(code in screen for code in MOUSE_ON)


@pytest.mark.parametrize("term", ["linux", "vt100"])
def test_a_console_gets_plain_colors_and_no_mouse(term: str, tmp_path: Path) -> None:
    screen = first_screen(term, tmp_path)
    assert b"38;5;" not in screen and b"38;2;" not in screen
    assert not any(code in screen for code in MOUSE_ON)
    assert b"Crowbar Wizard" in screen
