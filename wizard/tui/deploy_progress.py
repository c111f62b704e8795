"""What the Deploy step shows, folded from an apply's journal events (no widgets here).

The same events whether this wizard started the apply or found it running: node states
and reasons, each node's steps and its own log, its chef-client runs (the roles converging
now, the last run: :mod:`wizard.engine.converge_runs`), the steps done (for the aggregate
bar and its ETA), whether the apply is paused, and the lines of the shared log pane.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from wizard.engine.converge_runs import NodeRuns, activity, duration, role_label
from wizard.engine.convergence import step_role
from wizard.engine.deployments import SITE, Event
from wizard.engine.phases import CORE_CONVERGED, nodes_past_phases
from wizard.engine.plan import NODE_STEPS
from wizard.tui.markup import literal

NODE_LOG = 40
"""Lines of log kept per node."""
STEP_NAMES = tuple(step for step, _ in NODE_STEPS)
"""The steps of a node's lifecycle (the admin node has none: it only converges)."""


@dataclass
class NodeProgress:
    state: str = "allocated"
    reason: str | None = None
    steps: dict[str, str] = field(default_factory=dict)
    """step -> running, done or failed, with the attempt."""
    log: deque[str] = field(default_factory=lambda: deque(maxlen=NODE_LOG))
    core: bool = False
    """Its core roles converged."""
    runs: NodeRuns = field(default_factory=NodeRuns)
    """Its chef-client runs."""
    lifecycle: bool = True
    """It goes through :data:`STEP_NAMES` (the admin node does not)."""

    @property
    def activity(self) -> str:
        """Its state as the grid shows it: while readying, ``converging`` when a
        chef-client run is under way and ``waiting`` (for other nodes' roles) when none is
        and its Chef node is not being registered."""
        busy = any(status.startswith("running") for status in self.steps.values())
        return activity(self.state, self.runs, busy)


