"""The provisioner's store kept in the site's journal.

The HTTP service asks a :class:`~wizard.provisioning.state.NodeStates` for node states,
install claims and discovered machines; :class:`JournalStates` answers from the journal, so
``status`` and the wizard's Discovery screen see what the service recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from wizard.engine.journal import Journal, JournalError
from wizard.hardware.inventory import DiscoveredNode, Inventory, InventoryReport
from wizard.provisioning.state import StoreError

DONE_INSTALLING = ("installed", "readying", "ready")
"""States a node's ``installed`` callback does not move it back from."""


class JournalStates:
    """The HTTP service's view of node states, install claims and discoveries, kept in the
    journal (the inventory as reports were accepted, so a resumed apply knows them).

    ``installed`` is told of each node whose installer called back; ``transition`` moves a
    node on (``apply`` also shows it; by default only the journal is written)."""

    def __init__(self, journal: Journal, installed: Callable[[str], None] = lambda node: None,
                 transition: Callable[[str, str], object] | None = None):
        self.journal = journal
        self._installed = installed
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
        with _store_errors():
            return self.journal.claim(node, what, holder)

    def set_state(self, node: str, state: str) -> None:
        with _store_errors():
            if self.journal.state(node) not in DONE_INSTALLING:
                self._transition(node, state)
        self._installed(node)

    def add_report(self, report: InventoryReport) -> tuple[DiscoveredNode, bool]:
        node, new = self.inventory.add_report(report)
        with _store_errors():
            self.journal.record("inventory", node.name, None, **report.model_dump())
        return node, new


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """A journal that cannot be written is, to the HTTP service, a store that cannot."""
    try:
        yield
    except JournalError as exc:
        raise StoreError(str(exc)) from None
