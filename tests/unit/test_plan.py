"""The apply plan against the journal, and how ``--dry-run`` says it."""

from __future__ import annotations

import json
from pathlib import Path

from wizard.chef.push import Target
from wizard.engine.journal import SITE, Journal
from wizard.engine.plan import CHEF_STEP, DHCP_STEP, NODE_STEPS, build, describe, digest

HOSTS = {f"n{i}": f"52:54:00:00:00:0{i},10.0.0.{i},n{i},1h" for i in range(1, 4)}
ROLES = [Target("roles", f"r{i}", {"name": f"r{i}", "run_list": []}) for i in range(4)]
ITEM = Target("data", "bc-ntp-default", {"id": "bc-ntp-default", "servers": []}, "crowbar")


def finish(journal: Journal, node: str, step: str, detail: str | None = None) -> None:
    journal.step_started(node, step)
    journal.step_finished(node, step, detail)


def test_a_first_apply_does_everything() -> None:
    plan = build(HOSTS, [*ROLES, ITEM], list(HOSTS), None)
    assert describe(plan) == [
        "DHCP: add 3 DHCP hosts",
        "Chef: create 1 Chef data bag item, create 4 Chef roles",
        "nodes: power-cycle 3 nodes, install the OS on 3 nodes, register in Chef 3 nodes, "
        "make ready 3 nodes",
    ]


def test_the_plan_is_a_diff_against_the_journal(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        finish(journal, SITE, DHCP_STEP, json.dumps({"n1": HOSTS["n1"], "n2": "old line",
                                                     "gone": "x"}))
        for role in ROLES:
            finish(journal, SITE, CHEF_STEP + role.label, digest(role.body))
        finish(journal, SITE, CHEF_STEP + ITEM.label, "an older digest")
        journal.transition("n1", "ready")
        for step, _ in NODE_STEPS:
            finish(journal, "n3", step)
        journal.transition("n3", "problem", "wait-installed: timed out")
        for step, _ in NODE_STEPS[:2]:
            finish(journal, "n2", step)
        journal.step_started("n2", NODE_STEPS[2][0])
        plan = build(HOSTS, [*ROLES, ITEM], list(HOSTS), journal)
    assert plan.nodes["n2"][0] == NODE_STEPS[2][0], "in-flight steps are planned again"
    assert "n1" not in plan.nodes
    assert plan.nodes["n3"] == [s for s, _ in NODE_STEPS] + ["mark-ready"], "starts over"
    assert describe(plan) == [
        "DHCP: add 1 DHCP host, change 1 DHCP host, remove 1 DHCP host",
        "Chef: update 1 Chef data bag item (4 unchanged)",
        "nodes: power-cycle 1 node, install the OS on 2 nodes, register in Chef 2 nodes, "
        "make ready 2 nodes",
    ]


def test_nothing_left(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        finish(journal, SITE, DHCP_STEP, json.dumps(HOSTS))
        finish(journal, SITE, CHEF_STEP + ITEM.label, digest(ITEM.body))
        for node in HOSTS:
            journal.transition(node, "ready")
        plan = build(HOSTS, [ITEM], list(HOSTS), journal)
    assert plan.empty
    assert describe(plan) == ["nothing to do: every step is done and every node ready"]
