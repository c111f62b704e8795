"""What the Deploy step shows, folded from an apply's journal events (no widgets here).

The same events whether this wizard started the apply or found it running: node states
and reasons, each node's steps and its own log, the steps done (for the aggregate bar and
its ETA), whether the apply is paused, and the lines of the shared log pane.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from wizard.engine.deployments import SITE, Event
from wizard.engine.phases import CORE_CONVERGED, nodes_past_phases
from wizard.engine.plan import NODE_STEPS
from wizard.tui.markup import literal

NODE_LOG = 40
"""Lines of log kept per node."""
STEP_NAMES = tuple(step for step, _ in NODE_STEPS)


@dataclass
class NodeProgress:
    state: str = "allocated"
    reason: str | None = None
    steps: dict[str, str] = field(default_factory=dict)
    """step -> running, done or failed, with the attempt."""
    log: deque[str] = field(default_factory=lambda: deque(maxlen=NODE_LOG))
    core: bool = False
    """Its core roles converged."""


class DeployProgress:
    """An apply's progress, event by event."""

    def __init__(self, nodes: list[str]):
        self.nodes: dict[str, NodeProgress] = {name: NodeProgress() for name in nodes}
        self.done: set[tuple[str, str]] = set()
        self.paused = False
        self.seq = 0
        self._samples: tuple[float, int] | None = None

    @property
    def total(self) -> int:
        return len(self.nodes) * len(STEP_NAMES)

    def phases(self) -> list[int]:
        """Nodes past each phase of :data:`wizard.engine.phases.PHASES`."""
        return nodes_past_phases((node.state, node.core) for node in self.nodes.values())

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes.values():
            counts[node.state] = counts.get(node.state, 0) + 1
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
        if name not in self.nodes:
            self.nodes[name] = NodeProgress()
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
        if kind == CORE_CONVERGED:
            node.core = True
            changed.add(name)
            return None
        if kind == "transition":
            node.state, node.reason = data["to"], data.get("reason")
            changed.add(name)
            if node.state == "ready":
                self.done.update((name, s) for s in STEP_NAMES)
            if node.state == "problem":
                node.log.append(f"[red]problem: {literal(node.reason or '')}[/]")
                return f"[red]{name}: {literal(node.reason or '')}[/]"
            node.log.append(f"→ {node.state}")
            return None
        if step is None or step not in STEP_NAMES:
            return None
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
