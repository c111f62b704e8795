"""Each node's chef-client runs as the journal tells them, for the Deploy screen and
``status`` alike: the roles converging now, the roles converged, the last run; and the roles
each node is to converge, as the answers place them (:func:`planned_roles`).

The runner journals a run converging several roles as one step per role
(``converge:<role>``, see :mod:`wizard.engine.convergence`), started together (``step-started``
events with ``{attempt, run_list}``) and ended together: ``step-finished`` with the run the
node recorded as JSON in ``detail`` ({request, status, started, elapsed, error, run_list,
ohai_time} and the ``inputs`` the roles converged with), or ``step-failed`` with the error in
``detail``. A ``forgot`` event drops roles taken off the node's run list (all of them for a
node released or reinstalled). :class:`NodeRuns` folds them back into runs, event by event.

A failed run's record is not journaled (only its error is), so its start and length are the
journal's: from its steps' start to their end, as the engine saw them (``timed_by``
``journal``); a successful run's are the node's own (``timed_by`` ``chef-client``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from wizard.answers import Answers
from wizard.answers.proposals import assignments
from wizard.catalog import Catalog, default_catalog
from wizard.engine.convergence import step_role
from wizard.engine.journal import Event


@dataclass(frozen=True)
class Run:
    """One chef-client run of a node that has ended."""

    roles: tuple[str, ...]
    """The roles it converged (its steps); its run list holds those converged before too."""
    ok: bool
    started: str | None
    """ISO 8601."""
    elapsed: float | None
    """Seconds."""
    error: str | None
    run_list: tuple[str, ...]
    timed_by: Literal["chef-client", "journal"]
    """Whose clock ``started`` and ``elapsed`` are: the node's run record, or the journal's
    (a failed run, whose record is not journaled)."""

    def as_json(self) -> dict[str, Any]:
        return {"roles": list(self.roles), "status": "success" if self.ok else "failed",
                "started": self.started, "elapsed": self.elapsed, "error": self.error,
                "run_list": list(self.run_list), "timed_by": self.timed_by}


@dataclass
class NodeRuns:
    """A node's converge steps, folded: what runs now, what converged, the last run."""

    running: list[str] = field(default_factory=list)
    """The roles the run under way converges (run-list order), none between runs."""
    attempt: int = 1
    """Of the run under way."""
    since: str | None = None
    """When the run under way (or the last one seen starting) started, the journal's time."""
    run_list: tuple[str, ...] = ()
    """The run list of the run under way (or the last one seen starting)."""
    converged: list[str] = field(default_factory=list)
    """Roles converged, in the order they did."""
    roles: list[str] = field(default_factory=list)
    """Every role seen starting, in that order: the node's roles known so far (the journal
    says nothing of those still waiting for other nodes' roles)."""
    last: Run | None = None
    _batch: int = 0
    """Which run the roles in ``running`` belong to (counted per node)."""
    _last_batch: int = -1
    _last_detail: str | None = None

    def take(self, event: Event) -> Literal["started", "done", "failed"] | None:
        """Fold ``event``, one of ``node``'s: what it did to a run. ``started`` for the
        first step of a run, ``done`` or ``failed`` for the first step that ends one (its
        others say the same: None), None for any other event."""
        if event.kind == "forgot":  # roles taken off its run list, or all: released
            self._forget(event.data.get("steps"))
            return None
        role = step_role(event.step or "")
        if role is None:
            return None
        if event.kind == "step-started":
            return self._started(role, event)
        if event.kind in ("step-finished", "step-failed"):
            return self._ended(role, event)
        return None

    def _forget(self, steps: object) -> None:
        roles = None if not isinstance(steps, list) else {
            role for step in steps if isinstance(step, str) and (role := step_role(step))}
        for kept in (self.roles, self.converged):
            kept[:] = [r for r in kept if roles is not None and r not in roles]

    def _started(self, role: str, event: Event) -> Literal["started"] | None:
        if role not in self.roles:
            self.roles.append(role)
        if role in self.converged:  # converged again: its node was reinstalled
            self.converged.remove(role)
        attempt = event.data.get("attempt")
        if self.running and self.since == event.at:  # another step of the same run
            if role not in self.running:
                self.running.append(role)
            return None
        # a node runs one chef-client at a time: what was running ended unjournaled
        self._batch += 1
        self.running, self.since = [role], event.at
        self.attempt = attempt if isinstance(attempt, int) else 1
        run_list = event.data.get("run_list")
        self.run_list = tuple(run_list) if isinstance(run_list, list) else ()
        return "started"

    def _ended(self, role: str, event: Event) -> Literal["done", "failed"] | None:
        ok = event.kind == "step-finished"
        detail = event.data.get("detail")
        detail = detail if isinstance(detail, str) else None
        batch = None
        if role in self.running:  # else ended without a start seen (an earlier apply's)
            batch = self._batch
            self.running.remove(role)
        if ok and role not in self.converged:
            self.converged.append(role)
        last = self.last
        if (last is not None and batch is not None and batch == self._last_batch
                and detail == self._last_detail and last.ok == ok and role not in last.roles):
            self.last = Run((*last.roles, role), last.ok, last.started, last.elapsed,
                            last.error, last.run_list, last.timed_by)
            return None
        self.last = self._run(role, ok, detail, event.at, batch is not None)
        self._last_batch, self._last_detail = (batch if batch is not None else -1), detail
        return "done" if ok else "failed"

    def _run(self, role: str, ok: bool, detail: str | None, at: str, seen: bool) -> Run:
        """The run that ended with ``role``'s step (``seen``: its start was folded)."""
        if ok and detail is not None:
            try:
                record = json.loads(detail)
            except ValueError:
                record = None
            if isinstance(record, dict) and isinstance(record.get("started"), str):
                elapsed, run_list = record.get("elapsed"), record.get("run_list")
                return Run((role,), True, record["started"],
                           float(elapsed) if isinstance(elapsed, int | float) else None,
                           None, tuple(run_list) if isinstance(run_list, list) else (),
                           "chef-client")
        since = self.since if seen else None
        return Run((role,), ok, since, _between(since, at), None if ok else detail,
                   self.run_list if seen else (), "journal")

    def as_json(self) -> dict[str, Any]:
        """What ``status --json`` says of the node's convergence."""
        return {"converging": [{"role": r, "barclamp": barclamp_of(r)} for r in self.running],
                "attempt": self.attempt if self.running else None,
                "since": self.since if self.running else None,
                "roles_converged": list(self.converged),
                "last_run": None if self.last is None else self.last.as_json()}


