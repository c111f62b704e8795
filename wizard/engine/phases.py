"""The three phases a node goes through on its way to ready, defined once: the CLI's progress
bars and the Deploy screen's both count nodes past each phase from these."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class Phase(NamedTuple):
    key: str
    label: str
    """As the CLI's progress view names it."""
    title: str
    """As the Deploy screen names it (shorter: its bars share a line with the label)."""


PHASES = (Phase("hardware", "boot device + power cycle", "Boot device, power"),
          Phase("install", "OS install", "OS install"),
          Phase("chef", "Chef node, ready", "Chef, ready"))
"""Each phase, in order."""

PHASE_REACHED = {"installing": 1, "installed": 2, "readying": 2, "ready": 3}
"""How many phases a node in this state is past (states not listed: none)."""


def nodes_past_phases(states: Iterable[str]) -> list[int]:
    """For each phase in :data:`PHASES`, how many of the nodes in ``states`` are past it."""
    reached = [PHASE_REACHED.get(state, 0) for state in states]
    return [sum(r >= phase for r in reached) for phase in range(1, len(PHASES) + 1)]
