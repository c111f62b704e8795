"""Crowbar's converge order as a role graph, and the schedule that lets roles start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from wizard.catalog import default_catalog
from wizard.engine.convergence import Blocked, RoleInfo, Schedule, role_graph, step_name
from wizard.engine.journal import Journal
from wizard.engine.plan import NODE_STEPS, build, describe


def graph(**needs: list[str]) -> dict[str, RoleInfo]:
    return {role: RoleInfo(role, "bc", False, frozenset(n)) for role, n in needs.items()}


def test_core_first_then_each_barclamp_after_what_it_requires() -> None:
    catalog = default_catalog()
    roles = ["deployer-client", "provisioner-base", "dns-server", "dns-client", "ntp-server",
             "ntp-client", "database-server", "keystone-server", "rabbitmq-server",
             "glance-server", "nova-controller", "nova-compute-kvm"]
    roles = [r for r in roles if r in catalog.roles]
    found = role_graph(catalog, roles)
    core = {r for r in roles if found[r].core}
    assert {"dns-server", "ntp-client"} <= core and "database-server" not in core
    assert found["dns-client"].needs == {"dns-server"}, "a client after its server"
    assert found["dns-server"].needs == set(), "core barclamps do not wait for each other"
    assert found["database-server"].needs == core
    assert found["keystone-server"].needs == core | {"database-server"}
    assert "rabbitmq-server" not in found["keystone-server"].needs
    assert found["nova-compute-kvm"].needs >= core | {
        "database-server", "keystone-server", "rabbitmq-server", "glance-server",
        "nova-controller"}, "element order within nova, and everything nova requires"
    assert "nova-compute-kvm" not in found["nova-controller"].needs


def test_a_role_starts_once_its_needs_converged_on_every_holder() -> None:
    asyncio.run(_starts_once_converged_everywhere())


async def _starts_once_converged_everywhere() -> None:
    schedule = Schedule(graph(server=[], client=["server"]),
                        {"a": ["server", "client"], "b": ["server"], "c": ["client"]},
                        {"a": ["server", "client"], "b": ["server"], "c": ["client"]})
    assert schedule.startable("a") == ["server"]
    assert schedule.startable("c") == []
    schedule.done("a", ["server"])
    assert schedule.startable("c") == [], "b holds server too and has not converged it"
    waiting = asyncio.ensure_future(schedule.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    schedule.done("b", ["server"])
    await asyncio.wait_for(waiting, 1)
    assert schedule.startable("c") == ["client"]
    assert schedule.converged("a") == ["server"] and schedule.left("a") == ["client"]


def test_a_failed_holder_settles_the_role_and_the_others_go_on() -> None:
    schedule = Schedule(graph(server=[], client=["server"]),
                        {"a": ["server"], "b": ["server"], "c": ["client"]},
                        {"a": ["server"], "b": ["server"], "c": ["client"]})
    schedule.failed("a")
    assert schedule.startable("c") == []
    schedule.done("b", ["server"])
    assert schedule.startable("c") == ["client"]


def test_a_role_that_converged_nowhere_blocks_what_needs_it() -> None:
    schedule = Schedule(graph(server=[], other=[], client=["server"]),
                        {"a": ["server"], "c": ["other", "client"]},
                        {"a": ["server"], "c": ["other", "client"]})
    schedule.failed("a")
    assert schedule.startable("c") == ["other"], "what does not need it converges first"
    schedule.done("c", ["other"])
    with pytest.raises(Blocked, match="client needs server, which converged on no node "
                       r"\(it failed on a\)"):
        schedule.startable("c")


def test_roles_converged_before_count_as_converged() -> None:
    schedule = Schedule(graph(server=[], client=["server"]),
                        {"a": ["server"], "c": ["client"]}, {"c": ["client"]})
    assert schedule.startable("c") == ["client"]
    assert schedule.left("a") == [] and schedule.converged("a") == ["server"]


def test_the_plan_converges_what_is_left(tmp_path: Path) -> None:
    roles = {"n1": ["base", "web"], "admin": ["dns"]}
    with Journal.open(tmp_path / "j.db") as journal:
        plan = build({}, [], ["n1"], journal, roles)
        assert plan.nodes["n1"] == [s for s, _ in NODE_STEPS] + [
            step_name("base"), step_name("web"), "mark-ready"]
        assert plan.nodes["admin"] == [step_name("dns"), "mark-ready"], \
            "the admin node only converges"
        assert "converge: 3 roles on 2 nodes" in describe(plan)[-1]
        for step, _ in NODE_STEPS:
            journal.step_started("n1", step)
            journal.step_finished("n1", step)
        journal.steps_started("n1", [step_name("base")], detail="req")
        journal.steps_ended("n1", [step_name("base")], ok=True, detail="{}")
        journal.steps_started("n1", [step_name("web")], detail="req2")
        journal.steps_ended("n1", [step_name("web")], ok=False, detail="chef-client failed")
        journal.transition("n1", "problem", "converge web: chef-client failed")
        plan = build({}, [], ["n1"], journal, roles)
        assert plan.nodes["n1"] == [step_name("web"), "mark-ready"], \
            "a node that failed converging converges what it had left, nothing else"
        journal.transition("n1", "problem", "wait-installed: timed out")
        journal.step_started("n1", NODE_STEPS[3][0])
        journal.step_failed("n1", NODE_STEPS[3][0], "timed out")
        plan = build({}, [], ["n1"], journal, roles)
        assert plan.nodes["n1"][0] == NODE_STEPS[0][0], "one that failed installing starts over"
        assert plan.nodes["n1"][-3:] == [step_name("base"), step_name("web"), "mark-ready"]
