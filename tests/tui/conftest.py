"""What every TUI test shares: its own directory with the lab example as ``lab.yaml``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.helpers import LAB


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test in its own directory, where the lab example is ``lab.yaml`` (a relative
    path, so snapshots are the same anywhere); its own state (the control lock, journals)
    and lab directories, so no journal but the test's own is seen."""
    monkeypatch.chdir(tmp_path)
    Path("lab.yaml").write_text(LAB.read_text())
    monkeypatch.setenv("CROWBAR_LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setenv("CROWBAR_STATE_DIR", str(tmp_path / "state"))
