"""The plan: what ``apply`` still has to do, from the answers and what the journal records.

Site steps come first: the DHCP reservations and dnsmasq config, then the Chef environment,
roles and data bag items (one step per object, so a changed attribute updates one item).
Then every node walks its lifecycle, one step per side effect::

    hardware-installing  bmc-boot-network, power-cycle
    installing           serve-install, wait-installed
    installed            bmc-boot-disk
    readying             chef-node (the node object, with the roles converged so far),
                         converge:<role> for each of its Chef roles (see
                         :mod:`wizard.engine.convergence`: several may converge in one run)
    ready

The admin node holds Chef roles too (the DNS, NTP and logging servers): it has only its
converge steps. A step the journal records as done with the same inputs (its digest) is not
planned again; a node already ready stays ready. One in ``problem`` starts its lifecycle
over, unless it was installed and registered and failed while converging: then only the
roles it has not converged are planned again.
:func:`describe` says it in words for ``apply --dry-run``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wizard.chef.push import KIND_NAMES, Target
from wizard.engine.convergence import step_name, step_role
from wizard.engine.journal import SITE, Journal, StepRecord

NODE_STEPS: tuple[tuple[str, str], ...] = (
    ("bmc-boot-network", "hardware-installing"), ("power-cycle", "hardware-installing"),
    ("serve-install", "installing"), ("wait-installed", "installing"),
    ("bmc-boot-disk", "installed"), ("chef-node", "readying"),
)
"""Each node's steps, in order, with the lifecycle state the node is in while they run."""
DHCP_STEP = "dhcp"
CHEF_STEP = "chef:"
REINSTALL = "reinstall requested"
"""The reason of a node ``node reinstall`` put back in ``allocated``."""
ATTRIBUTES_STEP = "attributes"
"""The site step recording the barclamps' attributes as pushed (secrets as digests), for
the next plan to say which changed (:func:`wizard.engine.changes.attribute_changes`)."""
RELEASE_STEPS = ("power-off", "forget-chef", "mark-released")
"""A released node's steps: off through its BMC, its Chef node and client deleted, then
``released`` (its DHCP reservation and boot files go with the site's DHCP step)."""


