"""The provisioner's store kept in the site's journal, for ``pxe serve`` and ``apply`` alike.

The HTTP service asks a :class:`~wizard.provisioning.state.NodeStates` for node states,
install claims and discovered machines; :class:`JournalStates` answers from the journal, so
``status`` and the wizard's Discovery screen see what either command's service recorded. A
machine that PXE-boots into discovery for the first time becomes ``discovered`` there.

What an earlier ``pxe serve`` kept in its own directory is taken over once
(:meth:`JournalStates.take_over`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from wizard.engine.journal import LIFECYCLE, Journal, JournalError
from wizard.hardware.inventory import DiscoveredNode, Inventory, InventoryConflict, InventoryReport
from wizard.provisioning.state import StoreError, read_earlier

DONE_INSTALLING = ("installed", "readying", "ready")
"""States an installer's callback (``installed`` or ``problem``) does not move a node back
from."""


class JournalStates:
    """The HTTP service's view of node states, install claims and discoveries, kept in the
    journal (the inventory as reports were accepted, so a resumed apply knows them).

    ``called_back`` is told of each node whose installer called back, with the problem it
    reported (None: installed), so an apply waiting for the install goes on at once;
    ``transition`` moves a node on (``apply`` also shows it; by default only the journal
    is written)."""

    def __init__(self, journal: Journal,
                 called_back: Callable[[str, str | None], None] = lambda node, problem: None,
                 transition: Callable[[str, str, str | None], object] | None = None):
        self.journal = journal
        self._called_back = called_back
        self._transition = transition or journal.transition
        self.inventory = Inventory()
        for event in journal.events(kind="inventory"):
            with contextlib.suppress(ValueError):
                self.inventory.add_report(InventoryReport.model_validate(event.data))

    def state(self, node: str) -> str | None:
        return self.journal.state(node)

    def epoch(self, node: str) -> int:
        return self.journal.epoch(node)

    def claim(self, node: str, what: str, holder: str | None = None) -> bool:
        with store_errors():
            return self.journal.claim(node, what, holder)

    def set_state(self, node: str, state: str) -> None:
        with store_errors():
            if self.journal.state(node) not in DONE_INSTALLING:
                self._transition(node, state, None)
        self._called_back(node, None)

    def problem(self, node: str, reason: str) -> None:
        with store_errors():
            if self.journal.state(node) not in DONE_INSTALLING:
                self._transition(node, "problem", reason)
        self._called_back(node, reason)

    def add_report(self, report: InventoryReport) -> tuple[DiscoveredNode, bool]:
        """Record a discovery image's report; its machine, seen for the first time (no
        state yet), becomes ``discovered``, so ``status`` lists it."""
        node, new = self.inventory.add_report(report)
        with store_errors():
            self.journal.record("inventory", node.name, None, **report.model_dump())
            if self.journal.state(node.name) is None:
                self.journal.transition(node.name, "discovered")
        return node, new

    def take_over(self, directory: Path) -> str | None:
        """Take what an earlier ``pxe serve`` kept in ``directory`` (``state.db``, or the
        older ``state.json``) into the journal, then rename that file ``*.imported`` so it
        is taken once: a line saying what was taken, or None when there was nothing.

        A node's state is taken when it is further on than the journal's (an installed
        node must not be offered its installer again; one the journal has seen further on
        is not moved back), claims as they were, reports as if posted now (one that
        contradicts a machine the journal knows is left out). Raises :class:`StoreError`.
        """
        earlier = read_earlier(directory)
        if earlier is None:
            return None
        known = {node: state for node, (state, _) in self.journal.states().items()}
        order = {state: i for i, state in enumerate(LIFECYCLE)}
        states = {node: state for node, state in earlier.states.items()
                  if state in order and _further_on(state, known.get(node), order)}
        taken = len(states)
        left_out = earlier.unreadable + sum(state not in order
                                            for state in earlier.states.values())
        reports: list[tuple[str, dict[str, object]]] = []
        for report in earlier.reports:
            try:
                machine, _ = self.inventory.add_report(report)
            except InventoryConflict:
                left_out += 1
                continue
            reports.append((machine.name, report.model_dump()))
            if machine.name not in known and machine.name not in states:
                states[machine.name] = "discovered"
        with store_errors():
            self.journal.take_over(str(earlier.path), states=states, claims=earlier.claims,
                                   reports=reports)
        imported = earlier.path.with_name(earlier.path.name + ".imported")
        try:
            earlier.path.rename(imported)
        except OSError as exc:
            raise StoreError(f"took over {earlier.path}, but cannot rename it: {exc}") from None
        return (f"took over {earlier.path} into the journal {self.journal.path}: {taken} node "
                f"states, {len(earlier.claims)} claims, {len(reports)} discovery reports"
                + (f" ({left_out} left out: unreadable or contradicting)" if left_out else "")
                + f"; renamed it {imported.name}")


def _further_on(state: str, current: str | None, order: dict[str, int]) -> bool:
    """Whether ``state`` is further on than ``current`` (no state and ``problem`` are
    behind every state)."""
    return current in (None, "problem") or order[state] > order[current]


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """A journal that cannot be written is, to the HTTP service, a store that cannot."""
    try:
        yield
    except JournalError as exc:
        raise StoreError(str(exc)) from None
