"""The deployment journal: node states, step results and an append-only event log in SQLite.

Every change is one committed transaction (a row in its table plus an event) before the
caller goes on to its next side effect, so a crash loses nothing that was done. SQLite runs
in WAL mode with ``synchronous=NORMAL``: a committed transaction survives the process being
killed; after a power loss the newest ones may be rolled back, which the runner's resume
handles the same way (it checks in-flight steps against the real system).

One writer at a time: :meth:`Journal.open` with ``lock=True`` takes an ``fcntl`` lock on
``<journal>.lock`` and writes its holder (pid, host, since) into it. The kernel drops the
lock when the process ends, however it ends, so it cannot go stale. Readers (``status``,
the TUI) open the journal read-only and may follow the event log while apply runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wizard.base import filelock
from wizard.engine.paths import journal_lock
from wizard.provisioning.state import Claim, add_holder_column, epoch_of, make_claim

LIFECYCLE = ("discovered", "allocated", "hardware-installing", "installing", "installed",
             "readying", "ready", "released", "problem")
"""A node's states, in order (``problem`` can be reached from any of them; ``released``:
taken out of the site, powered off, its Chef node and client deleted)."""
SITE = "*"
"""The node name of site-wide steps (dnsmasq config, Chef environment, ...)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
    node TEXT NOT NULL, step TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, detail TEXT, updated TEXT NOT NULL,
    PRIMARY KEY (node, step));
CREATE TABLE IF NOT EXISTS claims (
    node TEXT NOT NULL, what TEXT NOT NULL, epoch INTEGER NOT NULL, at TEXT NOT NULL,
    holder TEXT, PRIMARY KEY (node, what, epoch));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
    node TEXT, step TEXT, data TEXT NOT NULL);
