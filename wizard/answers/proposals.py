"""Proposals: the selected barclamps of an answers file, checked against the catalog.

A proposal holds attribute values and, per role, the nodes that hold it. Roles marked
``all_nodes`` (clients such as ntp-client) are not written: every node that does not hold a
conflicting role gets them, the admin node too when the role allows it (deployer-client,
whose handler records every node's chef-client run). The admin node may appear by its host
name where a role allows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from wizard.base.fields import HostName, Identifier, Tag
from wizard.base.model import Model
from wizard.base.problems import Finding, did_you_mean
from wizard.base.secrets import Secret, SecretError
from wizard.catalog import Barclamp, Catalog, Role

if TYPE_CHECKING:
    from wizard.answers import Answers, Node


class Proposal(Model):
    """A selected barclamp: its attributes and which nodes hold each of its roles."""

    proposal: Identifier = "default"
    attributes: dict[str, Any] = Field(default_factory=dict)
    roles: dict[Tag, list[HostName]] = Field(default_factory=dict)


def attribute_values(barclamp: Barclamp, given: dict[str, Any]) -> dict[str, Any]:
    """Every attribute of ``barclamp``: the proposal's value, else the default."""
    return {name: given.get(name, attr.default) for name, attr in barclamp.attributes.items()}


def assignments(answers: Answers, catalog: Catalog) -> dict[str, dict[str, list[str]]]:
    """``{barclamp: {role: [node names]}}`` for every selected barclamp, all_nodes included.

    Expects the selected barclamps to be in the catalog (see :func:`check`).
    """
    result: dict[str, dict[str, list[str]]] = {}
    for name in catalog.apply_order(answers.barclamps):
        proposal = answers.barclamps[name]
        result[name] = {
            role.name: list(dict.fromkeys(proposal.roles.get(role.name, [])))
            for role in catalog[name].roles
            if not role.all_nodes
        }
    held: dict[str, set[str]] = defaultdict(set)
    for roles in result.values():
        for held_role, names in roles.items():
            for node in names:
                held[node].add(held_role)
    nodes = [node.name for node in answers.nodes]
    for name in result:
        for role in catalog[name].roles:
            if role.all_nodes:
                everyone = [answers.admin.hostname, *nodes] if role.admin == "allowed" else nodes
                result[name][role.name] = [
                    node for node in everyone if held[node].isdisjoint(role.conflicts)
                ]
    return result


def check(answers: Answers, catalog: Catalog, *, complete: bool = True) -> Iterator[Finding]:
    """Every way the proposals break the catalog's rules, naming barclamp, role and node.

    With ``complete`` false, missing barclamps and roles short of nodes are not problems
    (:func:`allocate` fills them in), nor are required attributes not set yet (the operator
    sets them, before or after allocating).
    """
    known = [name for name in answers.barclamps if name in catalog]
    for name in answers.barclamps:
        if name not in catalog:
            yield Finding(("barclamps", name),
                          f"unknown barclamp {name!r}" + did_you_mean(name, catalog))
    for name in known:
        if complete:
            yield from _check_requires(answers, catalog, name)
        yield from _check_attributes(answers, catalog[name], complete)
        yield from _check_roles(answers, catalog[name], complete)
    if len(known) == len(answers.barclamps):
        yield from _check_nodes(answers, catalog)


def _check_requires(answers: Answers, catalog: Catalog, name: str) -> Iterator[Finding]:
    for required in catalog.requires(name):
        if required not in answers.barclamps:
            yield Finding(
                ("barclamps", name),
                f"{name} requires {required}, which is not selected: add '{required}: {{}}' "
                "under barclamps, or run `crowbar-wizard allocate FILE`",
            )


def _check_attributes(answers: Answers, barclamp: Barclamp, complete: bool) -> Iterator[Finding]:
    at = ("barclamps", barclamp.name, "attributes")
    given = answers.barclamps[barclamp.name].attributes
    for key, value in given.items():
        attr = barclamp.attributes.get(key)
        if attr is None:
            yield Finding((*at, key), f"{barclamp.name} has no attribute {key!r}"
                          + did_you_mean(key, barclamp.attributes))
            continue
        problem = attr.check(value)
        if problem is None and attr.type == "secret":
            problem = _secret_reference_problem(value)
        if problem:
            yield Finding((*at, key), f"{barclamp.name} attribute {key}: {problem}")
    for key, attr in barclamp.attributes.items():
        if complete and attr.required and key not in given:
            yield Finding(at if given else at[:-1],
                          f"{barclamp.name} attribute {key} is required: {attr.help}")


def _secret_reference_problem(value: str) -> str | None:
    secret = Secret(value)
    if secret.is_inline:
        return "a secret attribute is a reference: write env:NAME or file:PATH"
    try:
        secret.check()
    except SecretError as exc:
        return str(exc)
    return None


