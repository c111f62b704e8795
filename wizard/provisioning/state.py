"""What the provisioner remembers between requests: node states, install claims, discoveries.

:class:`NodeStates` is what the HTTP service needs of a store. The site's journal keeps it
(the engine's ``JournalStates``), for ``pxe serve`` as for ``apply``: one store, so
``status`` and the wizard see every node and every discovered machine whichever of them
served the admin network.

An install's secrets are usable once. A node's callback token is derived from its install
*epoch*: each one-time capability of an install (registering its Chef client key, saying
it is installed) is *claimed* in the current epoch and refused after. Three claims start the
next epoch: ``installed`` and ``problem`` (the install is over, well or not: the token in
its files and logs opens nothing any more) and ``install-boot`` (the node PXE-boots its
installer again, from its own address: a new attempt, with a new token and its claims
still to make).

Earlier versions of ``pxe serve`` kept this store in its own directory, in SQLite
(``state.db``) and before that in ``state.json``; :func:`read_earlier` reads either, for the
journal to take over once (an installed node must not be offered its installer again).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

from pydantic import ValidationError

from wizard.hardware.inventory import DiscoveredNode, Inventory, InventoryReport

INSTALLED = "installed"
"""The claim that ends an install (and its token)."""
PROBLEM = "problem"
"""The claim that ends an install its installer reports went wrong (and its token)."""
INSTALL_BOOT = "install-boot"
"""The claim that starts a new attempt at an install."""
EPOCH_CLAIMS = (INSTALLED, PROBLEM, INSTALL_BOOT)
"""The claims that end an epoch: a node's epoch is how many of them it has made."""


class StoreError(RuntimeError):
    """The store cannot be written (a full disk, an I/O error); the message names its path."""


class NodeStates(Protocol):
    """A store of node states, install claims and discovered machines; a write that
    fails raises :class:`StoreError`."""

    inventory: Inventory

    def state(self, node: str) -> str | None: ...

    def set_state(self, node: str, state: str) -> None: ...

    def problem(self, node: str, reason: str) -> None:
        """``node`` goes to ``problem`` with ``reason``: its installer said what went wrong."""

    def epoch(self, node: str) -> int: ...

    def claim(self, node: str, what: str, holder: str | None = None) -> bool: ...

    def add_report(self, report: InventoryReport) -> tuple[DiscoveredNode, bool]: ...


class Claim(NamedTuple):
    """A row of a ``claims`` table."""

    node: str
    what: str
    epoch: int
    at: str
    holder: str | None


@dataclass(frozen=True)
class EarlierState:
    """What an earlier ``pxe serve`` kept in its directory."""

    path: Path
    states: dict[str, str]
    claims: list[Claim]
    reports: list[InventoryReport]
    """Discovered machines' reports, in the order they came."""
    unreadable: int
    """Reports this version's checks refuse (they are left out, as that version did)."""


def read_earlier(directory: Path) -> EarlierState | None:
    """``directory``'s ``state.db``, else its ``state.json``; None when it has neither.
    A file that cannot be read is a :class:`StoreError` naming it."""
    for path, read in ((directory / "state.db", _read_database),
                       (directory / "state.json", _read_json)):
        if not path.exists():
            continue
        try:
            return read(path)
        except (OSError, sqlite3.Error, ValueError, TypeError, AttributeError) as exc:
            raise StoreError(f"cannot take over {path}: {exc} (move it aside to start "
                             "without what it holds)") from None
    return None


def _read_database(path: Path) -> EarlierState:
    """``state.db``: its node states and claims, and its reports (with those it took over
    from a ``state.json`` first). Tables and columns that earlier versions did not have yet
    are read as empty."""
    db = sqlite3.connect(path)  # read-write: a WAL left by a killed pxe serve is recovered
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        states = dict(db.execute("SELECT name, state FROM nodes")) if "nodes" in tables else {}
        claims: list[Claim] = []
        if "claims" in tables:
            columns = {row[1] for row in db.execute("PRAGMA table_info(claims)")}
            holder = "holder" if "holder" in columns else "NULL"
            claims = [Claim(*row) for row in db.execute(
                f"SELECT node, what, epoch, at, {holder} FROM claims ORDER BY rowid")]
        taken = [DiscoveredNode.from_dict(json.loads(data)) for (data,) in db.execute(
            "SELECT data FROM imported ORDER BY seq")] if "imported" in tables else []
        posted = [data for (data,) in db.execute("SELECT data FROM reports ORDER BY seq")
                  ] if "reports" in tables else []
    finally:
        db.close()
    reports, unreadable = _reports(taken, posted)
    return EarlierState(path, states, claims, reports, unreadable)


def _read_json(path: Path) -> EarlierState:
    """``state.json``: node states and discovered machines, no claims."""
    data = json.loads(path.read_text(encoding="utf-8"))
    taken = [DiscoveredNode.from_dict(node) for node in data.get("discovered", [])]
    reports, unreadable = _reports(taken, [])
    return EarlierState(path, dict(data.get("states", {})), [], reports, unreadable)


def _reports(taken: list[DiscoveredNode], posted: list[str]) -> tuple[list[InventoryReport], int]:
    """Reports for machines ``state.json`` held (as the report each one adds up to) and
    for those posted since; how many are left out."""
    reports: list[InventoryReport] = []
    unreadable = 0
    for node in taken:
        try:
            reports.append(_as_report(node))
        except ValidationError:
            unreadable += 1
    for data in posted:
        try:
            reports.append(InventoryReport.model_validate_json(data))
        except ValidationError:
            unreadable += 1
    return reports, unreadable


def _as_report(node: DiscoveredNode) -> InventoryReport:
    """The report that makes ``node`` when it is the first one about its machine."""
    return InventoryReport.model_validate({
        "mac": node.macs[0] if node.macs else None, "macs": node.macs, "serial": node.serial,
        "manufacturer": node.manufacturer, "model": node.model, "cpu_cores": node.cpu_cores,
        "memory_gb": node.memory_gb, "disks": node.disks or 0,
        "virtualization": True if node.virtualization is None else node.virtualization,
        "bmc_mac": node.bmc_mac, "bmc_address": node.bmc_address,
        "memory_mb": node.memory_mb, "nics": node.nics, "drives": node.drives})


def epoch_of(db: sqlite3.Connection, node: str) -> int:
    """``node``'s epoch in a database with a ``claims`` table."""
    marks = ", ".join("?" * len(EPOCH_CLAIMS))
    row = db.execute(f"SELECT COUNT(*) FROM claims WHERE node = ? AND what IN ({marks})",
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
