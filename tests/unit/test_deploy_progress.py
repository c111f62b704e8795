"""What the Deploy step folds from an apply's journal: machines PXE discovery finds while
the apply serves the admin network are news in the log, not nodes of the deploy; each
node's chef-client runs (what converges now, the last run) and the steps they count."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from wizard.engine.converge_runs import role_label
from wizard.engine.convergence import step_name
from wizard.engine.deployments import Event
from wizard.engine.journal import Journal
from wizard.engine.phases import CORE_CONVERGED
from wizard.engine.plan import NODE_STEPS
from wizard.tui.deploy import _fit
from wizard.tui.deploy_progress import STEP_NAMES, DeployProgress
from wizard.tui.markup import literal


def event(seq: int, kind: str, node: str, **data: object) -> Event:
    return Event(seq, "2026-01-01T00:00:00.000Z", kind, node, None, dict(data))


def test_a_discovered_machine_is_a_log_line_not_a_node_of_the_deploy() -> None:
    progress = DeployProgress(["ctl-1"])
    changed, lines = progress.apply([
        event(1, "inventory", "d52-54-00-aa-bb-07", mac="52:54:00:aa:bb:07"),
        event(2, "transition", "d52-54-00-aa-bb-07", to="discovered"),
        event(3, "transition", "ctl-1", to="hardware-installing"),
    ])
    assert lines == ["discovered d52-54-00-aa-bb-07 (52:54:00:aa:bb:07) by PXE"]
    assert list(progress.nodes) == ["ctl-1"] and changed == {"ctl-1"}
    assert progress.total == len(STEP_NAMES)
    assert progress.counts() == {"hardware-installing": 1}


def test_a_discovered_machine_this_apply_deploys_is_shown() -> None:
    """Added to the answers, the machine is a node of the deploy, from its first state."""
    progress = DeployProgress(["d52-54-00-aa-bb-07"])
    changed, _ = progress.apply([event(1, "transition", "d52-54-00-aa-bb-07", to="discovered")])
    assert changed == {"d52-54-00-aa-bb-07"}
    assert progress.counts() == {"discovered": 1}


# --- convergence, from a journal as the runner writes it -----------------------------------

CORE = ["provisioner-base", "dns-client", "ntp-client"]


def run_record(run_list: list[str], *, started: str = "2026-11-30T19:10:12+00:00",
               elapsed: float = 0.4) -> str:
    """A successful run's record, as the runner journals it in ``step-finished``."""
    return json.dumps({"elapsed": elapsed, "error": None, "ohai_time": 1796065812.7,
                       "request": "ffa5fed67e529fed", "run_list": run_list, "started": started,
                       "status": "success"}, sort_keys=True)


def installed(journal: Journal, node: str) -> None:
    """``node`` through its lifecycle steps to readying, its Chef node registered."""
    journal.transition(node, "allocated")
    for step, state in NODE_STEPS:
        if journal.state(node) != state:
            journal.transition(node, state)
        journal.step_started(node, step, attempt=1)
        journal.step_finished(node, step)


def start_run(journal: Journal, node: str, roles: list[str], before: Sequence[str] = (),
              attempt: int = 1) -> list[str]:
    """A chef-client run of ``node`` converging ``roles`` (after ``before``): its steps."""
    steps = [step_name(role) for role in roles]
    journal.steps_started(node, steps, detail="ffa5fed67e529fed", attempt=attempt,
                          run_list=[f"role[{r}]" for r in [*before, *roles]])
    return steps


def test_a_run_converging_several_roles_is_one_run_of_the_node(tmp_path: Path) -> None:
    """Its steps start together: the node converges them (each with its barclamp), its log
    says so once; they end together: one last run, its time and length the node's own."""
    progress = DeployProgress(["ctl-1"], {"ctl-1": [*CORE, "database-server"]})
    with Journal.open(tmp_path / "journal.db") as journal:
        installed(journal, "ctl-1")
        progress.apply(journal.events())
        node = progress.nodes["ctl-1"]
        assert node.activity == "waiting", "registered, no run under way"
        steps = start_run(journal, "ctl-1", CORE)
        changed, lines = progress.apply(journal.events(progress.seq))
        assert changed == {"ctl-1"} and lines == []
        assert node.state == "readying" and node.activity == "converging"
        assert node.runs.running == CORE and node.runs.attempt == 1
        assert [role_label(r) for r in node.runs.running] == [
            "provisioner/provisioner-base", "dns/dns-client", "ntp/ntp-client"]
        assert node.log[-1] == "converging provisioner/provisioner-base +2"
        journal.steps_ended("ctl-1", steps, ok=True,
                            detail=run_record([f"role[{r}]" for r in CORE]))
        journal.record(CORE_CONVERGED, "ctl-1")
        progress.apply(journal.events(progress.seq))
    assert node.activity == "waiting" and node.core
    assert node.runs.converged == CORE
    last = node.runs.last
    assert last is not None and last.ok and last.roles == tuple(CORE)
    assert (last.started, last.elapsed, last.timed_by) == (
        "2026-11-30T19:10:12+00:00", 0.4, "chef-client")
    assert last.run_list == tuple(f"role[{r}]" for r in CORE)
    assert list(node.log)[-2:] == ["converging provisioner/provisioner-base +2",
                                   "converged in 0.4 s"]
    assert progress.phases() == [1, 1, 1, 0]


