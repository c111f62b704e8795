"""The plan of a change to a deployed site: roles added, removed, converged again with new
inputs; nodes released; nothing listed for a node the change does not reach."""

from __future__ import annotations

import json
from pathlib import Path

from wizard.engine.convergence import step_name
from wizard.engine.journal import SITE, Journal
from wizard.engine.plan import DHCP_STEP, NODE_STEPS, REINSTALL, RELEASE_STEPS, build, describe

HOSTS = {f"n{i}": f"52:54:00:00:00:0{i},10.0.0.{i},n{i},1h" for i in range(1, 4)}
ROLES = {"n1": ["a", "b"], "n2": ["a"], "n3": ["a"]}
INPUTS = {node: {role: f"{role}-v1" for role in roles} for node, roles in ROLES.items()}


def deployed(journal: Journal, roles: dict[str, list[str]] = ROLES,
             inputs: dict[str, dict[str, str]] = INPUTS) -> None:
    """Every node of ``roles`` ready, each role converged with ``inputs``."""
    journal.step_started(SITE, DHCP_STEP)
    journal.step_finished(SITE, DHCP_STEP, json.dumps(HOSTS))
    for node, held in roles.items():
        for step, _ in NODE_STEPS:
            journal.step_started(node, step)
            journal.step_finished(node, step, "10.1.0.1:623" if step == NODE_STEPS[0][0]
                                  else None)
        steps = [step_name(role) for role in held]
        journal.steps_started(node, steps, detail="{}")
        journal.steps_ended(node, steps, ok=True, detail=json.dumps(
            {"status": "success", "inputs": {r: inputs[node][r] for r in held}}))
        journal.transition(node, "ready")


def test_an_unchanged_site_has_nothing_to_do(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        deployed(journal)
        plan = build(HOSTS, [], list(HOSTS), journal, ROLES, INPUTS)
    assert plan.empty and describe(plan) == [
        "nothing to do: every step is done and every node ready"]


def test_a_role_added_to_one_node_reaches_that_node_alone(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        deployed(journal)
        wanted = {**ROLES, "n2": ["a", "b"]}
        inputs = {**INPUTS, "n2": {"a": "a-v1", "b": "b-v1"}}
        plan = build(HOSTS, [], list(HOSTS), journal, wanted, inputs)
    assert plan.nodes == {"n2": [step_name("b"), "mark-ready"]}
    assert describe(plan)[-2:] == ["changes per node:", "  n2: run list +role[b]"]


def test_a_role_taken_off_a_node_leaves_its_run_list(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        deployed(journal)
        plan = build(HOSTS, [], list(HOSTS), journal, {**ROLES, "n1": ["a"]}, INPUTS)
    assert plan.nodes == {"n1": ["run-list", "mark-ready"]}
    assert plan.changes["n1"].removed == ["b"]
    assert describe(plan)[-1] == "  n1: run list -role[b]"


def test_new_inputs_converge_the_role_again_where_it_runs(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        deployed(journal)
        inputs = {node: {**held, "a": "a-v2"} if node != "n3" else held
                  for node, held in INPUTS.items()}
        plan = build(HOSTS, [], list(HOSTS), journal, ROLES, inputs)
    assert plan.nodes == {"n1": [step_name("a"), "mark-ready"],
                          "n2": [step_name("a"), "mark-ready"]}
    assert describe(plan)[-2:] == ["  n1: converge again a (inputs changed)",
                                   "  n2: converge again a (inputs changed)"]


def test_a_journal_without_inputs_converges_nothing_again(tmp_path: Path) -> None:
    """Runs recorded before inputs were: unknown is not changed."""
    with Journal.open(tmp_path / "j.db") as journal:
        deployed(journal)
        journal.steps_ended("n1", [step_name("a")], ok=True, detail='{"status": "success"}')
        plan = build(HOSTS, [], list(HOSTS), journal, ROLES,
                     {**INPUTS, "n1": {"a": "a-v2", "b": "b-v1"}})
    assert plan.empty


def test_a_node_gone_from_the_answers_is_released_not_the_admin_nor_a_discovered_one(
        tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        deployed(journal, {**ROLES, "admin": ["a"]},
                 {**INPUTS, "admin": {"a": "a-v1"}})
        journal.transition("m-525400000009", "discovered")
        hosts = {k: v for k, v in HOSTS.items() if k != "n3"}
        plan = build(hosts, [], list(hosts), journal,
                     {"n1": ROLES["n1"], "n2": ROLES["n2"], "admin": ["a"]},
                     {**INPUTS, "admin": {"a": "a-v1"}})
    assert plan.releases == ["n3"]
    assert plan.nodes == {"n3": list(RELEASE_STEPS)}
    assert describe(plan) == [
        "DHCP: remove 1 DHCP host", "nodes: release 1 node", "changes per node:",
        "  n3: release: power off, delete its Chef node and client, drop its DHCP "
        "reservation and boot files"]


def test_a_released_node_put_back_is_deployed_afresh(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        deployed(journal)
        journal.forget("n3", state="released")
        plan = build(HOSTS, [], list(HOSTS), journal, ROLES, INPUTS)
    assert plan.nodes == {"n3": [*(s for s, _ in NODE_STEPS), step_name("a"), "mark-ready"]}
    assert "n3" not in plan.changes


def test_a_role_moved_between_nodes_is_said_so(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        deployed(journal)
        wanted = {"n1": ["a"], "n2": ["a", "b"], "n3": ["a"]}
        plan = build(HOSTS, [], list(HOSTS), journal, wanted,
                     {**INPUTS, "n2": {"a": "a-v1", "b": "b-v1"}})
    assert describe(plan)[-3:] == ["  n1: run list -role[b]", "  n2: run list +role[b]",
                                   "  role[b] moves from n1 to n2"]


def test_new_and_reinstalled_nodes_are_listed_on_a_deployed_site(tmp_path: Path) -> None:
    hosts = {**HOSTS, "n4": "52:54:00:00:00:04,10.0.0.4,n4,1h"}
    with Journal.open(tmp_path / "j.db") as journal:
        deployed(journal)
        journal.forget("n2", state="allocated", reason=REINSTALL)
        plan = build(hosts, [], list(hosts), journal, {**ROLES, "n4": ["a"]},
                     {**INPUTS, "n4": {"a": "a-v1"}})
    assert plan.added == ["n4"] and plan.reinstalls == ["n2"]
    assert describe(plan)[-2:] == [
        "  n4: add: install its OS, then converge 1 role",
        "  n2: reinstall: power-cycle into a fresh install with a new Chef client key, "
        "then converge its roles"]
