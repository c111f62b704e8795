"""The wizard on the terminals an admin node meets: a 256-color xterm over SSH, and the
Linux console or a vt100 without a mouse or 256 colors (a real pty, 80x24)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.terminal import PtySession

pytestmark = pytest.mark.slow
EXAMPLE = Path("answers/examples/lab-small.yaml").resolve()
MOUSE_ON = (b"\x1b[?1000h", b"\x1b[?1003h", b"\x1b[?1006h")


def first_screen(term: str, tmp_path: Path) -> bytes:
    """What the wizard writes to a terminal of type ``term`` in its first seconds."""
    (tmp_path / "lab.yaml").write_text(EXAMPLE.read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR")}
    env |= {"TERM": term, "CROWBAR_STATE_DIR": str(tmp_path / "state")}
    session = PtySession.start([sys.executable, "-m", "wizard.cli", "wizard", "lab.yaml"],
                               env, cwd=tmp_path)
    try:
        session.wait_for(b"Review & save")
        session.wait_for(b"valid")
    finally:
        session.close()
    return bytes(session.screen)


def test_an_xterm_gets_256_colors_and_the_mouse(tmp_path: Path) -> None:
    screen = first_screen("xterm-256color", tmp_path)
    assert b"38;5;" in screen and any(code in screen for code in MOUSE_ON)


@pytest.mark.parametrize("term", ["linux", "vt100"])
def test_a_console_gets_plain_colors_and_no_mouse(term: str, tmp_path: Path) -> None:
    screen = first_screen(term, tmp_path)
    assert b"38;5;" not in screen and b"38;2;" not in screen
    assert not any(code in screen for code in MOUSE_ON)
    assert b"Crowbar Wizard" in screen