def test_a_failed_run_is_the_last_run_with_its_error_timed_by_the_journal(
        tmp_path: Path) -> None:
    """chef-client failed: the run's error in the node's log and the shared log once (not
    per role), its start and length from the journal; the node goes to problem."""
    error = ("converge nova/nova-compute-kvm: chef-client failed: lab fault converge_fail: "
             "recipe[nova::compute] raised")
    progress = DeployProgress(["compute-1"])
    with Journal.open(tmp_path / "journal.db") as journal:
        installed(journal, "compute-1")
        steps = start_run(journal, "compute-1", ["nova-compute-kvm", "ceph-osd"], CORE)
        journal.steps_ended("compute-1", steps, ok=False, detail=error)
        journal.transition("compute-1", "problem", error)
        _, lines = progress.apply(journal.events())
        started, ended = (e.at for e in journal.events()
                          if e.step == steps[0] and e.kind != "transition")
    node = progress.nodes["compute-1"]
    assert node.activity == "problem" and node.runs.running == []
    last = node.runs.last
    assert last is not None and not last.ok and last.error == error
    assert last.roles == ("nova-compute-kvm", "ceph-osd") and last.timed_by == "journal"
    assert last.started == started
    assert last.elapsed == (datetime.fromisoformat(ended)
                            - datetime.fromisoformat(started)).total_seconds()
    assert last.run_list == tuple(f"role[{r}]" for r in [*CORE, "nova-compute-kvm", "ceph-osd"])
    said = literal("nova/nova-compute-kvm: chef-client failed: lab fault converge_fail: "
                   "recipe[nova::compute] raised")  # as markup: the brackets are text
    assert lines == [f"compute-1: converge failed: {said}", f"[red]compute-1: {literal(error)}[/]"]
    assert f"[red]converge failed: {said}[/]" in node.log


def test_a_retried_run_converges_again_with_its_try(tmp_path: Path) -> None:
    """A run that failed for want of the Chef server is retried: converging again (try 2),
    the failed run the last one until it ends."""
    progress = DeployProgress(["storage-1"])
    with Journal.open(tmp_path / "journal.db") as journal:
        installed(journal, "storage-1")
        steps = start_run(journal, "storage-1", ["swift-storage"], CORE)
        journal.steps_ended("storage-1", steps, ok=False,
                            detail="converge swift/swift-storage: connection refused")
        start_run(journal, "storage-1", ["swift-storage"], CORE, attempt=2)
        progress.apply(journal.events())
    node = progress.nodes["storage-1"]
    assert node.activity == "converging" and node.runs.attempt == 2
    assert node.runs.last is not None and not node.runs.last.ok
    assert node.log[-1] == "converging swift/swift-storage (try 2)"


def test_the_admin_node_converges_without_lifecycle_steps(tmp_path: Path) -> None:
    """The admin node is not one of the answers' nodes: it shows up as the journal names
    it, readying then ready, and counts its roles, never the install steps it has none of."""
    progress = DeployProgress(["ctl-1"], {"ctl-1": CORE, "admin": ["dns-server"]})
    assert progress.total == len(STEP_NAMES) + len(CORE) + 1
    with Journal.open(tmp_path / "journal.db") as journal:
        journal.transition("admin", "readying")
        progress.apply(journal.events())
        assert progress.nodes["admin"].activity == "waiting"
        steps = start_run(journal, "admin", ["dns-server"])
        progress.apply(journal.events(progress.seq))
        assert progress.nodes["admin"].activity == "converging"
        journal.steps_ended("admin", steps, ok=True, detail=run_record(["role[dns-server]"]))
        journal.record(CORE_CONVERGED, "admin")
        journal.transition("admin", "ready")
        progress.apply(journal.events(progress.seq))
    admin = progress.nodes["admin"]
    assert admin.activity == "ready" and not admin.lifecycle and admin.steps == {}
    assert progress.total == len(STEP_NAMES) + len(CORE) + 1
    assert progress.done == {("admin", "converge:dns-server")}
    assert progress.activities() == {"allocated": 1, "ready": 1}