def _check_roles(answers: Answers, barclamp: Barclamp, complete: bool) -> Iterator[Finding]:
    proposal = answers.barclamps[barclamp.name]
    at = ("barclamps", barclamp.name, "roles")
    nodes = {node.name for node in answers.nodes}
    admin = answers.admin.hostname
    for role_name, names in proposal.roles.items():
        role = barclamp.role(role_name)
        if role is None:
            roles = ", ".join(r.name for r in barclamp.roles if not r.all_nodes)
            yield Finding((*at, role_name),
                          f"{barclamp.name} has no role {role_name!r} (roles: {roles})")
            continue
        if role.all_nodes:
            yield Finding((*at, role_name),
                          f"{role_name} goes on every node by itself: remove this list")
            continue
        seen: set[str] = set()
        for index, name in enumerate(names):
            where = (*at, role_name, index)
            if name in seen:
                yield Finding(where, f"{role_name}: node {name!r} is listed twice")
            seen.add(name)
            if name == admin:
                if role.admin == "never":
                    yield Finding(where, f"{role_name} cannot be placed on the admin node")
            elif name not in nodes:
                yield Finding(where, f"{role_name}: node {name!r} is not in nodes")
            elif role.admin == "only":
                yield Finding(where, f"{role_name} runs on the admin node ({admin}) only")
    for role in barclamp.roles:
        if not role.all_nodes:
            yield from _check_count(barclamp, role, proposal.roles, complete)


def _check_count(
    barclamp: Barclamp, role: Role, roles: dict[str, list[str]], complete: bool
) -> Iterator[Finding]:
    at = ("barclamps", barclamp.name, "roles", role.name)
    count = len(set(roles.get(role.name, [])))
    if complete and count < role.min_nodes:
        yield Finding(
            at if role.name in roles else at[:-1],
            f"{barclamp.name} role {role.name} needs at least {_nodes(role.min_nodes)}, "
            f"{count} assigned",
        )
    if role.max_nodes is not None and count > role.max_nodes:
        yield Finding(
            at,
            f"{barclamp.name} role {role.name} accepts at most {_nodes(role.max_nodes)}, "
            f"{count} assigned",
        )


def _nodes(count: int) -> str:
    return f"{count} node" if count == 1 else f"{count} nodes"


def _check_nodes(answers: Answers, catalog: Catalog) -> Iterator[Finding]:
    """Conflicting roles on one node, and nodes lacking the hardware a role needs."""
    by_name = {node.name: node for node in answers.nodes}
    held: dict[str, list[tuple[str, Role, tuple[Any, ...]]]] = defaultdict(list)
    for barclamp_name, proposal in answers.barclamps.items():
        barclamp = catalog[barclamp_name]
        for role_name, names in proposal.roles.items():
            role = barclamp.role(role_name)
            if role is None or role.all_nodes:
                continue
            for index, name in enumerate(names):
                loc = ("barclamps", barclamp_name, "roles", role_name, index)
                held[name].append((barclamp_name, role, loc))
                node = by_name.get(name)
                if node is not None:
                    lacking = hardware_lacking(node, role)
                    if lacking:
                        yield Finding(loc, f"node {name} cannot hold {role_name} "
                                           f"({barclamp_name}): {lacking}")
    for name, roles in held.items():
        for i, (bc_a, role_a, _) in enumerate(roles):
            for bc_b, role_b, loc_b in roles[i + 1:]:
                if role_b.name in role_a.conflicts or role_a.name in role_b.conflicts:
                    yield Finding(loc_b, f"node {name} holds both {role_a.name} ({bc_a}) and "
                                         f"{role_b.name} ({bc_b}), which conflict")


def hardware_lacking(node: Node, role: Role) -> str | None:
    """What ``node`` lacks to hold ``role`` (None when it has it, or its hardware is unknown)."""
    hw, hints = node.hardware, role.hints
    if hw is None:
        return None
    if hints.virtualization and not hw.virtualization:
        return "no hardware virtualization"
    if hw.disks < hints.min_disks:
        return f"{hw.disks} disks, needs {hints.min_disks}"
    if hw.memory_gb < hints.min_memory_gb:
        return f"{hw.memory_gb} GB memory, needs {hints.min_memory_gb}"
    if hw.cpu_cores < hints.min_cpu_cores:
        return f"{hw.cpu_cores} CPU cores, needs {hints.min_cpu_cores}"
    return None


# --- auto-allocation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """One role put on one node by :func:`allocate`, and why."""

    barclamp: str
    role: str
    node: str
    reason: str

    def __str__(self) -> str:
        return f"{self.node} <- {self.role} ({self.barclamp}): {self.reason}"


