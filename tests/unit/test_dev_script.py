"""``./dev lab``: what it runs, with stand-ins for the venv's tools (no setup, no lab)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.terminal import PtySession

ROOT = Path(__file__).resolve().parents[2]


def dev_checkout(tmp_path: Path) -> Path:
    """A copy of ``dev`` whose venv is set up already and whose ``crowbar-wizard`` writes
    its arguments to ``calls`` (the lab: not running)."""
    if subprocess.run(["dpkg-query", "-W", "-f=${Status}", "goiardi"], capture_output=True,
                      text=True).stdout != "install ok installed":
        pytest.skip("goiardi is not installed (./dev deps installs it): ./dev lab would")
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").symlink_to(sys.executable)
    wizard = bin_ / "crowbar-wizard"
    wizard.write_text(f"""#!/bin/sh
echo "$*" >> {tmp_path / "calls"}
[ "$1 $2" != "lab status" ] || echo '{{"running": false}}'
""")
    wizard.chmod(0o755)
    stamp = tmp_path / ".venv" / ".installed"
    stamp.touch()
    later = time.time() + 5
    os.utime(stamp, (later, later))  # newer than pyproject.toml: no pip install
    return tmp_path


def test_dev_lab_at_a_terminal_opens_the_lab_example(tmp_path: Path) -> None:
    """Not the newest file in answers/ (the lab's example is what the README promises)."""
    checkout = dev_checkout(tmp_path)
    (checkout / "answers").mkdir()
    (checkout / "answers" / "site.yaml").write_text("site: {}\n")
    session = PtySession.start(["bash", str(checkout / "dev"), "lab"], os.environ)
    try:
        assert session.process.wait(timeout=60) == 0
    finally:
        session.close()
    calls = (checkout / "calls").read_text().splitlines()
    assert "wizard --lab" in calls, calls