def fold(events: Iterable[Event]) -> dict[str, NodeRuns]:
    """The runs of every node with converge steps among ``events``."""
    nodes: dict[str, NodeRuns] = {}
    for event in events:
        if event.node is None:
            continue
        if step_role(event.step or "") is not None:
            nodes.setdefault(event.node, NodeRuns()).take(event)
        elif event.kind == "forgot" and event.node in nodes:
            nodes[event.node].take(event)
    return nodes


def planned_roles(answers: Answers, catalog: Catalog | None = None) -> dict[str, list[str]]:
    """Each node's Chef roles as ``answers`` place them (the admin node's too), in run-list
    order: the roles its converge steps will be, one step each. As :mod:`wizard.chef.objects`
    renders run lists: a node holds the roles its proposals (and ``all_nodes``) give it that
    have a run list. Empty when the answers do not place their roles (a barclamp the catalog
    does not have: they are not valid, and nothing deploys them)."""
    catalog = catalog or default_catalog()
    roles: dict[str, list[str]] = {}
    try:
        placed = assignments(answers, catalog)
    except (KeyError, ValueError):
        return {}
    for barclamp, holders in placed.items():
        chef_roles = {role.name for role in catalog[barclamp].roles if role.run_list}
        for role, names in holders.items():
            if role in chef_roles:
                for name in names:
                    roles.setdefault(name, []).append(role)
    return roles


def activity(state: str, runs: NodeRuns | None, busy: bool) -> str:
    """What a node in ``state`` is doing, for a grid or a table: while ``readying``,
    ``converging`` when a run is under way and ``waiting`` (for other nodes' roles) when
    none is and no other step (``busy``: registering its Chef node) runs; else ``state``."""
    if state != "readying":
        return state
    if runs is not None and runs.running:
        return "converging"
    return "readying" if busy else "waiting"


# --- words ------------------------------------------------------------------------------


def barclamp_of(role: str) -> str | None:
    """The barclamp of ``role`` in the shipped catalog (None: not one of its roles)."""
    barclamp = default_catalog().roles.get(role)
    return barclamp.name if barclamp is not None else None


def role_label(role: str) -> str:
    """``barclamp/role``, or the role alone when the catalog does not know it."""
    barclamp = barclamp_of(role)
    return f"{barclamp}/{role}" if barclamp is not None else role


def parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def clock(text: str | None) -> str:
    """An ISO 8601 time as ``HH:MM:SS UTC`` (``?`` when there is none)."""
    when = parse_time(text)
    return when.astimezone(UTC).strftime("%H:%M:%S UTC") if when is not None else "?"


def duration(seconds: float | None) -> str:
    """``0.07 s``, ``12 s``, ``3 min 5 s`` (``?`` when unknown)."""
    if seconds is None:
        return "? s"
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def ago(text: str | None, now: datetime | None = None) -> str:
    """How long before ``now`` an ISO 8601 time was: ``3 min 5 s ago`` (``?`` when there
    is none)."""
    when = parse_time(text)
    if when is None:
        return "?"
    return f"{duration(max(0.0, ((now or datetime.now(UTC)) - when).total_seconds()))} ago"


def _between(start: str | None, end: str) -> float | None:
    began, ended = parse_time(start), parse_time(end)
    if began is None or ended is None:
        return None
    return max(0.0, (ended - began).total_seconds())
