"""Push a deployment's Chef objects to a Chef server: concurrent, idempotent, prunable.

The cookbooks go first (the environment pins them: a node must never find its
environment naming a version that is not there yet), then the environment (nodes name
it), then the data bag, then every role, data bag item and node at once over the server's
pooled connection. Each object is created, updated or left as it is. Everything pushed but
the cookbooks carries a marker attribute (``crowbar_wizard``: who made it and for which
site), so ``prune`` removes only objects this tool pushed for this site that the answers
no longer produce, never anything else (never a cookbook).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from wizard.chef.api import ChefAuthError, ChefError, ChefServer, Outcome
from wizard.chef.objects import ChefObjects
from wizard.chef.upload import upload_cookbook

MARKER = "crowbar_wizard"
KIND_NAMES = {"cookbooks": "cookbook", "environments": "environment", "roles": "role",
              "data": "data bag item", "nodes": "node"}


@dataclass(frozen=True)
class Target:
    """One object to push: its kind (API collection, or ``data`` with a bag) and body."""

    kind: str
    name: str
    body: dict[str, Any]
    bag: str | None = None

    @property
    def label(self) -> str:
        where = f"{self.bag}/" if self.bag else ""
        return f"{KIND_NAMES[self.kind]} {where}{self.name}"


@dataclass
class PushReport:
    """What a push did, object by object."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Objects not tried because the push stopped (an authentication failure)."""

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())

    @property
    def changed(self) -> bool:
        return any(o != "unchanged" for o in self.outcomes.values()) or bool(self.pruned)


class PushError(Exception):
    """A push that did not finish; the report says what was and was not pushed."""

    def __init__(self, message: str, report: PushReport):
        super().__init__(message)
        self.report = report


def marker(site: str) -> dict[str, str]:
    return {"managed_by": "crowbar-wizard", "site": site}


def targets(objects: ChefObjects, site: str) -> list[Target]:
    """Every object to push, cookbooks first; each but the cookbooks carries the marker
    (a cookbook version has no place for one)."""
    mark = {MARKER: marker(site)}
    env = objects.environment
    found = [Target("cookbooks", name, cookbook.manifest())
             for name, cookbook in objects.cookbooks.items()]
    found += [Target("environments", env["name"], env | {
        "default_attributes": env["default_attributes"] | mark})]
    found += [Target("roles", name, role | {"default_attributes": role["default_attributes"]
                                            | mark})
              for name, role in objects.roles.items()]
    found += [Target("data", item, body | mark, bag)
              for bag, items in objects.data_bags.items() for item, body in items.items()]
    found += [Target("nodes", name, node | {"normal": node["normal"] | mark})
              for name, node in objects.nodes.items()]
    return found


async def push(server: ChefServer, objects: ChefObjects, site: str, *, concurrency: int = 8,
               prune: bool = False, force: bool = False) -> PushReport:
    """Push every object; raise :class:`PushError` (with the report) unless all went.

    ``force`` replaces a cookbook version the server holds with other files (see
    :func:`wizard.chef.upload.upload_cookbook`).
    """
    report = PushReport()
    todo = targets(objects, site)
    cookbooks = [t for t in todo if t.kind == "cookbooks"]
    first, rest = todo[len(cookbooks)], todo[len(cookbooks) + 1:]
    gate = asyncio.Semaphore(concurrency)
    try:
        await _all(cookbooks, gate, lambda t: _record(report, t.label, upload_cookbook(
            server, objects.cookbooks[t.name], force=force)))
        failed = [t.label for t in cookbooks if t.label in report.failed]
        if failed:
            report.skipped = [t.label for t in todo[len(cookbooks):]]
            raise PushError(f"{len(failed)} of {len(cookbooks)} cookbooks could not be "
                            "uploaded, so nothing that pins them was pushed", report)
        await _push_one(server, first, report)
        if first.label in report.failed:
            report.skipped = [t.label for t in rest]
            raise PushError(f"the environment could not be pushed: "
                            f"{report.failed[first.label]}", report)
        for bag in objects.data_bags:
            await server.ensure_data_bag(bag)
        present = await _present(server, objects)
        await _all(rest, gate, lambda t: _push_one(
            server, t, report, (t.kind, t.bag, t.name) not in present))
        if prune and not report.failed:
            await _prune(server, objects, site, todo, report)
    except ChefAuthError as exc:
        done = set(report.outcomes) | set(report.failed)
        report.skipped = [t.label for t in todo if t.label not in done]
        raise PushError(str(exc), report) from None
    except ChefError as exc:  # the data bag, or listing for prune
        raise PushError(str(exc), report) from None
    if report.failed:
        raise PushError(f"{len(report.failed)} of {len(todo)} objects could not be pushed",
                        report)
    return report


async def _all(todo: list[Target], gate: asyncio.Semaphore,
               one: Callable[[Target], Awaitable[None]]) -> None:
    """``one`` for every target at once, ``gate`` bounding them; an authentication
    failure cancels the others."""
    async def limited(target: Target) -> None:
        async with gate:
            await one(target)
    tasks = [asyncio.ensure_future(limited(t)) for t in todo]
    try:
        await asyncio.gather(*tasks)
    except ChefAuthError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _present(server: ChefServer, objects: ChefObjects) -> set[tuple[str, str | None, str]]:
    """What the server holds already, by listing (a new object then costs one request)."""
    found: set[tuple[str, str | None, str]] = {
        (kind, None, name) for kind in ("roles", "nodes") for name in await server.list(kind)}
    for bag in objects.data_bags:
        found |= {("data", bag, item) for item in await server.list_items(bag)}
    return found


async def _push_one(server: ChefServer, target: Target, report: PushReport,
                    missing: bool = False) -> None:
    if target.kind == "data":
        assert target.bag is not None
        work = server.upsert_item(target.bag, target.body, known_missing=missing)
    else:
        work = server.upsert(target.kind, target.body, known_missing=missing,
                             merge=target.kind == "nodes")
    await _record(report, target.label, work)


async def _record(report: PushReport, label: str, work: Awaitable[Outcome]) -> None:
    """What came of pushing one object; only an authentication failure goes up."""
    try:
        outcome = await work
    except ChefAuthError:
        raise
    except ChefError as exc:
        report.failed[label] = str(exc)
        return
    report.outcomes[label] = outcome


async def _prune(server: ChefServer, objects: ChefObjects, site: str, wanted: list[Target],
                 report: PushReport) -> None:
    keep = {(t.kind, t.bag, t.name) for t in wanted}
    mark = marker(site)
    for kind, field_name in (("nodes", "normal"), ("roles", "default_attributes"),
                             ("environments", "default_attributes")):
        for name in await server.list(kind):
            if (kind, None, name) in keep or name == "_default":
                continue
            found = await server.get(kind, name)
            if found and (found.get(field_name) or {}).get(MARKER) == mark:
                await server.delete(kind, name)
                report.pruned.append(f"{KIND_NAMES[kind]} {name}")
    for bag in objects.data_bags:
        for item in await server.list_items(bag):
            if ("data", bag, item) in keep:
                continue
            found = await server.get_item(bag, item)
            if found and found.get(MARKER) == mark:
                await server.delete_item(bag, item)
                report.pruned.append(f"data bag item {bag}/{item}")
