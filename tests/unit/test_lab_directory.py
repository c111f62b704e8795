"""The lab never removes a directory that is not a lab's."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.lab.control import Lab, LabError, lab_directory


def test_down_leaves_a_directory_that_holds_no_lab(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    assert Lab(tmp_path).down() is False
    assert (tmp_path / "precious.txt").read_text() == "mine"


def test_up_refuses_a_directory_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    with pytest.raises(LabError, match="holds no lab"):
        Lab(tmp_path).up(1)
    assert (tmp_path / "precious.txt").exists()


def test_an_empty_lab_dir_setting_is_not_the_current_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CROWBAR_LAB_DIR", "")
    assert lab_directory() != Path() and lab_directory().is_absolute()
    monkeypatch.setenv("CROWBAR_LAB_DIR", "rel/lab")
    assert lab_directory() == tmp_path / "rel" / "lab"
