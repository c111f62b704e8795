"""Which roles a node may converge now: Crowbar's order, as a dependency graph of roles.

Crowbar's deployer converged barclamp by barclamp in run order, and within a barclamp role
by role in its element order. Here every Chef role a deployment pushes *needs* some others:

* the roles listed before it in its own barclamp (its element order: a server before its
  clients);
* outside the core, every core role (network, NTP, DNS, logging, the provisioner's client
  and the others: the core converges first), and every role of the barclamps it requires,
  transitively (keystone's after the database's).

Core barclamps do not wait for one another: each node's core roles converge together once
their servers have (the NTP and DNS clients after their servers).

A role on a node *starts* once every role it needs is *settled* (converged or failed on
every node that holds it) and converged on at least one of them; a needed role that failed
on every node that holds it *blocks* the roles that need it. A node converges all its roles
that may start in one chef-client run (its run list grows by them), then waits for more.

:class:`Schedule` keeps counts per role, so a change costs the roles of one node, and wakes
the waiting nodes only when a role becomes settled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wizard.catalog import Catalog

STEP_PREFIX = "converge:"
"""A node's converge of one role is the journal step ``converge:<role>``."""


def step_name(role: str) -> str:
    return STEP_PREFIX + role


def step_role(step: str) -> str | None:
    """The role a converge step converges, or None for any other step."""
    return step.removeprefix(STEP_PREFIX) if step.startswith(STEP_PREFIX) else None


@dataclass(frozen=True)
class RoleInfo:
    """A Chef role of the deployment, where it stands in the order."""

    name: str
    barclamp: str
    core: bool
    needs: frozenset[str]
    uses: frozenset[str] = frozenset()
    """The needs whose data the role reads: the roles before it in its barclamp and those
    of the barclamps it requires, not the core's (the core converges first, but a new NTP
    server list is no input of a database): a change to them re-converges it too."""


def role_graph(catalog: Catalog, roles: Iterable[str]) -> dict[str, RoleInfo]:
    """Every role in ``roles`` (the Chef roles the deployment pushes, in run-list order)
    with the roles it needs; roles not in ``roles`` are left out of the needs."""
    present = list(roles)
    barclamp_of = {role: catalog.roles[role].name for role in present}
    core = {role for role in present if catalog[barclamp_of[role]].category == "core"}
    graph: dict[str, RoleInfo] = {}
    for role in present:
        barclamp = catalog[barclamp_of[role]]
        element_order = [r.name for r in barclamp.roles]
        uses = {r for r in element_order[:element_order.index(role)] if r in barclamp_of}
        needs = set(uses)
        if role not in core:
            required = catalog.closure(catalog.requires(barclamp.name)) - {barclamp.name}
            uses |= {r for r in present if barclamp_of[r] in required}
            needs |= core | uses
        graph[role] = RoleInfo(role, barclamp.name, role in core, frozenset(needs),
                               frozenset(uses))
    return graph


class Blocked(Exception):
    """A role of the node cannot start: a role it needs converged on no node."""


class Schedule:
    """Who holds which role and what is settled, for the nodes of one apply."""

    def __init__(self, graph: Mapping[str, RoleInfo], holders: Mapping[str, list[str]],
                 to_converge: Mapping[str, list[str]]):
        """``holders``: each node's roles (run-list order); ``to_converge``: the roles each
        node has still to converge in this apply (the rest converged before)."""
        self.graph = graph
        self.roles_of = {node: [r for r in roles if r in graph] for node, roles in
                         holders.items()}
        self._pending = {role: 0 for role in graph}
        """Holders that have not settled the role yet."""
        self._converged = {role: 0 for role in graph}
        self._failed_on: dict[str, list[str]] = {role: [] for role in graph}
        self._left: dict[str, set[str]] = {}
        for node, roles in self.roles_of.items():
            left = set(to_converge.get(node, [])) & set(roles)
            self._left[node] = left
            for role in roles:
                if role in left:
                    self._pending[role] += 1
                else:
                    self._converged[role] += 1
        self._settled = asyncio.Event()

    def left(self, node: str) -> list[str]:
        """``node``'s roles still to converge, in run-list order."""
        return [r for r in self.roles_of.get(node, []) if r in self._left.get(node, ())]

    def converged(self, node: str) -> list[str]:
        """``node``'s roles converged so far, in run-list order."""
        return [r for r in self.roles_of.get(node, []) if r not in self._left.get(node, ())]

    def startable(self, node: str) -> list[str]:
        """``node``'s roles that may converge now (in run-list order).

        Raises :class:`Blocked` when none may and one never will."""
        left = self.left(node)
        ready = [r for r in left if all(self._ok(n) for n in self.graph[r].needs)]
        if ready:
            return ready
        for role in left:
            for need in sorted(self.graph[role].needs):
                if self._pending[need] == 0 and self._converged[need] == 0:
                    where = ", ".join(self._failed_on[need][:3])
                    raise Blocked(f"{role} needs {need}, which converged on no node "
                                  f"(it failed on {where})")
        return []

    def _ok(self, role: str) -> bool:
        return self._pending[role] == 0 and self._converged[role] > 0

    async def wait(self) -> None:
        """Until some role becomes settled."""
        await self._settled.wait()

    def done(self, node: str, roles: Iterable[str]) -> None:
        """``node`` converged ``roles``."""
        self._settle(node, roles, converged=True)

    def failed(self, node: str) -> None:
        """``node`` went to problem: every role it had left is settled, unconverged."""
        self._settle(node, list(self._left.get(node, ())), converged=False)

    def _settle(self, node: str, roles: Iterable[str], *, converged: bool) -> None:
        woke = False
        left = self._left.get(node, set())
        for role in roles:
            if role not in left:
                continue
            left.discard(role)
            self._pending[role] -= 1
            if converged:
                self._converged[role] += 1
            else:
                self._failed_on[role].append(node)
            woke |= self._pending[role] == 0
        if woke:  # wake every waiting node, then arm the next wake
            self._settled.set()
            self._settled = asyncio.Event()
