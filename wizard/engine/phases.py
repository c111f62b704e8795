"""The phases a node goes through on its way to ready, defined once: the CLI's progress bars
and the Deploy screen's both count nodes past each phase from these.

The two last are convergence (:mod:`wizard.engine.convergence`): a node is past ``core``
once its core roles converged (the journal's ``core-converged`` event says so), past
``barclamps`` once its whole run list did, which makes it ready.
"""

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
          Phase("core", "converge core barclamps", "Core converge"),
          Phase("barclamps", "converge barclamps, ready", "Barclamps, ready"))
"""Each phase, in order."""

PHASE_REACHED = {"installing": 1, "installed": 2, "readying": 2, "ready": 4}
"""How many phases a node in this state is past (states not listed: none)."""
CORE_CONVERGED = "core-converged"
"""The journal event (and ``apply --json`` event) of a node whose core roles converged."""


def phase_reached(state: str, core_converged: bool) -> int:
    """How many phases a node in ``state`` is past."""
    reached = PHASE_REACHED.get(state, 0)
    return max(reached, 3) if core_converged and state == "readying" else reached


def nodes_past_phases(nodes: Iterable[tuple[str, bool]]) -> list[int]:
    """For each phase in :data:`PHASES`, how many of ``nodes`` (state, core converged) are
    past it."""
    reached = [phase_reached(state, core) for state, core in nodes]
    return [sum(r >= phase for r in reached) for phase in range(1, len(PHASES) + 1)]
