"""``crowbar-wizard example``: the shipped examples, listed and copied out to start from
(a plain install has no checkout whose answers/examples/ one could copy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.answers import load
from wizard.answers.examples import LAB_EXAMPLE, examples
from wizard.cli.main import main

ROOT = Path(__file__).parents[2]


def test_the_examples_are_the_checkouts() -> None:
    assert sorted(examples()) == sorted(p.stem for p in (ROOT / "answers/examples").glob("*.yaml"))
    assert examples()["lab-small"] == LAB_EXAMPLE


def test_without_a_name_it_lists_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["hadoop", "lab-small", "openstack"]
    assert "the built-in lab" in lines[1]


def test_a_name_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example", "hadoop"]) == 0
    assert capsys.readouterr().out == examples()["hadoop"].read_text()


def test_output_writes_a_copy_that_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["example", "lab-small", "-o", "answers/lab.yaml"]) == 0
    copy = tmp_path / "answers/lab.yaml"
    assert copy.read_text() == LAB_EXAMPLE.read_text()  # comments and all
    assert copy.stat().st_mode & 0o777 == 0o644
    assert "wrote answers/lab.yaml" in capsys.readouterr().out
    assert load(copy).site.name == "lab"
    assert main(["validate", "-q", str(copy)]) == 0


def test_an_existing_file_needs_force(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "site.yaml"
    mine.write_text("mine\n")
    assert main(["example", "openstack", "-o", str(mine)]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert mine.read_text() == "mine\n"
    assert main(["example", "openstack", "-o", str(mine), "--force"]) == 0
    assert mine.read_text() == examples()["openstack"].read_text()


def test_an_unknown_name_says_which_there_are(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example", "lab"]) == 2
    assert capsys.readouterr().err == ("crowbar-wizard example: no example 'lab' "
                                       "(the examples: hadoop, lab-small, openstack)\n")

def test_wizard_with_a_file_and_lab_says_so_in_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wizard", "x.yaml", "--lab"]) == 2
    assert capsys.readouterr().err == "crowbar-wizard wizard: FILE or --lab, not both\n"
