"""pxe serve's store across versions: an earlier version's ``state.json`` is taken over."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from wizard.engine.journal import Journal
from wizard.hardware.inventory import DiscoveredNode
from wizard.provisioning.state import ProvisionerState, StoreError


def test_an_earlier_state_json_is_taken_over(tmp_path: Path) -> None:
    """Nothing lost on upgrade: an installed node stays installed (it must not be offered
    its installer again), discovered machines stay discovered, and the old file is renamed
    so it is taken over once."""
    found = DiscoveredNode(serial="SN-9", macs=["52:54:00:aa:bb:09"], cpu_cores=8,
                           memory_gb=32, sources={"pxe"})
    legacy = tmp_path / "state.json"
    legacy.write_text(json.dumps({"states": {"ctl-1": "installed"},
                                  "discovered": [found.to_dict()]}))
    state = ProvisionerState(tmp_path / "state.db")
    assert state.state("ctl-1") == "installed"
    assert [n.to_dict() for n in state.inventory.nodes] == [found.to_dict()]
    assert not legacy.exists() and (tmp_path / "state.json.imported").exists()
    state.close()
    again = ProvisionerState(tmp_path / "state.db")
    assert again.state("ctl-1") == "installed" and len(again.inventory.nodes) == 1
    assert again.inventory.find("SN-9", [], None) is again.inventory.nodes[0]
    again.close()


def test_an_unreadable_state_json_is_one_error_and_changes_nothing(tmp_path: Path) -> None:
    legacy = tmp_path / "state.json"
    legacy.write_text("{not json")
    with pytest.raises(StoreError, match=r"cannot take over .*state\.json"):
        ProvisionerState(tmp_path / "state.db")
    assert legacy.exists() and not (tmp_path / "state.db").exists()


@pytest.mark.parametrize("store", ["pxe serve", "journal"])
def test_claims_made_by_an_earlier_version_stay_claimed(tmp_path: Path, store: str) -> None:
    """A claims table without the ``holder`` column (before a node could retry its key)
    gets one: its claims still hold, and a claim with a holder can be made again only by
    that holder."""
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE claims (node TEXT NOT NULL, what TEXT NOT NULL, "
                   "epoch INTEGER NOT NULL, at TEXT NOT NULL, PRIMARY KEY (node, what, epoch))")
        db.execute("INSERT INTO claims VALUES ('ctl-1', 'client-key', 0, 'then')")
    db.close()
    opened = ProvisionerState(path) if store == "pxe serve" else Journal.open(path)
    try:
        assert not opened.claim("ctl-1", "client-key", "digest-a")
        assert opened.claim("ctl-2", "client-key", "digest-a")
        assert opened.claim("ctl-2", "client-key", "digest-a")
        assert not opened.claim("ctl-2", "client-key", "digest-b")
        assert opened.claim("ctl-3", "client-key")
        assert not opened.claim("ctl-3", "client-key")  # no holder: never again
    finally:
        opened.close()