class AllocationError(ValueError):
    """Roles that cannot be placed, each with the constraint that stops it."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("\n".join(reasons))


def allocate(answers: Answers, catalog: Catalog) -> tuple[Answers, list[Placement]]:
    """Answers with every required barclamp selected and every empty role placed.

    Roles that already have nodes keep them. The result is deterministic: admin-only roles
    on the admin node; controller roles spread over the nodes meant for them (fewest roles
    first); ``most_memory`` and ``most_disks`` roles on the biggest fitting nodes. Raises
    :class:`AllocationError` naming every role whose constraints no node meets.
    """
    result = answers.model_copy(deep=True)
    order = catalog.apply_order(catalog.closure(result.barclamps))
    for name in order:
        if name not in result.barclamps:
            result.barclamps[name] = Proposal()
    held: dict[str, set[str]] = defaultdict(set)
    for name in order:
        for held_role, names in result.barclamps[name].roles.items():
            for node in names:
                held[node].add(held_role)
    placements: list[Placement] = []
    failures: list[str] = []
    for name in order:
        proposal = result.barclamps[name]
        for role in catalog[name].roles:
            if role.all_nodes or proposal.roles.get(role.name):
                continue
            chosen, why_not = _place(result, catalog, role, held)
            if len(chosen) < role.min_nodes:
                failures.append(f"{name} role {role.name} needs {_nodes(role.min_nodes)}, "
                                f"{len(chosen)} can take it: {why_not}")
                continue
            if chosen:
                proposal.roles[role.name] = [node for node, _ in chosen]
            for node, reason in chosen:
                held[node].add(role.name)
                placements.append(Placement(name, role.name, node, reason))
    if failures:
        raise AllocationError(failures)
    return result, placements


def _place(
    answers: Answers, catalog: Catalog, role: Role, held: dict[str, set[str]]
) -> tuple[list[tuple[str, str]], str]:
    """The nodes for ``role`` with a reason each, and why others could not take it."""
    admin = answers.admin.hostname
    if role.admin == "only" or (role.admin == "allowed" and not role.intended):
        return [(admin, "runs on the admin node")], ""
    excluded: list[str] = []
    candidates = []
    for node in answers.nodes:
        clash = next((r for r in held[node.name] if _conflict(catalog, role.name, r)), None)
        lacking = hardware_lacking(node, role)
        if clash or lacking:
            excluded.append(f"{node.name}: {f'conflicts with {clash}' if clash else lacking}")
        else:
            candidates.append(node)
    tagged = [n for n in candidates if not set(role.intended).isdisjoint(n.roles)]
    if tagged or not role.intended:
        pool, why = tagged or candidates, ""
        count = role.suggested_nodes or role.max_nodes or len(pool)
    else:  # nobody is meant for it: only as many as it must have
        pool, why = candidates, f"no node is meant as {' or '.join(role.intended)}; "
        count = role.min_nodes
    pool = sorted(pool, key=_ranking(role, held))
    chosen = [(node.name, why + _reason(role, node, held)) for node in pool[:count]]
    if not answers.nodes:
        return chosen, "there are no nodes"
    return chosen, "; ".join(excluded) or "not enough nodes"


def _conflict(catalog: Catalog, role: str, other: str) -> bool:
    mine, theirs = catalog.roles.get(role), catalog.roles.get(other)
    return any(
        bc is not None and (r := bc.role(a)) is not None and b in r.conflicts
        for bc, a, b in ((mine, role, other), (theirs, other, role))
    )


def _ranking(role: Role, held: dict[str, set[str]]) -> Callable[[Node], tuple[Any, ...]]:
    def key(node: Node) -> tuple[Any, ...]:
        hw = node.hardware
        if role.prefer == "most_memory":
            return (-(hw.memory_gb if hw else -1), node.name)
        if role.prefer == "most_disks":
            return (-(hw.disks if hw else -1), node.name)
        return (len(held[node.name]), node.name)

    return key


def _reason(role: Role, node: Node, held: dict[str, set[str]]) -> str:
    parts = []
    meant = sorted(set(role.intended) & set(node.roles))
    if meant:
        parts.append(f"meant as {', '.join(meant)}")
    hw = node.hardware
    if role.hints.virtualization and hw is not None:
        parts.append("has virtualization")
    if role.prefer == "most_memory":
        parts.append(f"{hw.memory_gb} GB memory, most first" if hw else "memory unknown")
    elif role.prefer == "most_disks":
        parts.append(f"{hw.disks} disks, most first" if hw else "disks unknown")
    else:
        parts.append(f"held {len(held[node.name])} other roles, fewest first")
    return "; ".join(parts)
