"""pxe serve's store across versions: what an earlier version kept in its directory
(``state.db``, before that ``state.json``) is taken into the site's journal, once."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard.engine.journal import Journal
from wizard.engine.journal_states import JournalStates
from wizard.hardware.inventory import DiscoveredNode, Inventory, InventoryReport
from wizard.provisioning.state import StoreError

STATE_DB_SCHEMA = """
CREATE TABLE nodes (name TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE claims (
    node TEXT NOT NULL, what TEXT NOT NULL, epoch INTEGER NOT NULL, at TEXT NOT NULL,
    holder TEXT, PRIMARY KEY (node, what, epoch));
CREATE TABLE reports (seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
CREATE TABLE imported (seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
"""
"""``state.db`` as the last version with it made it."""
OLDEST_STATE_DB_SCHEMA = """
CREATE TABLE nodes (name TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE claims (
    node TEXT NOT NULL, what TEXT NOT NULL, epoch INTEGER NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (node, what, epoch));
CREATE TABLE reports (seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
"""
"""``state.db`` as the first versions made it: no claim holders, nothing taken over."""
FOUND = DiscoveredNode(serial="SN-9", macs=["52:54:00:aa:bb:09"], cpu_cores=8, memory_gb=32,
                       disks=2, virtualization=True, sources={"pxe"})
"""A machine ``state.json`` held, as a discovery report made it."""
REPORT = InventoryReport(mac="52:54:00:aa:bb:07", macs=["52:54:00:aa:bb:07"], serial="SN-7",
                         cpu_cores=4, memory_gb=16, disks=1)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "state" / "journal.db", command="pxe serve") as journal:
        yield journal


def state_db(directory: Path, schema: str = STATE_DB_SCHEMA) -> sqlite3.Connection:
    directory.mkdir(exist_ok=True)
    db = sqlite3.connect(directory / "state.db", isolation_level=None)
    db.executescript(schema)
    return db


def test_an_earlier_state_db_is_taken_over(tmp_path: Path, journal: Journal) -> None:
    """Nothing lost on upgrade: node states, the claims (so a node's epoch, and with it
    which install token is dead, stays as it was), discovered machines; the file is
    renamed, so it is taken once, and one line says what was taken."""
    pxe = tmp_path / "pxe"
    db = state_db(pxe)
    db.execute("INSERT INTO nodes VALUES ('ctl-1', 'installed')")
    db.executemany("INSERT INTO claims VALUES (?, ?, ?, 'then', ?)", [
        ("ctl-1", "client-key", 0, "digest-a"), ("ctl-1", "installed", 0, None),
        ("compute-1", "install-boot", 0, None), ("compute-1", "client-key", 1, "digest-b")])
    db.execute("INSERT INTO imported (data) VALUES (?)", (json.dumps(FOUND.to_dict()),))
    db.execute("INSERT INTO reports (data) VALUES (?)", (REPORT.model_dump_json(),))
    db.execute("INSERT INTO reports (data) VALUES (?)",  # refused by this version's checks
               (json.dumps(REPORT.model_dump(mode="json") | {"cpu_cores": 0}),))
    db.close()
    states = JournalStates(journal)
    line = states.take_over(pxe)
    assert line is not None and str(pxe / "state.db") in line and "(1 left out" in line
    assert not (pxe / "state.db").exists() and (pxe / "state.db.imported").exists()
    assert journal.states() == {"ctl-1": ("installed", None),
                                FOUND.name: ("discovered", None),
                                "d52-54-00-aa-bb-07": ("discovered", None)}
    assert (journal.epoch("ctl-1"), journal.epoch("compute-1")) == (1, 1)
    assert journal.claim("compute-1", "client-key", "digest-b")  # the same node retrying
    assert not journal.claim("compute-1", "client-key", "digest-c")
    expected = Inventory()
    expected.restore(FOUND)
    expected.add_report(REPORT)
    replayed = JournalStates(journal).inventory  # as the next start reads the journal
    assert [n.to_dict() for n in replayed.nodes] == [n.to_dict() for n in expected.nodes]
    assert [n.to_dict() for n in states.inventory.nodes] == [n.to_dict() for n in expected.nodes]
    assert states.take_over(pxe) is None  # taken once


def test_an_earlier_state_json_is_taken_over(tmp_path: Path, journal: Journal) -> None:
    """An installed node stays installed (it must not be offered its installer again),
    discovered machines stay discovered, and the old file is renamed so it is taken over
    once."""
    pxe = tmp_path / "pxe"
    pxe.mkdir()
    legacy = pxe / "state.json"
    legacy.write_text(json.dumps({"states": {"ctl-1": "installed"},
                                  "discovered": [FOUND.to_dict()]}))
    state = JournalStates(journal)
    assert state.take_over(pxe) is not None
    assert state.state("ctl-1") == "installed"
    assert [n.to_dict() for n in state.inventory.nodes] == [FOUND.to_dict()]
    assert not legacy.exists() and (pxe / "state.json.imported").exists()
    assert state.take_over(pxe) is None
    again = JournalStates(journal)  # as the next start reads it
    assert again.state("ctl-1") == "installed" and len(again.inventory.nodes) == 1
    assert again.inventory.find("SN-9", [], None) is again.inventory.nodes[0]
    assert again.state(FOUND.name) == "discovered"


def test_the_journal_keeps_what_it_has_seen_further_on(tmp_path: Path,
                                                       journal: Journal) -> None:
    """A node the journal has further on than the earlier store keeps its state; one the
    earlier store has further on (installed while apply last saw it installing) takes it:
    neither is offered its installer again."""
    journal.transition("ctl-1", "ready")
    journal.transition("compute-1", "installing")
    db = state_db(tmp_path / "pxe")
    db.executemany("INSERT INTO nodes VALUES (?, 'installed')", [("ctl-1",), ("compute-1",)])
    db.close()
    JournalStates(journal).take_over(tmp_path / "pxe")
    assert journal.state("ctl-1") == "ready" and journal.state("compute-1") == "installed"


def test_an_unreadable_earlier_store_is_one_error_and_changes_nothing(
        tmp_path: Path, journal: Journal) -> None:
    pxe = tmp_path / "pxe"
    pxe.mkdir()
    legacy = pxe / "state.json"
    legacy.write_text("{not json")
    with pytest.raises(StoreError, match=r"cannot take over .*state\.json: .*move it aside"):
        JournalStates(journal).take_over(pxe)
    assert legacy.exists() and journal.events() == []
    (pxe / "state.db").write_text("not a database, but long enough to be read as one" * 20)
    with pytest.raises(StoreError, match=r"cannot take over .*state\.db"):
        JournalStates(journal).take_over(pxe)
    assert (pxe / "state.db").exists() and journal.events() == []


@pytest.mark.parametrize("store", ["state.db", "journal"])
def test_claims_made_by_an_earlier_version_stay_claimed(tmp_path: Path, store: str) -> None:
    """A claims table without the ``holder`` column (before a node could retry its key):
    its claims still hold, and a claim with a holder can be made again only by that holder,
    whether the table is an earlier journal's or an earlier ``pxe serve``'s ``state.db``."""
    if store == "state.db":
        db = state_db(tmp_path, OLDEST_STATE_DB_SCHEMA)
        path = tmp_path / "journal.db"
    else:
        path = tmp_path / "journal.db"
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("CREATE TABLE claims (node TEXT NOT NULL, what TEXT NOT NULL, "
                   "epoch INTEGER NOT NULL, at TEXT NOT NULL, PRIMARY KEY (node, what, epoch))")
    db.execute("INSERT INTO claims VALUES ('ctl-1', 'client-key', 0, 'then')")
    db.close()
    with Journal.open(path) as opened:
        if store == "state.db":
            assert JournalStates(opened).take_over(tmp_path) is not None
        assert not opened.claim("ctl-1", "client-key", "digest-a")
        assert opened.claim("ctl-2", "client-key", "digest-a")
        assert opened.claim("ctl-2", "client-key", "digest-a")
        assert not opened.claim("ctl-2", "client-key", "digest-b")
        assert opened.claim("ctl-3", "client-key")
        assert not opened.claim("ctl-3", "client-key")  # no holder: never again
