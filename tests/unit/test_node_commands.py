"""``node release`` and ``node reinstall`` refuse bad input with one clear error, exit 2, and
change nothing: neither the answers file nor any state (the state directory stays empty)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wizard.answers import load
from wizard.answers.addressing import node_addresses
from wizard.cli.main import main
from wizard.cli.node import _with, without

EXAMPLE = Path("answers/examples/lab-small.yaml")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")
    monkeypatch.setenv("CROWBAR_STATE_DIR", str(tmp_path / "state"))
    answers = tmp_path / "lab-small.yaml"
    shutil.copy(EXAMPLE, answers)
    return answers


def refused(argv: list[str], site: Path, capsys: pytest.CaptureFixture[str]) -> str:
    before = site.read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert site.read_bytes() == before, "the answers file is unchanged"
    assert not (site.parent / "state").exists(), "no state was made"
    assert err.count("\n") == 1, f"one line: {err!r}"
    return err


@pytest.mark.parametrize("action", ["release", "reinstall"])
def test_an_unknown_node_is_refused(action: str, site: Path, capsys) -> None:
    err = refused(["node", action, "compute-9", str(site)], site, capsys)
    assert err == (f"node: {site} (site lab) has no node 'compute-9'; its nodes: ctl-1, "
                   "compute-1, compute-2, compute-3, storage-1, storage-2; nothing was "
                   "changed\n")


@pytest.mark.parametrize("action", ["release", "reinstall"])
def test_the_admin_node_is_refused(action: str, site: Path, capsys) -> None:
    err = refused(["node", action, "admin", str(site)], site, capsys)
    assert "admin is the admin node of site lab" in err


def test_a_node_of_another_site_is_refused(site: Path, capsys) -> None:
    """data-1 is a node of the hadoop example's site, not of this one."""
    assert "data-1" in Path("answers/examples/hadoop.yaml").read_text()
    err = refused(["node", "release", "data-1", str(site)], site, capsys)
    assert "(site lab) has no node 'data-1'" in err


def test_a_release_that_leaves_a_role_short_is_refused_without_force(site: Path,
                                                                     capsys) -> None:
    err = refused(["node", "release", "ctl-1", str(site)], site, capsys)
    assert err.startswith("node: releasing ctl-1 leaves database role database-server needs "
                          "at least 1 node, 0 assigned; ")
    assert "; keystone role keystone-server needs at least 1 node, 0 assigned; " in err
    assert err.endswith("(give those roles another node first, or --force); nothing was "
                        "changed\n")


def test_reinstalling_a_node_never_deployed_is_refused(site: Path, capsys) -> None:
    err = refused(["node", "reinstall", "compute-1", str(site)], site, capsys)
    assert err == ("node: compute-1 was never deployed (not in the journal): `apply` "
                   "deploys it; nothing was changed\n")


def test_a_release_renumbers_no_other_node(site: Path) -> None:
    """Addresses are handed out in node order: the nodes after the one released keep
    theirs, pinned; those before need no pin."""
    answers = load(site)
    data = without(answers, "compute-2")
    shrunk = _with(answers, data)
    assert shrunk is not None
    before, after = node_addresses(answers), node_addresses(shrunk)
    assert set(after) == set(before) - {"compute-2"}
    assert all(after[name] == before[name] for name in after), "nobody moved"
    pinned = {n["name"] for n in data["nodes"] if n.get("addresses")}
    assert pinned == {"compute-3", "storage-1", "storage-2"}
