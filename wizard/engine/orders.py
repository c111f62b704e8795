"""Orders for machines waiting in the discovery image: a network check, or power off.

``crowbar-wizard network check`` and ``discovered poweroff`` write a request into the
site's state directory: a file (0600, root's like the journal) naming the machine, its MACs
and what its image is to do (for a check, the instructions its plan makes:
:func:`wizard.provisioning.network_check.instructions`). The process serving the
provisioner (``pxe serve`` or ``apply``) hands it to the image that asks for orders from
one of those MACs and records in the journal what became of it: a ``network-check`` event
with the image's answer, a ``poweroff`` event once the order is handed out. The asker
follows the journal. A file, not the journal, carries the request because the serving
process holds the journal's only writer.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from wizard.answers import Answers
from wizard.answers.node_network import ConduitError, NodeNetwork
from wizard.base.ownedfs import real_dir
from wizard.base.yamlfile import write_atomic
from wizard.catalog import default_catalog
from wizard.engine.journal import Event, Journal, holder
from wizard.engine.journal_states import store_errors
from wizard.engine.paths import SitePaths
from wizard.provisioning.network_check import CheckResult, Finding, compare, instructions
from wizard.provisioning.site import ProvisionerSite

EVENT = "network-check"
POWEROFF = "poweroff"
"""The power-off order, as the image reads it, and the event that records it handed out."""


@dataclass(frozen=True)
class Order:
    """One order for a machine in the discovery image: what it is to do (a network
    check's instructions, or ``poweroff``)."""

    id: str
    node: str
    macs: list[str]
    instructions: str


def ask(directory: Path, node: str, macs: list[str], instructions: str,
        request: str | None = None) -> Order:
    """Give ``node`` (the machine with ``macs``) an order, ``instructions`` (an earlier one
    for it is withdrawn)."""
    request = request or secrets.token_hex(8)
    asked = Order(request, node, macs, instructions)
    for old in _requests(directory):
        if old.node == node:
            withdraw(directory, old.id)
    real_dir(directory, directory.parent, 0o700)
    write_atomic(directory / f"{request}.json", json.dumps(asdict(asked)), mode=0o600)
    return asked


def withdraw(directory: Path, request: str) -> None:
    (directory / f"{request}.json").unlink(missing_ok=True)


def pending(directory: Path, mac: str) -> Order | None:
    """The request for the machine with ``mac``, if any."""
    return next((request for request in _requests(directory) if mac in request.macs), None)


def _requests(directory: Path) -> list[Order]:
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            found.append(Order(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue  # half-written by hand or damaged: not a request
    return found


class JournalOrders:
    """The provisioner's view of the orders: requests from files, what became of them to
    the journal."""

    def __init__(self, directory: Path, journal: Journal):
        self.directory = directory
        self.journal = journal

    def pending(self, mac: str) -> tuple[str, str] | None:
        request = pending(self.directory, mac)
        return None if request is None else (request.id, request.instructions)

    def handed(self, mac: str, request: str) -> None:
        """``request`` went to ``mac``'s image: a power-off order is then carried out."""
        asked = pending(self.directory, mac)
        if asked is not None and asked.id == request and asked.instructions == f"{POWEROFF}\n":
            with store_errors():
                self.journal.record(POWEROFF, asked.node, None, request=request, mac=mac)
            withdraw(self.directory, request)

    def answered(self, mac: str, result: CheckResult) -> bool:
        """Record ``result`` if it answers a request for ``mac`` (False: it answers none)."""
        request = pending(self.directory, mac)
        if request is None or request.id != result.request:
            return False
        with store_errors():
            self.journal.record(EVENT, request.node, None, mac=mac, **result.model_dump())
        withdraw(self.directory, request.id)
        return True


def answer(journal: Journal, request: str, after: int = 0) -> Event | None:
    """The journal's answer to ``request`` (None while there is none)."""
    return next((event for event in journal.events(kind=EVENT, after=after)
                 if event.data.get("request") == request), None)


def _served(journal: Path) -> None:
    """:class:`OrderError` unless a provisioner (``pxe serve`` or apply) holds ``journal``:
    only it hands orders to the images."""
    if holder(journal) is None:
        raise OrderError(f"nothing serves the provisioner (no process holds {journal}): "
                         "start 'crowbar-wizard pxe serve ANSWERS DIR' (or apply) first")


class OrderError(Exception):
    """The order cannot be given (no such node or machine, nothing serving) or was not
    carried out in time."""


@dataclass(frozen=True)
class CheckOutcome:
    """A network check's answer, held against the plan."""

    node: str
    mac: str
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return all(finding.ok is not False for finding in self.findings)


def plan_of(answers: Answers, node: str) -> tuple[list[str], NodeNetwork]:
    """``node``'s MACs and planned network; :class:`OrderError` saying why there is none."""
    site = ProvisionerSite(answers, default_catalog(), b"")
    pxe = site.nodes.get(node)
    if pxe is None:
        known = ", ".join(site.nodes) or "none"
        raise OrderError(f"no node {node!r} with an admin address in the answers file "
                         f"(nodes: {known})")
    try:
        return list(pxe.macs), site.network(pxe)
    except ConduitError as exc:
        raise OrderError(str(exc)) from None


def check(answers: Answers, node: str, paths: SitePaths, *, timeout: float,
          progress: Callable[[str], None], poll: float = 0.5) -> CheckOutcome:
    """Ask the discovery image of ``node`` to bring up its planned network, wait for its
    answer and hold it against the plan."""
    macs, plan = plan_of(answers, node)
    _served(paths.journal)
    request = secrets.token_hex(8)
    with Journal.open(paths.journal, lock=False) as journal:
        ask(paths.orders, node, macs, instructions(plan, request), request)
        progress(f"asked {node} ({', '.join(macs)}) for a network check; its discovery image "
                 "picks it up when it next asks for orders")
        deadline = time.monotonic() + timeout
        while (event := answer(journal, request)) is None:
            if time.monotonic() > deadline:
                withdraw(paths.orders, request)
                raise OrderError(f"{node} did not answer within {timeout:.0f} s: is it "
                                 "waiting in the discovery image? ('status' lists it as "
                                 "discovered)")
            time.sleep(poll)
    outcome = held_against(answers, event.node, event.data)
    if outcome is None:
        raise OrderError(f"{node}'s answer is not one this version reads")
    return outcome


def held_against(answers: Answers, node: str | None,
                 data: dict[str, Any]) -> CheckOutcome | None:
    """The answer a ``network-check`` event records (its node and data) held against
    ``answers``' plan for that node (None when ``answers`` plans no such node, or the
    answer is unreadable)."""
    if node is None:
        return None
    try:
        _, plan = plan_of(answers, node)
        result = CheckResult.model_validate({key: value for key, value in data.items()
                                             if key != "mac"})
    except (OrderError, ValidationError):
        return None
    return CheckOutcome(node, str(data.get("mac")), compare(plan, result))


def power_off(journal_path: Path, orders: Path, machine: str, *, timeout: float,
              poll: float = 0.5) -> str:
    """Tell the discovered ``machine`` (its name, or one of its MACs) to power off; the
    MAC it was handed to. Raises :class:`OrderError` saying why it was not."""
    _served(journal_path)
    with Journal.open(journal_path, lock=False) as journal:
        reports = {event.node: event.data for event in journal.events(kind="inventory")}
        name, macs = next(((node, list(data.get("macs", []))) for node, data in reports.items()
                           if machine == node or machine in data.get("macs", [])),
                          (None, []))
        if name is None:
            known = ", ".join(str(node) for node in reports) or "none"
            raise OrderError(f"no discovered machine {machine!r} (discovered: {known})")
        request = secrets.token_hex(8)
        ask(orders, name, macs, f"{POWEROFF}\n", request)
        deadline = time.monotonic() + timeout
        while not (done := [e for e in journal.events(kind=POWEROFF)
                            if e.data.get("request") == request]):
            if time.monotonic() > deadline:
                withdraw(orders, request)
                raise OrderError(f"{name} did not ask for orders within {timeout:.0f} s: "
                                 "is it waiting in the discovery image?")
            time.sleep(poll)
    return str(done[0].data.get("mac"))