def digest(value: Any) -> str:
    """A short fingerprint of a step's inputs."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class NodeChange:
    """What a change to the site does to a node that converged before."""

    added: list[str] = field(default_factory=list)
    """Roles it converges for the first time (its run list grows)."""
    removed: list[str] = field(default_factory=list)
    """Roles it no longer holds (taken off its run list)."""
    reconverge: list[str] = field(default_factory=list)
    """Roles it holds whose inputs changed: they converge again."""

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.reconverge)


@dataclass
class ChefChange:
    target: Target
    action: str  # create, update
    digest: str


@dataclass
class Plan:
    """What is left to do."""

    dhcp_hosts: dict[str, str]
    """``{node: reservation line}`` as they should be."""
    dhcp_changes: Counter[str] = field(default_factory=Counter)
    """add / change / remove counts against the last applied reservations."""
    chef: list[ChefChange] = field(default_factory=list)
    chef_unchanged: int = 0
    nodes: dict[str, list[str]] = field(default_factory=dict)
    """``{node: steps still to run}`` (nodes with nothing left are not listed)."""
    changes: dict[str, NodeChange] = field(default_factory=dict)
    """What changes on each ready node that has something to do."""
    releases: list[str] = field(default_factory=list)
    """Nodes to release: gone from the answers."""
    attributes: list[str] = field(default_factory=list)
    """Barclamp attributes changed since the last apply pushed them, in words."""
    added: list[str] = field(default_factory=list)
    """Nodes new to a deployed site (one with a ready node), or released and put back."""
    reinstalls: list[str] = field(default_factory=list)
    """Nodes ``node reinstall`` sent back to a fresh install."""

    @property
    def empty(self) -> bool:
        return not (self.dhcp_changes or self.chef or self.nodes)


def build(dhcp_hosts: dict[str, str], chef_targets: list[Target], node_names: list[str],
          journal: Journal | None, converge: Mapping[str, list[str]] | None = None,
          inputs: Mapping[str, Mapping[str, str]] | None = None) -> Plan:
    """The plan for these reservations, Chef objects and nodes, given the journal.

    ``converge``: each node's Chef roles (the admin node's too, which has no other steps);
    none when there is no Chef server to converge from. ``inputs``: the digest of each of
    those roles' inputs on each node (:mod:`wizard.engine.changes`): a converged role whose
    recorded digest differs converges again. A node the journal knows (past
    ``discovered``) that neither the nodes nor ``converge`` name any more is released."""
    converge = converge or {}
    inputs = inputs or {}
    done = {(s.node, s.step): s for s in journal.steps()} if journal else {}
    states = journal.states() if journal else {}
    plan = Plan(dhcp_hosts=dhcp_hosts)
    last = done.get((SITE, DHCP_STEP))
    before: dict[str, str] = {}
    if last is not None and last.status == "done" and last.detail:
        before = json.loads(last.detail)
    if last is None or last.status != "done" or before != dhcp_hosts:
        plan.dhcp_changes = Counter(
            "add" if name not in before else "change"
            for name, line in dhcp_hosts.items() if before.get(name) != line)
        plan.dhcp_changes["remove"] = len(set(before) - set(dhcp_hosts))
        plan.dhcp_changes = +plan.dhcp_changes
        if not plan.dhcp_changes:  # first run with nothing to reserve, or a failed one
            plan.dhcp_changes["rewrite"] = 1
    for target in chef_targets:
        step = done.get((SITE, CHEF_STEP + target.label))
        wanted = digest(target.body)
        if step is not None and step.status == "done" and step.detail == wanted:
            plan.chef_unchanged += 1
        else:
            action = "update" if step is not None and step.status == "done" else "create"
            plan.chef.append(ChefChange(target, action, wanted))
    for name in [*node_names, *(n for n in converge if n not in node_names)]:
        state = states.get(name, ("",))[0]
        lifecycle = [step for step, _ in NODE_STEPS] if name in node_names else []
        roles = converge.get(name, [])

        def left(steps: list[str], name: str = name) -> list[str]:
            return [step for step in steps
                    if (rec := done.get((name, step))) is None or rec.status != "done"]
        if state == "problem" and (left(lifecycle) or not roles):
            # failed before it converged: from the start (boot device, power cycle...)
            plan.nodes[name] = [*lifecycle, *map(step_name, roles), "mark-ready"]
            continue
        converged = {role for (node, step), rec in done.items()
                     if node == name and rec.status == "done"
                     and (role := step_role(step)) is not None}
        change = NodeChange(
            added=[r for r in roles if r not in converged],
            removed=sorted(converged - set(roles)),
            reconverge=[r for r in roles if r in converged
                        and _stale(done[(name, step_name(r))], r, inputs.get(name, {}).get(r))])
        if state == "ready" and not change:
            continue
        if state == "ready":
            plan.changes[name] = change
        steps = left(lifecycle) + (["run-list"] if change.removed else [])
        redo = {*change.added, *change.reconverge}
        plan.nodes[name] = [*steps, *(step_name(r) for r in roles if r in redo), "mark-ready"]
    for name, (state, _) in states.items():
        if name not in node_names and name not in converge and state not in (
                "discovered", "released"):
            plan.nodes[name] = list(RELEASE_STEPS)
            plan.releases.append(name)
    deployed = any(state == "ready" for state, _ in states.values())
    for name in node_names:
        state, reason = states.get(name, ("", None))
        if state == "allocated" and reason == REINSTALL:
            plan.reinstalls.append(name)
        elif deployed and state in ("", "discovered", "released") and not any(
                (name, step) in done for step, _ in NODE_STEPS):
            plan.added.append(name)
    return plan


def _stale(step: StepRecord, role: str, wanted: str | None) -> bool:
    """Whether ``role``'s inputs changed since its converge ``step`` (its run recorded the
    digest of each role it converged; unknown either side, as in a journal from before
    inputs were recorded: not)."""
    if wanted is None or not step.detail:
        return False
    try:
        had = json.loads(step.detail).get("inputs", {}).get(role)
    except (ValueError, AttributeError):
        return False
    return isinstance(had, str) and had != wanted


NOTHING_TO_DO = "nothing to do: every step is done and every node ready"
"""What ``apply --dry-run`` says of a site that is as its answers say."""


def describe(plan: Plan) -> list[str]:
    """The plan in words, a line per part (``apply --dry-run``)."""
    if plan.empty:
        return [NOTHING_TO_DO]
    lines = []
    if plan.dhcp_changes:
        parts = [f"{verb} {n} DHCP host{'s' if n != 1 else ''}"
                 for verb, n in sorted(plan.dhcp_changes.items()) if verb != "rewrite"]
        lines.append("DHCP: " + (", ".join(parts) or "write the dnsmasq config"))
    if plan.chef:
        counts = Counter((c.action, KIND_NAMES[c.target.kind]) for c in plan.chef)
        parts = [f"{action} {n} Chef {kind}{'s' if n != 1 else ''}"
                 for (action, kind), n in sorted(counts.items())]
        lines.append("Chef: " + ", ".join(parts)
                     + (f" ({plan.chef_unchanged} unchanged)" if plan.chef_unchanged else ""))
    if plan.attributes:
        lines += ["attributes changed:", *(f"  {line}" for line in plan.attributes)]
    if plan.nodes:
        steps = Counter(step for left in plan.nodes.values() for step in left)
        words = {"power-cycle": "power-cycle", "wait-installed": "install the OS on",
                 "chef-node": "register in Chef", "mark-ready": "make ready",
                 "mark-released": "release"}
        parts = [f"{verb} {steps[step]} node{'s' if steps[step] != 1 else ''}"
                 for step, verb in words.items() if steps[step]]
        lines.append("nodes: " + ", ".join(parts))
        converging = [len([s for s in left if s.startswith(step_name(""))])
                      for left in plan.nodes.values()]
        if sum(converging):
            nodes = sum(1 for n in converging if n)
            lines.append(f"converge: {sum(converging)} role{'s' if sum(converging) != 1 else ''}"
                         f" on {nodes} node{'s' if nodes != 1 else ''}, in Crowbar's order "
                         f"(core first, then each barclamp's roles in run order)")
    return lines + node_lines(plan)


def node_lines(plan: Plan) -> list[str]:
    """What changes on each node that was deployed or is released, a line per node."""
    lines = []
    for name, change in sorted(plan.changes.items()):
        parts = [*(f"+role[{r}]" for r in change.added), *(f"-role[{r}]" for r in change.removed)]
        words = [f"run list {' '.join(parts)}"] if parts else []
        if change.reconverge:
            words.append(f"converge again {', '.join(change.reconverge)} (inputs changed)")
        lines.append(f"  {name}: {'; '.join(words)}")
    for name in sorted(plan.releases):
        lines.append(f"  {name}: release: power off, delete its Chef node and client, "
                     f"drop its DHCP reservation and boot files")
    for name in plan.added:
        roles = sum(1 for step in plan.nodes.get(name, []) if step_role(step) is not None)
        lines.append(f"  {name}: add: install its OS, then converge {roles} "
                     f"role{'s' if roles != 1 else ''}")
    for name in plan.reinstalls:
        lines.append(f"  {name}: reinstall: power-cycle into a fresh install with a new Chef "
                     f"client key, then converge its roles")
    taken = {role: name for name, change in plan.changes.items() for role in change.removed}
    for name, change in sorted(plan.changes.items()):
        lines += [f"  role[{role}] moves from {taken[role]} to {name}"
                  for role in change.added if role in taken]
    return ["changes per node:", *lines] if lines else []