"""


class JournalLocked(RuntimeError):
    """Another process holds the journal."""


class JournalError(RuntimeError):
    """The journal cannot be opened or written (a full disk, an I/O error); the message
    names its path. Nothing half-written stays: the transaction is rolled back."""


@dataclass(frozen=True)
class Event:
    seq: int
    at: str
    kind: str
    node: str | None
    step: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class StepRecord:
    node: str
    step: str
    status: str
    attempts: int
    detail: str | None


class Journal:
    """One journal file; use :meth:`open`."""

    def __init__(self, db: sqlite3.Connection, path: Path, lock_fd: int | None):
        self._db = db
        self.path = path
        self._lock_fd = lock_fd
        self.opened = time.time()
        """When this journal was opened (for a writer: when it took the lock)."""

    @classmethod
    def open(cls, path: Path, *, lock: bool = True, command: str = "apply") -> Journal:
        """Open for writing (taking the lock; :class:`JournalLocked` names the holder) or,
        with ``lock`` false, read-only."""
        path = Path(path)
        if not lock:
            if not path.exists():
                raise FileNotFoundError(f"no journal at {path}")
            # quoted: in a URI, '#' and '?' in a directory name would end the path
            uri = f"file:{quote(str(path.absolute()))}?mode=ro"
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout = 5000")
            # a writer makes the file, then its tables (events last): until then, no journal
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone() \
                    is None:
                db.close()
                raise FileNotFoundError(f"no journal at {path} yet")
            return cls(db, path, None)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _take_lock(journal_lock(path), command)
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA busy_timeout = 5000")
            db.executescript(SCHEMA)
            add_holder_column(db)
        except sqlite3.Error as exc:
            os.close(fd)
            raise JournalError(f"cannot open the journal {path}: {exc}") from None
        except BaseException:
            os.close(fd)
            raise
        return cls(db, path, fd)

    def close(self) -> None:
        self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing: each call is one transaction ------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._lock_fd is None:
            raise PermissionError("the journal was opened read-only")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back by itself
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:  # e.g. "database or disk is full"
            raise JournalError(f"cannot write the journal {self.path}: {exc}") from None

    def _event(self, db: sqlite3.Connection, at: str, kind: str, node: str | None,
               step: str | None, data: dict[str, Any]) -> int:
        cursor = db.execute("INSERT INTO events (at, kind, node, step, data) VALUES (?,?,?,?,?)",
                            (at, kind, node, step, json.dumps(data, sort_keys=True)))
        return int(cursor.lastrowid or 0)

    def record(self, kind: str, node: str | None = None, step: str | None = None,
               **data: Any) -> int:
        """Append an event; its sequence number."""
        with self._transaction() as db:
            return self._event(db, filelock.now(), kind, node, step, data)

    def transition(self, node: str, state: str, reason: str | None = None) -> int:
        """Set a node's lifecycle state (``reason`` says why, for ``problem``)."""
        at = filelock.now()
        with self._transaction() as db:
            return self._set_state(db, at, node, state, reason)

    def _set_state(self, db: sqlite3.Connection, at: str, node: str, state: str,
                   reason: str | None) -> int:
        if state not in LIFECYCLE:
            raise ValueError(f"unknown node state {state!r} (one of {', '.join(LIFECYCLE)})")
        row = db.execute("SELECT state FROM nodes WHERE name = ?", (node,)).fetchone()
        db.execute("INSERT INTO nodes (name, state, reason, updated) VALUES (?,?,?,?) "
                   "ON CONFLICT (name) DO UPDATE SET state = excluded.state, "
                   "reason = excluded.reason, updated = excluded.updated",
                   (node, state, reason, at))
        data = {"from": row[0] if row else None, "to": state}
        if reason:
            data["reason"] = reason
        return self._event(db, at, "transition", node, None, data)

    def step_started(self, node: str, step: str, **data: Any) -> int:
        at = filelock.now()
        with self._transaction() as db:
            db.execute("INSERT INTO steps (node, step, status, attempts, updated) "
                       "VALUES (?,?,'running',1,?) ON CONFLICT (node, step) DO UPDATE SET "
                       "status = 'running', attempts = attempts + 1, detail = NULL, "
                       "updated = excluded.updated", (node, step, at))
            return self._event(db, at, "step-started", node, step, data)

    def steps_started(self, node: str, steps: list[str], detail: str | None = None,
                      **data: Any) -> None:
        """Start several steps of ``node`` that one action does at once (a chef-client run
        converging several roles), in one transaction: a crash leaves all or none running.
        ``detail`` is kept while they run (what the action can be checked by on a resume)."""
        at = filelock.now()
        with self._transaction() as db:
            for step in steps:
                db.execute("INSERT INTO steps (node, step, status, attempts, detail, updated) "
                           "VALUES (?,?,'running',1,?,?) ON CONFLICT (node, step) DO UPDATE "
                           "SET status = 'running', attempts = attempts + 1, "
                           "detail = excluded.detail, updated = excluded.updated",
                           (node, step, detail, at))
                self._event(db, at, "step-started", node, step, data)

    def steps_ended(self, node: str, steps: list[str], *, ok: bool, detail: str | None,
                    **data: Any) -> None:
        """End steps started together, in one transaction: done, or failed with ``detail``
        as the error."""
        status, kind = ("done", "step-finished") if ok else ("failed", "step-failed")
        at = filelock.now()
        payload = data | ({"detail": detail} if detail else {})
        with self._transaction() as db:
            for step in steps:
                db.execute("UPDATE steps SET status = ?, detail = ?, updated = ? "
                           "WHERE node = ? AND step = ?", (status, detail, at, node, step))
                self._event(db, at, kind, node, step, payload)

    def step_finished(self, node: str, step: str, detail: str | None = None,
                      **data: Any) -> int:
        return self._step_end(node, step, "done", "step-finished", detail, data)

    def step_failed(self, node: str, step: str, error: str, **data: Any) -> int:
        return self._step_end(node, step, "failed", "step-failed", error, data)

    def _step_end(self, node: str, step: str, status: str, kind: str, detail: str | None,
                  data: dict[str, Any]) -> int:
        at = filelock.now()
        with self._transaction() as db:
            changed = db.execute("UPDATE steps SET status = ?, detail = ?, updated = ? "
                                 "WHERE node = ? AND step = ?",
                                 (status, detail, at, node, step)).rowcount
            if not changed:
                raise ValueError(f"step {step} of {node} was never started")
            payload = data | ({"detail": detail} if detail else {})
            return self._event(db, at, kind, node, step, payload)

    def forget(self, node: str, steps: list[str] | None = None, *,
               state: str | None = None, reason: str | None = None) -> None:
        """Drop ``node``'s records of ``steps`` (all of them when None) and, with ``state``,
        set its state, in one transaction: a role taken off its run list, or a node
        released or to be reinstalled, starts afresh."""
        at = filelock.now()
        with self._transaction() as db:
            if steps is None:
                db.execute("DELETE FROM steps WHERE node = ?", (node,))
            else:
                db.executemany("DELETE FROM steps WHERE node = ? AND step = ?",
                               [(node, step) for step in steps])
            self._event(db, at, "forgot", node, None, {"steps": steps})
            if state is not None:
                self._set_state(db, at, node, state, reason)

    def claim(self, node: str, what: str, holder: str | None = None) -> bool:
        """Use up ``what`` (a one-time install capability) for ``node``'s current install;
        False when it was used already (by another ``holder``: see
        :func:`~wizard.provisioning.state.make_claim`). Claiming ``installed`` ends the
        install: the next one starts a new epoch, as does ``install-boot`` (see
        :mod:`wizard.provisioning.state`)."""
        at = filelock.now()
        with self._transaction() as db:
            epoch = epoch_of(db, node)
            made = make_claim(db, node, what, at, holder)
            if made == "made":
                self._event(db, at, "claimed", node, None, {"what": what, "epoch": epoch})
            return made != "used"

    def take_over(self, source: str, *, states: dict[str, str], claims: list[Claim],
                  reports: list[tuple[str, dict[str, Any]]]) -> int:
        """Take in what another store held, in one transaction (all of it, or on an error
        nothing): ``states`` as transitions, ``claims`` as they were made (one the journal
        holds already stays: a node's epoch only rises, so a dead token stays dead),
        ``reports`` as ``inventory`` events of their nodes; then a ``took-over`` event
        naming ``source``."""
        at = filelock.now()
        with self._transaction() as db:
            for node, state in states.items():
                self._set_state(db, at, node, state, None)
            db.executemany("INSERT OR IGNORE INTO claims (node, what, epoch, at, holder) "
                           "VALUES (?,?,?,?,?)", claims)
            for node, report in reports:
                self._event(db, at, "inventory", node, None, report)
            return self._event(db, at, "took-over", None, None, {
                "from": source, "states": len(states), "claims": len(claims),
                "reports": len(reports)})

    # --- reading -------------------------------------------------------------------------

    def epoch(self, node: str) -> int:
        """``node``'s install epoch (see :mod:`wizard.provisioning.state`)."""
        return epoch_of(self._db, node)

    def state(self, node: str) -> str | None:
        row = self._db.execute("SELECT state FROM nodes WHERE name = ?", (node,)).fetchone()
        return row[0] if row else None

    def states(self) -> dict[str, tuple[str, str | None]]:
        """``{node: (state, reason)}``."""
        rows = self._db.execute("SELECT name, state, reason FROM nodes ORDER BY name")
        return {name: (state, reason) for name, state, reason in rows}

    def step(self, node: str, step: str) -> StepRecord | None:
        row = self._db.execute("SELECT node, step, status, attempts, detail FROM steps "
                               "WHERE node = ? AND step = ?", (node, step)).fetchone()
        return StepRecord(*row) if row else None

    def steps(self, node: str | None = None) -> list[StepRecord]:
        query = "SELECT node, step, status, attempts, detail FROM steps"
        rows = (self._db.execute(query + " WHERE node = ? ORDER BY rowid", (node,))
                if node is not None else self._db.execute(query + " ORDER BY rowid"))
        return [StepRecord(*row) for row in rows]

    def in_flight(self) -> list[StepRecord]:
        """Steps that were running when the last writer stopped: check, then retry them."""
        return [s for s in self.steps() if s.status == "running"]

    def events(self, after: int = 0, limit: int | None = None,
               kind: str | None = None) -> list[Event]:
        """Events after sequence number ``after`` (only those of ``kind``, if given)."""
        query = "SELECT seq, at, kind, node, step, data FROM events WHERE seq > ?"
        params: list[Any] = [after]
        if kind is not None:
            query += " AND kind = ?"
            params.append(kind)
        query += " ORDER BY seq"
        if limit:
            query += " LIMIT ?"
            params.append(limit)
        rows = self._db.execute(query, params)
        return [Event(seq, at, kind, node, step, json.loads(data))
                for seq, at, kind, node, step, data in rows]

    def follow(self, after: int = 0, interval: float = 0.2,
               until: Callable[[], bool] = lambda: False) -> Iterator[Event]:
        """Events after ``after`` as they are appended, until ``until()`` says stop."""
        while True:
            batch = self.events(after)
            yield from batch
            if batch:
                after = batch[-1].seq
            elif until():
                return
            else:
                time.sleep(interval)


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds the journal at ``path`` now (None when nobody does)."""
    return filelock.holder(journal_lock(path))


def _take_lock(lock_path: Path, command: str) -> int:
    try:
        return filelock.take(lock_path, {"command": f"crowbar-wizard {command}"})
    except filelock.Locked as exc:
        who = exc.who
        raise JournalLocked(
            f"{lock_path.with_suffix('')} is in use by {who.get('command', 'another process')}"
            f" (pid {who.get('pid', '?')} on {who.get('host', '?')} since "
            f"{who.get('since', '?')})") from None