class DeployProgress:
    """An apply's progress, event by event.

    ``nodes`` are those the answers deploy: each goes through :data:`STEP_NAMES`. Others
    the journal names (the admin node, which only converges) are added as it does, with no
    lifecycle steps unless one of theirs shows up. ``roles``: each node's Chef roles as the
    answers place them (:func:`~wizard.engine.converge_runs.planned_roles`; none when the
    apply converges nothing: no Chef server).

    The aggregate count (:attr:`total`, :attr:`done`, and so the ETA) is every node's
    lifecycle steps and its converge steps, one per role: the roles the answers give it,
    and any other its steps name (the journal names a role only when its run starts). A
    node that goes ready converged its whole run list: from then on its roles are those its
    steps named (none, when the apply had no Chef server to converge from), so every step
    counted is done when every node is ready. One in problem keeps the roles it did not
    converge, not done.
    """

    def __init__(self, nodes: list[str], roles: Mapping[str, list[str]] | None = None):
        self.nodes: dict[str, NodeProgress] = {name: NodeProgress() for name in nodes}
        self.planned: dict[str, list[str]] = {name: list(r) for name, r in (roles or {}).items()}
        self.done: set[tuple[str, str]] = set()
        self.paused = False
        self.seq = 0
        self._samples: tuple[float, int] | None = None

    def roles(self, name: str) -> list[str]:
        """``name``'s converge roles: those planned, then any other its steps named."""
        planned = self.planned.get(name, [])
        node = self.nodes.get(name)
        return [*planned, *(r for r in (node.runs.roles if node else []) if r not in planned)]

    @property
    def total(self) -> int:
        """Lifecycle steps and converge steps (see the class), released nodes' none."""
        names = {*self.nodes, *self.planned} - set(self.released())
        return sum(len(self.roles(name)) for name in names) + len(STEP_NAMES) * sum(
            node.lifecycle for name, node in self.nodes.items() if name in names)

    def released(self) -> list[str]:
        """Nodes taken out of the site: no phase counts them."""
        return [name for name, node in self.nodes.items() if node.state == "released"]

    def phases(self) -> list[int]:
        """Nodes past each phase of :data:`wizard.engine.phases.PHASES`."""
        return nodes_past_phases((node.state, node.core) for node in self.nodes.values()
                                 if node.state != "released")

    def counts(self) -> dict[str, int]:
        """Nodes by lifecycle state."""
        counts: dict[str, int] = {}
        for node in self.nodes.values():
            counts[node.state] = counts.get(node.state, 0) + 1
        return counts

    def activities(self) -> dict[str, int]:
        """Nodes by what the grid shows (:attr:`NodeProgress.activity`)."""
        counts: dict[str, int] = {}
        for node in self.nodes.values():
            counts[node.activity] = counts.get(node.activity, 0) + 1
        return counts

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at the pace seen since following began (None until it shows)."""
        now = time.monotonic() if now is None else now
        if self._samples is None:
            self._samples = (now, len(self.done))
            return None
        start, done_then = self._samples
        done = len(self.done)
        if now - start < 2 or done <= done_then:
            return None
        return (self.total - done) * (now - start) / (done - done_then)

    def apply(self, events: list[Event]) -> tuple[set[str], list[str]]:
        """Take ``events``; the nodes whose state changed and the lines for the log pane."""
        changed: set[str] = set()
        lines: list[str] = []
        for event in events:
            self.seq = max(self.seq, event.seq)
            line = self._one(event, changed)
            if line:
                lines.append(line)
        return changed, lines

    def _node(self, name: str) -> NodeProgress:
        if name not in self.nodes:  # the admin node, or one the answers no longer have
            self.nodes[name] = NodeProgress(lifecycle=False)
        return self.nodes[name]

    def _one(self, event: Event, changed: set[str]) -> str | None:
        kind, name, step, data = event.kind, event.node, event.step, event.data
        if kind in ("paused", "resumed"):
            self.paused = kind == "paused"
            return ("[b]paused[/]: steps under way finish, no new one starts"
                    if self.paused else "[b]resumed[/]")
        if name is None:
            return None
        if name == SITE:
            if kind == "step-failed":
                return f"[red]site: {step} failed: {literal(data.get('detail', ''))}[/]"
            return None
        if kind == "inventory":
            return f"discovered {name} ({data.get('mac', '?')}) by PXE"
        if kind == "transition" and data["to"] == "discovered" and name not in self.nodes:
            return None  # a machine PXE discovery found, not one this apply deploys
        node = self._node(name)
        if kind == "forgot":  # roles taken off its run list; every step: released, reinstalled
            steps = data.get("steps")
            node.runs.take(event)
            self.done.difference_update({(n, s) for n, s in self.done if n == name and (
                not isinstance(steps, list) or s in steps)})
            node.log.append("took " + ", ".join(
                role_label(r) for s in steps if (r := step_role(s)) is not None)
                + " off its run list" if isinstance(steps, list) else "its steps start afresh")
            changed.add(name)
            return None
        if kind == CORE_CONVERGED:
            node.core = True
            changed.add(name)
            return None
        if kind == "transition":
            node.state, node.reason = data["to"], data.get("reason")
            changed.add(name)
            if node.state == "ready":
                if node.lifecycle:
                    self.done.update((name, s) for s in STEP_NAMES)
                self.planned[name] = list(node.runs.roles)  # its whole run list converged
            if node.state == "problem":
                node.log.append(f"[red]problem: {literal(node.reason or '')}[/]")
                return f"[red]{name}: {literal(node.reason or '')}[/]"
            node.log.append(f"→ {node.state}")
            return None
        if step is not None and step_role(step) is not None:
            return self._converge(name, node, event, changed)
        if step is None or step not in STEP_NAMES:
            return None
        node.lifecycle = True
        attempt = data.get("attempt")
        if kind == "step-started":
            self.done.discard((name, step))
            node.steps[step] = "running" + (f" (try {attempt})" if attempt and attempt > 1
                                            else "")
            node.log.append(f"{step} started" + (f", try {attempt}" if attempt else ""))
        elif kind == "step-finished":
            self.done.add((name, step))
            node.steps[step] = "done"
            detail = literal(str(data.get("detail") or "")[:60])
            node.log.append(f"{step} done" + (f": {detail}" if detail else ""))
        elif kind == "step-failed":
            node.steps[step] = "failed"
            error = literal(str(data.get("detail", "")).removeprefix(f"{step}: "))
            node.log.append(f"[red]{step} failed: {error}[/]")
            changed.add(name)
            return f"{name}: {step} failed: {error}"
        changed.add(name)
        return None

    def _converge(self, name: str, node: NodeProgress, event: Event,
                  changed: set[str]) -> str | None:
        """A converge step: its run in the node's log (once per run, not per role), a
        failed run in the shared log."""
        step = event.step
        assert step is not None
        if event.kind == "step-started":
            self.done.discard((name, step))
        elif event.kind == "step-finished":
            self.done.add((name, step))
        runs = node.runs
        said = runs.take(event)
        changed.add(name)
        if said == "started":
            node.log.append(_run_started(runs))
        elif event.kind == "step-started" and runs.running:  # another role of that run
            node.log[-1] = _run_started(runs)  # its steps are journaled one after another
        elif said == "done" and runs.last is not None:
            node.log.append(f"converged in {duration(runs.last.elapsed)}")
        elif said == "failed" and runs.last is not None:
            error = literal((runs.last.error or "").removeprefix("converge: ")
                            .removeprefix("converge "))
            node.log.append(f"[red]converge failed: {error}[/]")
            return f"{name}: converge failed: {error}"
        return None


def _run_started(runs: NodeRuns) -> str:
    """A node's log line for the run under way: its first role, how many more, the try."""
    more = f" +{len(runs.running) - 1}" if len(runs.running) > 1 else ""
    attempt = f" (try {runs.attempt})" if runs.attempt > 1 else ""
    return f"converging {literal(role_label(runs.running[0]))}{more}{attempt}"
