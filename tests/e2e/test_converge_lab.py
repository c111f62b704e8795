"""Convergence on the lab, end to end: ``apply --lab`` takes every node (and the admin node)
through chef-client runs in Crowbar's order, against goiardi.

What stands in: chef-client. No Chef client package exists in any registry these machines
reach, so each lab server plays its part over the real Chef API (``wizard.lab.chef_client``):
it authenticates with its own key, expands its run list, depsolves it on goiardi, downloads
and checks every cookbook file, and saves its node with automatic attributes and its run's
record. It does not execute the recipes. The upstream cookbooks (OpenStack's) are the lab's
stand-ins (``wizard.lab.upstream``): the lab cannot fetch them.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.e2e.test_apply_lab import (
    EXAMPLE,
    NODES,
    apply,
    journal_of,
    kill_apply_after,
    start_lab,
)
from tests.proc import alive
from wizard.catalog import default_catalog
from wizard.chef.api import ChefServer
from wizard.engine.convergence import role_graph, step_role
from wizard.engine.journal import Event
from wizard.engine.pause import set_paused
from wizard.lab.bmc import Faults
from wizard.lab.control import Lab

pytestmark = pytest.mark.slow


def converge_events(events: list[Event]) -> list[tuple[int, str, str, str]]:
    """(seq, kind, node, role) of every converge step event."""
    return [(e.seq, e.kind, e.node or "", role) for e in events
            if e.step and (role := step_role(e.step)) is not None]


def assert_crowbar_order(events: list[Event]) -> None:
    """No role started on a node before every role it needs had converged on every node
    that holds it, or that node was in problem then (its roles settled, unconverged)."""
    steps = converge_events(events)
    transitions: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for event in events:
        if event.kind == "transition" and event.node:
            transitions[event.node].append((event.seq, event.data["to"]))

    def in_problem(node: str, seq: int) -> bool:
        before = [to for at, to in transitions[node] if at < seq]
        return bool(before) and before[-1] == "problem"
    holders: dict[str, set[str]] = defaultdict(set)
    finished: dict[tuple[str, str], int] = {}
    for seq, kind, node, role in steps:
        holders[role].add(node)
        if kind == "step-finished":
            finished.setdefault((node, role), seq)
    graph = role_graph(default_catalog(), list(holders))
    for seq, kind, node, role in steps:
        if kind != "step-started":
            continue
        for need in graph[role].needs:
            for holder in holders[need]:
                done = finished.get((holder, need))
                assert (done is not None and done < seq) or in_problem(holder, seq), \
                    f"{node} started {role} at event {seq} before {holder} converged {need}"


def assert_phases_in_order(events: list[Event], nodes: list[str]) -> None:
    """Each node: installed and registered before its first converge, ready after its last."""
    for node in nodes:
        mine = [e for e in events if e.node == node]
        first = next(e.seq for e in mine if e.kind == "step-started" and e.step
                     and step_role(e.step))
        last = max(e.seq for e in mine if e.kind == "step-finished" and e.step
                   and step_role(e.step))
        registered = [e.seq for e in mine if e.kind == "step-finished" and e.step == "chef-node"]
        ready = [e.seq for e in mine if e.kind == "transition" and e.data["to"] == "ready"]
        assert registered and registered[-1] < first, node
        assert ready and ready[-1] > last, node


def chef_nodes(lab: Lab) -> dict[str, dict]:
    chef = lab.chef()
    assert chef is not None

    async def read() -> dict[str, dict]:
        async with ChefServer(chef.url, chef.client, chef.admin_key) as server:
            return {name: await server.get("nodes", name) or {}
                    for name in await server.list("nodes")}
    return asyncio.run(read())


def test_every_node_converges_in_crowbar_order(tmp_path: Path) -> None:
    fleet, env = start_lab(tmp_path, "127.78.1.0/24")
    try:
        done = apply(env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip().endswith(f"all {NODES} nodes ready")
        with journal_of(fleet) as journal:
            events = journal.events()
            states = journal.states()
        assert {s for s, _ in states.values()} == {"ready"}
        assert "admin" in states, "the admin node converges its roles too"
        assert_crowbar_order(events)
        assert_phases_in_order(events, [n for n in states if n != "admin"])
        finished = {(node, role) for _, kind, node, role in converge_events(events)
                    if kind == "step-finished"}
        nodes = chef_nodes(fleet)
        for fqdn, node in nodes.items():
            name = fqdn.split(".")[0]
            roles = [item[5:-1] for item in node["run_list"]]
            assert roles and all((name, role) in finished for role in roles), fqdn
            last = node["normal"]["crowbar"]["converge"]["last"]
            assert last["status"] == "success" and last["run_list"] == node["run_list"]
            assert last["request"] == node["normal"]["crowbar"]["converge"]["request"]
            automatic = node["automatic"]
            assert automatic["fqdn"] == fqdn and automatic["ohai_time"] > 0
            assert automatic["platform"] and automatic["ipaddress"]
    finally:
        fleet.down()


def test_a_failed_and_a_hung_converge_stop_only_their_nodes(tmp_path: Path) -> None:
    """Lab server 1 (compute-1) fails its converge, server 3 (compute-3) never reports;
    the rest go on to ready. Cleared, a re-run converges only those two."""
    fleet, env = start_lab(tmp_path, "127.78.2.0/24",
                           {1: Faults(converge_fail=True), 3: Faults(converge_hang=True)})
    try:
        done = apply(env, "--converge-timeout", "5")
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"{NODES - 2} nodes ready, 2 in problem:" in done.stderr
        problems = dict(line.strip().split(": ", 1) for line in done.stderr.splitlines()
                        if line.startswith("  "))
        assert "chef-client failed: lab fault converge_fail: recipe[" in problems["compute-1"]
        assert "chef-client did not report within 5 s" in problems["compute-3"]
        with journal_of(fleet) as journal:
            before = journal.events()[-1].seq
        for index in ("1", "3"):
            cleared = subprocess.run([sys.executable, "-m", "wizard.cli", "lab", "fault",
                                      index, "--clear"], env=env, capture_output=True,
                                     text=True, timeout=60)
            assert cleared.returncode == 0, cleared.stderr
        again = apply(env)
        assert again.returncode == 0, again.stdout + again.stderr
        with journal_of(fleet) as journal:
            events = journal.events()
        rerun = [e for e in events if e.seq > before]
        started = {e.node for e in rerun if e.kind == "step-started"}
        assert started == {"compute-1", "compute-3"}, "only the two converge again"
        assert not [e for e in rerun if e.step and not step_role(e.step)
                    and e.kind == "step-started" and e.node != "*"], \
            "their installs stand: only convergence is redone"
        assert_crowbar_order(events)
    finally:
        fleet.down()


@pytest.mark.parametrize("kill_after", [150, 175, 200, 225, 250])
def test_killed_while_converging_resumes_to_ready(tmp_path: Path, kill_after: int) -> None:
    """SIGKILL after the Nth --json event: a run of the example prints about 265, its
    converge runs from about 135 on; then apply again, to all ready, in Crowbar's order,
    no role converged twice."""
    fleet, env = start_lab(tmp_path, f"127.78.{10 + kill_after % 200}.0/24")
    try:
        workers = kill_apply_after(env, kill_after)  # with the lab's chef-client workers
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "a chef-client worker outlived its apply"
            time.sleep(0.1)
        resumed = apply(env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        with journal_of(fleet) as journal:
            assert {s for s, _ in journal.states().values()} == {"ready"}
            events = journal.events()
        assert_crowbar_order(events)
        finished = [(node, role) for _, kind, node, role in converge_events(events)
                    if kind == "step-finished"]
        assert len(finished) == len(set(finished)), "a role converged twice on a node"
    finally:
        fleet.down()


def test_a_pause_while_converging_holds_back_new_runs(tmp_path: Path) -> None:
    """``pause`` once the first chef-client run started: runs under way finish, no converge
    step starts until ``resume``; then every node converges to ready."""
    fleet, env = start_lab(tmp_path, "127.78.3.0/24")
    path = fleet.directory / "apply" / "lab" / "journal.db"
    running = subprocess.Popen(
        [sys.executable, "-m", "wizard.cli", "apply", EXAMPLE, "--lab", "--json"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert running.stdout is not None
        for line in running.stdout:
            if '"event": "converge"' in line:
                set_paused(path, True)
                break
        for line in running.stdout:
            if '"event": "paused"' in line:
                break
        with journal_of(fleet) as journal:
            paused_at = journal.events()[-1].seq
        # long enough for several runs, were they allowed to start: the lab's take ~0.1 s
        time.sleep(3)
        with journal_of(fleet) as journal:
            after = [e for e in journal.events() if e.seq > paused_at]
        assert not [e for e in after if e.kind == "step-started"], after
        assert running.poll() is None
        set_paused(path, False)
        out, err = running.communicate(timeout=120)
        assert running.returncode == 0, out + err
        with journal_of(fleet) as journal:
            assert {s for s, _ in journal.states().values()} == {"ready"}
            assert_crowbar_order(journal.events())
    finally:
        running.kill()
        running.wait()
        fleet.down()
