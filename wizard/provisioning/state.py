"""What the provisioner remembers between requests: node states, install claims, discoveries.

:class:`NodeStates` is what the HTTP service needs of a store; ``pxe serve`` keeps one in
SQLite in its directory (:class:`ProvisionerState`), ``apply`` in its journal.

An install's secrets are usable once. A node's callback token is derived from its install
*epoch*: each one-time capability of an install (registering its Chef client key, saying
it is installed) is *claimed* in the current epoch and refused after. Two claims start the
next epoch: ``installed`` (the install is over: the token in its files and logs opens
nothing any more) and ``install-boot`` (the node PXE-boots its installer again, from its
own address: a new attempt, with a new token and its claims still to make).

Inventory reports are appended, one row each, never a rewrite of everything known.

Earlier versions kept this in ``state.json``; the first start on such a directory takes
its node states and discovered machines over (an installed node must not be offered its
installer again) and renames it ``state.json.imported``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Protocol

from wizard.base import filelock
from wizard.hardware.inventory import DiscoveredNode, Inventory, InventoryReport

INSTALLED = "installed"
"""The claim that ends an install (and its token)."""
INSTALL_BOOT = "install-boot"
"""The claim that starts a new attempt at an install."""
EPOCH_CLAIMS = (INSTALLED, INSTALL_BOOT)
"""The claims that end an epoch: a node's epoch is how many of them it has made."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
    node TEXT NOT NULL, what TEXT NOT NULL, epoch INTEGER NOT NULL, at TEXT NOT NULL,
    holder TEXT, PRIMARY KEY (node, what, epoch));
CREATE TABLE IF NOT EXISTS reports (seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS imported (seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
"""
LEGACY = "state.json"
"""Where earlier versions kept this store, beside it."""


class StoreError(RuntimeError):
    """The store cannot be written (a full disk, an I/O error); the message names its path."""


class NodeStates(Protocol):
    """A store of node states, install claims and discovered machines; a write that
    fails raises :class:`StoreError`."""

    inventory: Inventory

    def state(self, node: str) -> str | None: ...

    def set_state(self, node: str, state: str) -> None: ...

    def epoch(self, node: str) -> int: ...

    def claim(self, node: str, what: str, holder: str | None = None) -> bool: ...

    def add_report(self, report: InventoryReport) -> tuple[DiscoveredNode, bool]: ...


class ProvisionerState:
    """``pxe serve``'s store: a SQLite file (0600) in the provisioner's directory."""

    def __init__(self, path: Path):
        self.path = path
        self.inventory = Inventory()
        self._db: sqlite3.Connection | None = None
        legacy = path.with_name(LEGACY)
        if legacy.exists() and not path.exists():
            self._import(legacy)
        if path.exists():
            db = self._connect()
            for (data,) in db.execute("SELECT data FROM imported ORDER BY seq"):
                self.inventory.restore(DiscoveredNode.from_dict(json.loads(data)))
            for (data,) in db.execute("SELECT data FROM reports ORDER BY seq"):
                with contextlib.suppress(ValueError):  # a report rejected since: left out
                    self.inventory.add_report(InventoryReport.model_validate_json(data))

    def _import(self, legacy: Path) -> None:
        """Take over an earlier version's ``state.json``, then rename it."""
        try:
            data = json.loads(legacy.read_text(encoding="utf-8"))
            states = dict(data.get("states", {}))
            discovered = [DiscoveredNode.from_dict(n).to_dict()
                          for n in data.get("discovered", [])]
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise StoreError(f"cannot take over {legacy}: {exc}") from None
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO nodes (name, state) VALUES (?, ?)",
                           states.items())
            db.executemany("INSERT INTO imported (data) VALUES (?)",
                           [(json.dumps(node, sort_keys=True),) for node in discovered])
        legacy.rename(legacy.with_name(LEGACY + ".imported"))

    def _connect(self) -> sqlite3.Connection:
        """The database, made (0600) on the first write: a refused request writes nothing."""
        if self._db is None:
            self.path.touch(mode=0o600, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.executescript(_SCHEMA)
            add_holder_column(self._db)
        return self._db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back already (disk full)
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot write {self.path}: {exc}") from None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def state(self, node: str) -> str | None:
        if self._db is None and not self.path.exists():
            return None
        row = self._connect().execute("SELECT state FROM nodes WHERE name = ?",
                                      (node,)).fetchone()
        return row[0] if row else None

    def set_state(self, node: str, state: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO nodes (name, state) VALUES (?, ?) ON CONFLICT (name) "
                       "DO UPDATE SET state = excluded.state", (node, state))

    def epoch(self, node: str) -> int:
        if self._db is None and not self.path.exists():
            return 0
        return epoch_of(self._connect(), node)

    def claim(self, node: str, what: str, holder: str | None = None) -> bool:
        """See :func:`make_claim`: True when made now, or made before by ``holder``."""
        with self._transaction() as db:
            return make_claim(db, node, what, filelock.now(), holder) != "used"

    def add_report(self, report: InventoryReport) -> tuple[DiscoveredNode, bool]:
        node, new = self.inventory.add_report(report)  # a conflict raises: nothing stored
        with self._transaction() as db:
            db.execute("INSERT INTO reports (data) VALUES (?)",
                       (json.dumps(report.model_dump(mode="json"), sort_keys=True),))
        return node, new


def epoch_of(db: sqlite3.Connection, node: str) -> int:
    """``node``'s epoch in a database with a ``claims`` table (this store's or the journal's)."""
    row = db.execute("SELECT COUNT(*) FROM claims WHERE node = ? AND what IN (?, ?)",
                     (node, *EPOCH_CLAIMS)).fetchone()
    return int(row[0])


def add_holder_column(db: sqlite3.Connection) -> None:
    """Give a claims table made by an earlier version its ``holder`` column."""
    if "holder" not in {row[1] for row in db.execute("PRAGMA table_info(claims)")}:
        db.execute("ALTER TABLE claims ADD COLUMN holder TEXT")


def make_claim(db: sqlite3.Connection, node: str, what: str, at: str,
               holder: str | None = None) -> Literal["made", "again", "used"]:
    """Use up ``what`` for ``node``'s current epoch, in ``db``'s open transaction.

    ``again``: ``holder`` (say, the digest of the key a node posts) made this claim before.
    That is the same node retrying a request whose answer it lost when the admin node
    stopped halfway; refusing it would leave the install stuck until its timeout. A claim
    made without a holder can never be made again.
    """
    epoch = epoch_of(db, node)
    if db.execute("INSERT OR IGNORE INTO claims (node, what, epoch, at, holder) "
                  "VALUES (?,?,?,?,?)", (node, what, epoch, at, holder)).rowcount:
        return "made"
    row = db.execute("SELECT holder FROM claims WHERE node = ? AND what = ? AND epoch = ?",
                     (node, what, epoch)).fetchone()
    return "again" if holder is not None and row is not None and row[0] == holder else "used"

