"""``--lab`` before any lab is up, and on a file fresh from ``new``: one clear message and
the right exit code, as an operator would see them (no lab is needed for these)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLE = str(ROOT / "answers" / "examples" / "lab-small.yaml")


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"CROWBAR_LAB_DIR": str(tmp_path / "lab"),
                        "CROWBAR_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "wizard.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("command", "prefix"), [
    (["apply", EXAMPLE, "--lab"], "apply --lab"),
    (["chef", "push", EXAMPLE, "--lab"], "chef push --lab"),
    (["power", "ctl-1", "status", EXAMPLE, "--lab"], "power --lab"),
])
def test_without_a_lab_every_lab_command_says_none_is_up(tmp_path: Path, command: list[str],
                                                          prefix: str) -> None:
    done = cli(tmp_path, *command)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"{prefix}: no lab is up: run `crowbar-wizard lab up --nodes 6` first\n"
    assert not (tmp_path / "lab").exists(), "a command must not make a lab directory"


def test_apply_lab_on_a_new_file_says_what_it_lacks(tmp_path: Path) -> None:
    """A file made by ``new`` has no nodes and no barclamps: said as FILE:LINE:COL lines,
    exit 2, before looking for a lab at all."""
    made = tmp_path / "site.yaml"
    assert cli(tmp_path, "new", "--supernet", "10.20.0.0/16", "--nodes", "6",
               "-o", str(made)).returncode == 0
    done = cli(tmp_path, "apply", str(made), "--lab")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["barclamps", "nodes"]
    assert all(line.startswith(f"{made}:") for line in lines)
    assert "no nodes to deploy on the lab" in lines[1]
    assert "the provisioner barclamp is not selected" in lines[0]


def test_lab_status_without_a_lab(tmp_path: Path) -> None:
    done = cli(tmp_path, "lab", "status", "--json")
    assert done.returncode == 1
    assert '"chef": null' in done.stdout


def test_lab_rack_without_a_lab_or_with_no_count(tmp_path: Path) -> None:
    done = cli(tmp_path, "lab", "rack", "2")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("lab rack: no lab is running: `crowbar-wizard lab up --nodes N` "
                           "starts one\n")
    for bad in ("0", "-1", "two"):
        done = cli(tmp_path, "lab", "rack", bad)
        assert done.returncode == 2
        assert f"'{bad}' is not a whole number of at least 1" in done.stderr
    assert not (tmp_path / "lab").exists(), "a command must not make a lab directory"