def test_all_steps_count_the_planned_roles_and_every_one_done_once_all_are_ready(
        tmp_path: Path) -> None:
    """The total is each node's lifecycle steps and its roles, as planned (and any other
    its steps name); a node that goes ready converged its whole run list: its roles are
    those it converged, so every step counted is done."""
    progress = DeployProgress(["ctl-1", "compute-1"],
                              {"ctl-1": [*CORE, "database-server"], "compute-1": CORE})
    assert progress.total == 2 * len(STEP_NAMES) + 4 + 3
    with Journal.open(tmp_path / "journal.db") as journal:
        for node in ("ctl-1", "compute-1"):
            installed(journal, node)
        steps = start_run(journal, "compute-1", [*CORE, "ceph-osd"])  # not planned
        progress.apply(journal.events())
        assert progress.total == 2 * len(STEP_NAMES) + 4 + 4
        assert len(progress.done) == 2 * len(STEP_NAMES)
        journal.steps_ended("compute-1", steps, ok=True, detail=run_record([]))
        journal.transition("compute-1", "ready")
        steps = start_run(journal, "ctl-1", CORE)  # database-server: never started
        journal.steps_ended("ctl-1", steps, ok=True, detail=run_record([]))
        journal.transition("ctl-1", "ready")
        progress.apply(journal.events(progress.seq))
    assert progress.total == len(progress.done) == 2 * len(STEP_NAMES) + 3 + 4
    assert progress.phases() == [2, 2, 2, 2]


def test_a_node_ready_without_converging_has_no_converge_steps_left(tmp_path: Path) -> None:
    """No Chef server to converge from (or an apply from before convergence): a node ready
    after its lifecycle steps counts none of its planned roles."""
    progress = DeployProgress(["ctl-1"], {"ctl-1": CORE})
    with Journal.open(tmp_path / "journal.db") as journal:
        installed(journal, "ctl-1")
        journal.transition("ctl-1", "ready")
        progress.apply(journal.events())
    assert progress.total == len(progress.done) == len(STEP_NAMES)


def test_registering_its_chef_node_is_readying_not_waiting(tmp_path: Path) -> None:
    progress = DeployProgress(["ctl-1"])
    with Journal.open(tmp_path / "journal.db") as journal:
        journal.transition("ctl-1", "readying")
        journal.step_started("ctl-1", "chef-node", attempt=1)
        progress.apply(journal.events())
        assert progress.nodes["ctl-1"].activity == "readying"
        journal.step_finished("ctl-1", "chef-node", "updated")
        progress.apply(journal.events(progress.seq))
    assert progress.nodes["ctl-1"].activity == "waiting"


def test_steps_interrupted_by_a_restart_end_the_run_they_were_in(tmp_path: Path) -> None:
    """An apply stopped mid-run: the next one checks each step in flight on its own (one
    ``step-finished`` per role, the run the node recorded): still one run, converged."""
    progress = DeployProgress(["ctl-1"])
    record = run_record([f"role[{r}]" for r in CORE])
    with Journal.open(tmp_path / "journal.db") as journal:
        installed(journal, "ctl-1")
        steps = start_run(journal, "ctl-1", CORE)
        progress.apply(journal.events())
        for step in steps:
            journal.step_finished("ctl-1", step, record,
                                  checked="after a restart: the node recorded the run")
        progress.apply(journal.events(progress.seq))
    node = progress.nodes["ctl-1"]
    assert node.runs.running == [] and node.runs.converged == CORE
    assert node.runs.last is not None and node.runs.last.roles == tuple(CORE)
    assert node.log[-1] == "converged in 0.4 s"


def test_a_released_node_leaves_the_counts_and_its_roles_the_run_list() -> None:
    """A release's journal, folded: the node's steps and roles are forgotten; it stays in
    the grid as released, counted by no phase and no step; a role taken off another node's
    run list leaves its converged roles."""
    progress = DeployProgress(["n1", "n2"], {"n1": ["a"], "n2": ["a", "b"]})
    converge = [Event(seq, "2026-01-01T00:00:00.000Z", kind, node, step_name(role), {})
                for seq, (kind, node, role) in enumerate([
                    ("step-started", "n1", "a"), ("step-finished", "n1", "a"),
                    ("step-started", "n2", "a"), ("step-started", "n2", "b"),
                    ("step-finished", "n2", "a"), ("step-finished", "n2", "b")], 1)]
    progress.apply([*converge, event(7, "transition", "n1", to="ready"),
                    event(8, "transition", "n2", to="ready")])
    assert progress.total == 2 * len(STEP_NAMES) + 3
    progress.apply([event(9, "forgot", "n2", steps=[step_name("b")]),
                    event(10, "forgot", "n1", steps=None),
                    event(11, "transition", "n1", to="released")])
    assert progress.released() == ["n1"]
    assert progress.nodes["n2"].runs.converged == ["a"]
    assert progress.nodes["n1"].runs.converged == []
    assert progress.total == len(STEP_NAMES) + 2, "n2's steps and its roles a and b"


def test_grid_cells_tell_apart_names_that_differ_at_the_end() -> None:
    """Servers a sweep added are named by MAC (d52-54-00-…): cut to a grid cell, each keeps
    its end, so two of them are not the same cell text; a short name is as it is."""
    first, second = "d52-54-00-7e-5b-1e", "d52-54-00-ea-c1-c1"
    cells = [_fit(name, 10) for name in (first, second, "ctl-1", "compute-10")]
    assert cells == ["d52-…5b-1e", "d52-…c1-c1", "ctl-1", "compute-10"]
