"""The wizard's screens: snapshots at 80x24 and Pilot walks through the steps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.style import Style
from textual.coordinate import Coordinate
from textual.widgets import Input
from textual.widgets._data_table import default_cell_formatter

from tests.terminal import PtySession
from tests.tui.helpers import LAB, SIZE, lab_app, leaf
from wizard.answers import Hardware, Node, Proposal, load
from wizard.base import filelock, host_facts
from wizard.cli.main import main
from wizard.engine.convergence import step_name
from wizard.engine.journal import LIFECYCLE, Journal, holder
from wizard.engine.journal_states import JournalStates
from wizard.engine.phases import CORE_CONVERGED
from wizard.engine.plan import NODE_STEPS
from wizard.engine.sessions import Control
from wizard.hardware.discovery import SweepResult
from wizard.hardware.inventory import InventoryReport
from wizard.hardware.ipmi import BmcInventory
from wizard.lab.bmc import Faults
from wizard.lab.control import Lab
from wizard.lab.overlay import lab_answers
from wizard.provisioning.network_check import CheckedDevice, CheckResult
from wizard.tui.app import DRAFT_DELAY, WizardApp, starting_answers
from wizard.tui.deploy import STATE_COLORS, DeployScreen
from wizard.tui.discovery import DiscoveryScreen
from wizard.tui.drafts import ConfirmQuit, RestoreDraft, draft_path, write_draft

EXAMPLES = sorted(Path("answers/examples").resolve().glob("*.yaml"))


def found(index: int) -> SweepResult:
    bmc = BmcInventory(f"10.0.1.{index}", 623, mac=f"02:c0:ba:00:00:{index:02x}",
                       manufacturer="Dell Inc.", model="PowerEdge R650",
                       serial=f"SN{index:04d}", cpu_cores=32, memory_gb=256, disks=4,
                       nic_macs=[f"52:54:00:00:01:{index:02x}"],
                       power="on" if index % 3 else "off")
    return SweepResult(bmc.address, 623, "found", bmc=bmc)


# --- snapshots -----------------------------------------------------------------------------


def test_welcome_snapshot(snap_compare) -> None:
    assert snap_compare(WizardApp(), terminal_size=SIZE)


def test_review_snapshot_of_the_lab_example(snap_compare) -> None:
    assert snap_compare(lab_app(), terminal_size=SIZE)


def test_review_snapshot_with_problems(snap_compare) -> None:
    async def new_plan(pilot) -> None:
        await pilot.click("#new")
    assert snap_compare(WizardApp(), terminal_size=SIZE, run_before=new_plan)


def mixed_journal(path: Path) -> None:
    """A journal as an apply leaves it midway: every state, a retried step, a problem."""
    states = {"ctl-1": "ready", "compute-1": "readying", "compute-2": "installing",
              "compute-3": "installed", "storage-1": "hardware-installing"}
    with Journal.open(path) as journal:
        for node, state in states.items():
            journal.transition(node, "allocated")
            for step, during in NODE_STEPS:  # done up to the first step of its state
                if LIFECYCLE.index(during) > LIFECYCLE.index(state):
                    break
                if journal.state(node) != during:
                    journal.transition(node, during)
                journal.step_started(node, step, attempt=1)
                if during == state:
                    break
                journal.step_finished(node, step)
            if state == "ready":
                journal.transition(node, "ready")
        journal.transition("storage-2", "hardware-installing")
        for attempt in (1, 2):
            journal.step_started("storage-2", "bmc-boot-network", attempt=attempt)
            journal.step_failed("storage-2", "bmc-boot-network",
                                "bmc-boot-network: 127.1.0.6: auth failed: wrong password")
        journal.transition("storage-2", "problem",
                           "bmc-boot-network: 127.1.0.6: auth failed: wrong password")


async def show_deploy(pilot, path: Path, node: str | None = None) -> DeployScreen:
    pilot.app.go("deploy")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, DeployScreen)
    screen.follow(path, "lab")
    await pilot.pause()
    if node is not None:
        grid = screen.query_one("#grid")
        grid.focus()
        grid.move_cursor(row=screen.cells[node][0], column=screen.cells[node][1])
        await pilot.pause()
    return screen


def test_deploy_snapshot_with_mixed_node_states(snap_compare, tmp_path: Path) -> None:
    """The deploy screen following a journal with nodes in every state, one in problem
    selected: its steps and log beside the grid."""
    mixed_journal(tmp_path / "journal.db")

    async def deploy(pilot) -> None:
        await show_deploy(pilot, tmp_path / "journal.db", "storage-2")
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=deploy)


class FixedClock:
    """The journal's clock in a snapshot: from a fixed time, a millisecond a call, moved on
    as the test says (so times and lengths shown are the same on every run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime(2026, 11, 30, 19, 10, 0, tzinfo=UTC)
        monkeypatch.setattr(filelock, "now", self)

    def __call__(self) -> str:
        self.now += timedelta(milliseconds=1)
        return self.now.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


CORE_ROLES = ["deployer-client", "provisioner-base", "ipmi-configure", "dns-client",
              "logging-client", "ntp-client"]
CONVERGE_ERROR = ("converge deployer/deployer-client, provisioner/provisioner-base, "
                  "ipmi/ipmi-configure, dns/dns-client, "
                  "logging/logging-client, ntp/ntp-client: chef-client failed: lab fault "
                  "converge_fail: recipe[deployer::client] raised")


def converge(journal: Journal, clock: FixedClock, node: str, roles: list[str],
             before: list[str] | None = None, *, ok: bool | None = True,
             seconds: float = 0.4) -> None:
    """A chef-client run of ``node`` converging ``roles`` (after ``before``), as the runner
    journals it: under way (``ok`` None), done with the node's record, or failed."""
    steps = [step_name(role) for role in roles]
    run_list = [f"role[{role}]" for role in [*(before or []), *roles]]
    started = clock.now
    journal.steps_started(node, steps, detail="ffa5fed67e529fed", attempt=1,
                          run_list=run_list)
    if ok is None:
        return
    clock.advance(seconds)
    record = {"elapsed": seconds, "error": None, "ohai_time": 1796065812.7,
              "request": "ffa5fed67e529fed", "run_list": run_list, "status": "success",
              "started": started.isoformat(timespec="seconds")}
    journal.steps_ended(node, steps, ok=ok, detail=json.dumps(record, sort_keys=True) if ok
                        else CONVERGE_ERROR)


def converging_journal(path: Path, clock: FixedClock) -> None:
    """A journal as an apply leaves it mid-converge: the admin node ready; ctl-1 converging
    its first barclamps after its core; compute-1 and compute-3 waiting for ctl-1's roles;
    compute-2 in problem, its core run failed; storage-1 registering its Chef node,
    storage-2 installing."""
    with Journal.open(path) as journal:
        journal.transition("admin", "readying")
        converge(journal, clock, "admin",
                 ["deployer-client", "dns-server", "logging-server", "ntp-server"])
        journal.record(CORE_CONVERGED, "admin")
        journal.transition("admin", "ready")
        for node in ("ctl-1", "compute-1", "compute-2", "compute-3", "storage-1", "storage-2"):
            journal.transition(node, "allocated")
        for node in ("ctl-1", "compute-1", "compute-2", "compute-3", "storage-1", "storage-2"):
            for step, during in NODE_STEPS:
                if journal.state(node) != during:
                    journal.transition(node, during)
                journal.step_started(node, step, attempt=1)
                if (node, step) in (("storage-2", "wait-installed"), ("storage-1", "chef-node")):
                    break  # under way
                journal.step_finished(node, step)
            clock.advance(20)
        for node in ("ctl-1", "compute-1", "compute-3"):
            converge(journal, clock, node, CORE_ROLES, seconds=3.2)
            journal.record(CORE_CONVERGED, node)
        converge(journal, clock, "compute-2", CORE_ROLES, ok=False, seconds=2.5)
        journal.transition("compute-2", "problem", CONVERGE_ERROR)
        clock.advance(1)
        converge(journal, clock, "ctl-1", ["database-server", "rabbitmq-server", "swift-proxy"],
                 CORE_ROLES, ok=None)


async def show_converging(pilot, tmp_path: Path, node: str) -> None:
    await show_deploy(pilot, tmp_path / "journal.db", node)


def test_deploy_snapshot_of_a_node_converging(snap_compare, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ctl-1 converges three roles: each with its barclamp, since when; how many of its
    roles converged, its last run. The grid: converging, waiting, registering, problem."""
    converging_journal(tmp_path / "journal.db", FixedClock(monkeypatch))
    assert snap_compare(lab_app(), terminal_size=SIZE,
                        run_before=lambda pilot: show_converging(pilot, tmp_path, "ctl-1"))


def test_deploy_snapshot_of_a_node_waiting(snap_compare, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """compute-1 converged its core and waits for ctl-1's roles."""
    converging_journal(tmp_path / "journal.db", FixedClock(monkeypatch))
    assert snap_compare(lab_app(), terminal_size=SIZE,
                        run_before=lambda pilot: show_converging(pilot, tmp_path, "compute-1"))


def test_deploy_snapshot_of_a_converge_failure(snap_compare, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """compute-2's run failed: the last run, failed after how long, and chef-client's error
    (the node's problem: said once)."""
    converging_journal(tmp_path / "journal.db", FixedClock(monkeypatch))
    assert snap_compare(lab_app(), terminal_size=SIZE,
                        run_before=lambda pilot: show_converging(pilot, tmp_path, "compute-2"))


def test_deploy_snapshot_converging_in_the_light_theme(snap_compare, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The colors of converging and waiting stay readable on the light theme too."""
    converging_journal(tmp_path / "journal.db", FixedClock(monkeypatch))

    async def deploy(pilot) -> None:
        pilot.app.theme = "textual-light"
        await show_converging(pilot, tmp_path, "compute-2")
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=deploy)


def test_deploy_follows_the_journal(tmp_path: Path) -> None:
    """States, the phase and aggregate bars, and a node's steps come from the journal
    (first one still being made, which Deploy waits out)."""
    path = tmp_path / "journal.db"
    sqlite3.connect(tmp_path / "making.db").close()  # a file without its tables yet

    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await show_deploy(pilot, tmp_path / "making.db")
            assert screen.journal is None and app.is_running
            mixed_journal(path)
            screen = await show_deploy(pilot, path, "compute-2")
            progress = screen.progress
            assert {n: p.state for n, p in progress.nodes.items()} == {
                "ctl-1": "ready", "compute-1": "readying", "compute-2": "installing",
                "compute-3": "installed", "storage-1": "hardware-installing",
                "storage-2": "problem"}
            assert progress.phases() == [4, 3, 1, 1]
            assert screen.query_one("#overall").progress == len(progress.done) == 6 + 5 + 4 + 2
            detail = str(screen.query_one("#node-detail").render())
            assert "compute-2 ■ installing" in detail and "serve-install running" in detail
            assert "Last apply on the lab" in str(screen.query_one("#deploy-status").render())
            assert screen.query_one("#cancel").disabled, "nothing runs: nothing to cancel"
            with Journal.open(path) as journal:  # an apply goes on: the screen follows
                journal.step_finished("compute-2", "serve-install")
                journal.transition("storage-2", "hardware-installing")
                await pilot.pause(0.6)
                assert screen.running and not screen.query_one("#cancel").disabled
            assert progress.nodes["storage-2"].state == "hardware-installing"
            assert "serve-install done" in str(screen.query_one("#node-detail").render())
            await pilot.pause(0.6)
            assert not screen.running
    asyncio.run(walk())


def cell_color(screen: DeployScreen, node: str) -> str:
    row, column = screen.cells[node]
    cell = screen.query_one("#grid").get_cell_at(Coordinate(row, column))
    return str(Style.parse(str(cell.style)).bgcolor.name)


def test_deploy_follows_a_node_converging(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """As the apply journals its runs, the selected node's cell and pane follow: waiting
    for others' roles, converging a run's roles (with their barclamps), waiting again with
    its last run, ready; All steps counts its roles."""
    path = tmp_path / "journal.db"
    clock = FixedClock(monkeypatch)
    converging_journal(path, clock)

    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            screen = await show_deploy(pilot, path, "compute-1")
            detail = lambda: str(screen.query_one("#node-detail").render())  # noqa: E731
            assert cell_color(screen, "compute-1") == STATE_COLORS["waiting"]
            assert "waiting for others' roles" in detail() and "6 of 7 roles" in detail()
            done = len(screen.progress.done)
            with Journal.open(path) as journal:
                converge(journal, clock, "compute-1", ["nova-compute-kvm"], CORE_ROLES,
                         ok=None)
                await pilot.pause(0.6)
                assert cell_color(screen, "compute-1") == STATE_COLORS["converging"]
                assert "since 19:" in detail() and "nova/nova-compute-kvm" in detail()
                journal.steps_ended("compute-1", [step_name("nova-compute-kvm")], ok=True,
                                    detail=json.dumps({"started": "2026-11-30T19:13:00+00:00",
                                                       "elapsed": 12.5, "run_list": []}))
                await pilot.pause(0.6)
                assert cell_color(screen, "compute-1") == STATE_COLORS["waiting"]
                assert "7 of 7 roles converged" in detail()
                assert "last run 19:13:00 UTC" in detail() and "success in 12 s" in detail()
                assert len(screen.progress.done) == done + 1
                journal.transition("compute-1", "ready")
                await pilot.pause(0.6)
            assert cell_color(screen, "compute-1") == STATE_COLORS["ready"]
            assert "compute-1 ■ ready" in detail()
    asyncio.run(walk())


def test_discovery_snapshot_populated_and_filtered(snap_compare) -> None:
    async def populate(pilot) -> None:
        pilot.app.go("discovery")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, DiscoveryScreen)
        for index in range(1, 13):
            screen.show(found(index))
        screen.show(SweepResult("10.0.1.40", 623, "auth_failed", "wrong password"))
        screen.query_one("#filter").value = "SN000"
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=populate)


def test_pxe_discovered_machines_appear_as_their_inventory_arrives(
        tmp_path: Path) -> None:
    """A machine that PXE-booted into discovery during an apply: its report, journaled by
    the provisioner's handler, becomes a row a moment later, and a node when added."""
    path = tmp_path / "lab" / "apply" / "lab" / "journal.db"
    report = InventoryReport(mac="52:54:00:aa:00:01", macs=["52:54:00:aa:00:01"],
                             serial="PXE0001", model="PowerEdge R760", cpu_cores=64,
                             memory_gb=512, disks=8)

    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=(120, 40)) as pilot:
            app.go("discovery")
            await pilot.pause()
            screen = app.screen
            with Journal.open(path) as journal:
                states = JournalStates(journal)
                node, new = states.add_report(report)
            assert new
            table = screen.query_one("#found")
            await _until(pilot, lambda: f"pxe:{node.name}" in table.rows)
            row = table.get_row(f"pxe:{node.name}")
            assert row[1] == f"PXE {node.name}" and row[3] == "PowerEdge R760"
            assert row[5] == "52:54:00:aa:00:01" and row[6:] == ["64", "512", "8", ""]
            screen.query_one("#filter").value = "R650"
            await pilot.pause()
            assert f"pxe:{node.name}" not in table.rows
            screen.query_one("#filter").value = "pxe0001"
            await pilot.pause()
            assert f"pxe:{node.name}" in table.rows
            before = len(app.answers.nodes)
            await pilot.click("#add")
            assert len(app.answers.nodes) == before + 1
            assert app.answers.nodes[-1].macs == ["52:54:00:aa:00:01"]
            # its network check, as the provisioner records it: held against the plan
            answer = CheckResult(request="0123456789abcdef", boot="nic0", devices=[
                CheckedDevice(name="nic0", kernel="eth0", carrier=True,
                              addresses=["192.168.124.30/24"])])
            with Journal.open(path) as journal:
                journal.record("network-check", node.name, None, mac=report.mac,
                               **answer.model_dump())
            await _until(pilot, lambda: table.get_row(f"pxe:{node.name}")[9] != "")
            assert table.get_row(f"pxe:{node.name}")[9] == "1 wrong"  # no default route
            table.move_cursor(row=table.get_row_index(f"pxe:{node.name}"))
            await pilot.pause()
            detail = str(screen.query_one("#detail").render())
            assert f"network check of {node.name}: differs" in detail
            assert "WRONG default route: planned via 192.168.124.1 dev nic0" in detail
    asyncio.run(walk())


async def _until(pilot, condition, seconds: float = 30) -> None:
    """Let the app run until ``condition()`` holds (the screen polls its journal)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        await pilot.pause(0.1)


def test_barclamps_snapshot_with_ntp_shown(snap_compare) -> None:
    async def show(pilot) -> None:
        pilot.app.go("barclamps")
        await pilot.pause()
        tree, node = leaf(pilot.app.screen, "ntp")
        tree.move_cursor(node)
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=show)


def test_network_snapshot(snap_compare) -> None:
    async def show(pilot) -> None:
        pilot.app.go("network")
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=show)


def test_network_snapshot_with_invalid_input(snap_compare) -> None:
    async def bad(pilot) -> None:
        pilot.app.go("network")
        await pilot.pause()
        pilot.app.screen.query_one("#net-subnet").value = "192.168.124.0/33"
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=bad)


def test_conduits_snapshot(snap_compare) -> None:
    async def show(pilot) -> None:
        pilot.app.go("network")
        await pilot.pause()
        pilot.app.screen.query_one("#network-tabs").active = "conduits-tab"
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=show)


def test_discovery_snapshot_before_a_sweep(snap_compare) -> None:
    async def show(pilot) -> None:
        pilot.app.go("discovery")
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=show)


def test_deploy_snapshot_before_any_deploy(snap_compare) -> None:
    async def show(pilot) -> None:
        pilot.app.go("deploy")
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=show)


def test_deploy_snapshot_in_the_light_theme(snap_compare, tmp_path: Path) -> None:
    """Every state's color stays readable on the light theme."""
    mixed_journal(tmp_path / "journal.db")

    async def deploy(pilot) -> None:
        pilot.app.theme = "textual-light"
        await show_deploy(pilot, tmp_path / "journal.db", "compute-2")
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=deploy)


def test_barclamps_snapshot_with_a_role_short_of_nodes(snap_compare) -> None:
    async def show(pilot) -> None:
        app = pilot.app
        barclamps = dict(app.answers.barclamps)
        barclamps["database"] = barclamps["database"].model_copy(update={"roles": {}})
        app.use(app.answers.model_copy(update={"barclamps": barclamps}), app.path,
                saved=False)
        app.go("barclamps")
        await pilot.pause()
        tree, node = leaf(app.screen, "database")
        tree.move_cursor(node)
        await pilot.pause()
        app.screen.query_one("#detail-pane").scroll_end(animate=False)
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=show)


def test_observer_snapshot(snap_compare) -> None:
    """Another session has control: the banner names it, the fields are disabled."""
    other = Control({"user": "alice", "tty": "/dev/pts/7", "from": "10.1.2.3",
                     "since": "2026-11-25T14:02:11.000Z"})
    assert other.try_take()

    async def show(pilot) -> None:
        pilot.app.go("network")
        await pilot.pause()
        await pilot.pause()
    try:
        assert snap_compare(lab_app(), terminal_size=SIZE, run_before=show)
    finally:
        other.release()


def test_f1_explains_the_step(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:
    """F1: the step's help, the keys, and this machine's addresses and SSH host key
    fingerprints (fixed here: the snapshot is the same on every machine)."""
    monkeypatch.setattr(host_facts, "addresses", lambda: ["eth0 192.168.124.10/24"])
    monkeypatch.setattr(host_facts, "host_keys",
                        lambda: ["ED25519 SHA256:aiFxFBL73sYPp0MupoPPlqPOkcvMNh53U3QTylJkAMc"])

    async def help_(pilot) -> None:
        pilot.app.go("network")
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=help_)


def test_review_shows_what_saving_changes(snap_compare) -> None:
    async def edit(pilot) -> None:
        app = pilot.app
        app.go("barclamps")
        await pilot.pause()
        tree, node = leaf(app.screen, "ceph")
        tree.select_node(node)
        await pilot.pause()
        app.go("review")
        await pilot.pause()
        assert "Saving changes lab.yaml" in str(app.screen.query_one("#diff").render())
        # the focused path field's cursor, drawn or not by the blink's phase, is no state
        app.screen.query_one("#save-path", Input).cursor_blink = False
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=edit)


# --- walks ---------------------------------------------------------------------------------


def test_walk_from_welcome_to_a_saved_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Welcome -> the lab example -> every step in order with ctrl+n -> save on Review;
    ``crowbar-wizard validate`` accepts the file."""
    target = tmp_path / "site.yaml"

    async def walk() -> None:
        app = WizardApp()
        async with app.run_test(size=SIZE) as pilot:
            assert app.screen.step == "welcome"
            await pilot.click("#lab")
            await pilot.pause()
            assert app.screen.step == "review" and app.answers is not None
            assert "answers valid" in app.sub_title
            await pilot.press("ctrl+b", "ctrl+b", "ctrl+b", "ctrl+b")
            assert app.screen.step == "welcome"
            seen = []
            for _ in range(4):
                await pilot.press("ctrl+n")
                await pilot.pause()
                seen.append(app.screen.step)
                if app.screen.step == "barclamps":
                    await pilot.click("#allocate")
            assert seen == ["network", "discovery", "barclamps", "review"]
            app.screen.query_one("#save-path").value = str(target)
            await pilot.click("#save")
            await pilot.pause()
            assert app.saved and app.path == target
            await pilot.press("ctrl+n")
            assert app.screen.step == "deploy"
    asyncio.run(walk())
    assert main(["validate", str(target)]) == 0, capsys.readouterr().err
    assert load(target).site.name == "lab"


def test_bad_input_is_a_notification_not_a_traceback() -> None:
    async def walk() -> None:
        app = WizardApp()
        async with app.run_test(size=SIZE) as pilot:
            app.screen.query_one("#supernet").value = "10.0.0.0/30"
            await pilot.click("#new")
            app.screen.query_one("#path").value = "/nonexistent.yaml"
            await pilot.click("#open")
            await pilot.pause()
            messages = [n.message for n in app._notifications]
            assert app.screen.step == "welcome" and app.answers is None
            assert any(m.startswith("cannot plan") for m in messages)
            assert any("nonexistent.yaml" in m for m in messages)
            await pilot.press("ctrl+n")
            assert app.screen.step == "welcome", "no answers yet: Next stays"
    asyncio.run(walk())


def test_select_a_barclamp_set_an_attribute_allocate() -> None:
    """Selecting pulls in what it requires; a bad attribute is flagged, a good one kept;
    auto-allocate places the new roles and the answers validate again."""
    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=(120, 40)) as pilot:
            app.go("barclamps")
            await pilot.pause()
            screen = app.screen
            tree, node = leaf(screen, "nova_dashboard")
            tree.move_cursor(node)
            tree.select_node(node)
            await pilot.pause()
            assert "nova_dashboard" in app.answers.barclamps
            assert not app.saved and app.problems(), "its role is not placed yet"
            tree, node = leaf(screen, "ceph")
            tree.move_cursor(node)
            tree.select_node(node)
            await pilot.pause()
            assert "ceph" in app.answers.barclamps
            tree, node = leaf(screen, "ntp")
            tree.move_cursor(node)
            await pilot.pause()
            screen.query_one("#attr-upstream_servers").value = "10.0.0.1, 10.0.0.2"
            await pilot.pause()
            attributes = app.answers.barclamps["ntp"].attributes
            assert attributes["upstream_servers"] == ["10.0.0.1", "10.0.0.2"]
            before = attributes.get("max_poll")
            screen.query_one("#attr-max_poll").value = "not a number"
            await pilot.pause()
            assert "invalid literal" in str(screen.query_one("#msg-max_poll").render())
            screen.query_one("#attr-max_poll").value = "99"
            await pilot.pause()
            assert "must be at most" in str(screen.query_one("#msg-max_poll").render())
            assert app.answers.barclamps["ntp"].attributes.get("max_poll") == before
            await pilot.click("#allocate")
            await pilot.pause()
            assert app.problems() == []
    asyncio.run(walk())


def test_roles_are_placed_from_the_matrix_and_violations_marked() -> None:
    """Selecting a cell puts the node in the role (and out again); a node with too little
    hardware for its role is marked red in its cell, and a role short of nodes in its
    header."""
    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=(120, 40)) as pilot:
            app.go("barclamps")
            await pilot.pause()
            screen = app.screen
            tree, node = leaf(screen, "database")
            tree.move_cursor(node)
            await pilot.pause()
            matrix = screen.query_one("#matrix")
            role = app.answers.barclamps["database"].roles
            (holder_,) = role["database-server"]
            column = [str(c.label) for c in matrix.columns.values()].index("database-server")
            row = matrix.get_row_index(holder_)
            assert str(matrix.get_cell_at((row, column))) == "●"
            matrix.focus()
            matrix.move_cursor(row=row, column=column)
            await pilot.press("enter")
            await pilot.pause()
            assert "database-server" not in app.answers.barclamps["database"].roles
            header = next(c.label for c in matrix.columns.values()
                          if str(c.label) == "database-server")
            assert "red" in str(header.style), "the role now lacks its node"
            assert "needs at least 1 node" in str(screen.query_one("#violations").render())
            small = "compute-1"  # made too small for a database (it needs 8 GB)
            nodes = [n.model_copy(update={"hardware": Hardware(cpu_cores=2, memory_gb=4)})
                     if n.name == small else n for n in app.answers.nodes]
            app.use(app.answers.model_copy(update={"nodes": nodes}), app.path, saved=False)
            screen._show("database")
            row = matrix.get_row_index(small)
            matrix.move_cursor(row=row, column=column)
            await pilot.press("enter")
            await pilot.pause()
            assert app.answers.barclamps["database"].roles["database-server"] == [small]
            assert f"node {small} cannot hold" in str(screen.query_one("#violations").render())
            assert "red" in str(matrix.get_cell_at((row, column)).style)
            assert not app.saved
    asyncio.run(walk())


def test_network_edits_are_checked_as_typed() -> None:
    """A bad subnet is flagged under its field and not taken; an overlapping range is
    flagged under the form; a good change replaces the network in the answers."""
    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=(120, 40)) as pilot:
            app.go("network")
            await pilot.pause()
            screen = app.screen
            assert screen.current == "admin"
            screen.query_one("#net-subnet").value = "192.168.124.0/33"
            await pilot.pause()
            assert str(screen.query_one("#netmsg-subnet").render()).strip()
            assert app.answers.networks["admin"].subnet == "192.168.124.0/24"
            screen.query_one("#net-subnet").value = "192.168.124.0/24"
            screen.query_one("#net-range-dhcp").value = "192.168.124.21-192.168.124.100"
            await pilot.pause()
            assert "overlaps" in str(screen.query_one("#network-problems").render())
            assert app.answers.networks["admin"].ranges["dhcp"].endswith(".80")
            screen.query_one("#net-range-dhcp").value = "192.168.124.21-192.168.124.70"
            await pilot.pause()
            assert app.answers.networks["admin"].ranges["dhcp"].endswith(".70")
            assert not app.saved
    asyncio.run(walk())


def test_an_invalid_field_at_80_columns_shows_its_value_and_the_title_says_so() -> None:
    """The message goes under the field, not over what was typed; the title says a field
    is invalid (its value not taken) rather than "answers valid", until it is fixed."""
    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            app.go("network")
            await pilot.pause()
            screen = app.screen
            field, message = screen.query_one("#net-subnet"), screen.query_one("#netmsg-subnet")
            field.value = "192.168.124.0/33"
            await pilot.pause()
            assert "is not a CIDR block" in str(message.render())
            assert field.content_region.width >= len(field.value), "the value typed shows"
            assert message.region.y > field.region.y and message.region.height >= 1
            assert "1 invalid field" in app.sub_title and "answers valid" not in app.sub_title
            field.value = "192.168.124.0/24"
            await pilot.pause()
            assert not message.display
            assert "answers valid" in app.sub_title and "invalid" not in app.sub_title
    asyncio.run(walk())


def test_conduits_and_vlan_tagging_are_edited_and_checked() -> None:
    """Bonding two NICs in LACP mode is taken; a bad interface name is flagged and not;
    untagging a network's VLAN is taken; a tag without a VLAN id is refused."""
    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=(120, 40)) as pilot:
            app.go("network")
            await pilot.pause()
            screen = app.screen
            screen.query_one("#networks").move_cursor(row=3)  # storage
            await pilot.pause()
            assert screen.current == "storage" and app.answers.networks["storage"].use_vlan
            screen.query_one("#net-use_vlan").value = False
            await pilot.pause()
            assert not app.answers.networks["storage"].use_vlan
            screen.query_one("#net-use_vlan").value = True
            screen.query_one("#net-vlan").value = ""
            await pilot.pause()
            assert "no vlan id" in str(screen.query_one("#network-problems").render())
            assert app.answers.networks["storage"].vlan == 200

            screen.query_one("#network-tabs").active = "conduits-tab"
            await pilot.pause()
            pane = screen.query_one("#conduits-pane")
            screen.query_one("#conduits").move_cursor(row=1)  # intf1
            await pilot.pause()
            assert pane.current == "intf1"
            screen.query_one("#conduit-interfaces").value = "?1g2, bad name!"
            await pilot.pause()
            assert str(screen.query_one("#conduitmsg-interfaces").render()).strip()
            assert app.answers.conduits["intf1"].interfaces == ["?1g2"]
            screen.query_one("#conduit-interfaces").value = "?1g2, ?1g3"
            screen.query_one("#conduit-teaming").value = 4
            await pilot.pause()
            assert app.answers.conduits["intf1"].interfaces == ["?1g2", "?1g3"]
            assert app.answers.conduits["intf1"].teaming_mode == 4
            row = screen.query_one("#conduits").get_row("intf1")
            assert row[2] == "bond, mode 4 802.3ad (LACP)" and "storage" in row[3]
            assert not app.saved
    asyncio.run(walk())


def test_what_the_wizard_opens_without_a_file(tmp_path: Path) -> None:
    """The lab's example, unsaved, until an answers file is saved in answers/; with --lab,
    the lab's example even then."""
    path, answers, saved = starting_answers(None)
    assert path is None and answers is not None and answers.site.name == "lab" and not saved
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "site.yaml").write_text(LAB.read_text())
    path, answers, saved = starting_answers(None)
    assert path == Path("answers/site.yaml") and saved
    path, answers, saved = starting_answers(None, lab=True)  # ./dev lab: the lab's example
    assert path is None and answers is not None and answers.site.name == "lab" and not saved
    assert main(["wizard", "lab.yaml", "--lab"]) == 2


def test_a_crashed_edit_comes_back_from_the_draft() -> None:
    """An edit is in the draft a moment later; a wizard opened afresh on the same file (as
    after a crash or a dropped SSH link) offers it back, showing what differs."""
    path = Path("lab.yaml")

    async def edit() -> None:
        app = lab_app()
        async with app.run_test(size=(120, 40)) as pilot:
            app.go("barclamps")
            await pilot.pause()
            tree, node = leaf(app.screen, "ceph")
            tree.select_node(node)
            await pilot.pause(1.5)
            assert draft_path(path).exists()
        # leaving run_test without saving: the process "dies" with the edit unsaved

    async def reopen(restore: bool) -> WizardApp:
        app = lab_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            modal = app.screen
            assert isinstance(modal, RestoreDraft)
            assert any("ceph" in line for line in modal.changes)
            await pilot.click("#restore" if restore else "#discard")
            await pilot.pause()
        return app

    asyncio.run(edit())
    restored = asyncio.run(reopen(True))
    assert "ceph" in restored.answers.barclamps and not restored.saved
    assert "ceph" not in load(path).barclamps, "the file itself is untouched"
    asyncio.run(edit())
    discarded = asyncio.run(reopen(False))
    assert "ceph" not in discarded.answers.barclamps
    assert not draft_path(path).exists()


@pytest.mark.slow
def test_a_killed_wizard_process_comes_back_from_the_draft() -> None:
    """The real thing: ``crowbar-wizard wizard lab.yaml`` on a terminal (a pty), a barclamp
    selected with the keyboard, the process SIGKILLed a moment later; a wizard opened on
    the same file offers the draft, and restoring it brings the edit back."""
    session = PtySession.start([sys.executable, "-m", "wizard.cli", "wizard", "lab.yaml"],
                               os.environ | {"TERM": "xterm-256color"})
    try:
        session.wait_for(b"Review")
        session.read(1)
        session.keys(b"\x02", *[b"\x1b[B"] * 4, b"\r")  # ctrl+b, crowbar + 4 = bios, enter
        session.read(DRAFT_DELAY + 1.5)
        assert draft_path(Path("lab.yaml")).exists(), "the edit is in the draft"
    finally:
        session.close()  # SIGKILL
    assert "bios" not in load("lab.yaml").barclamps

    async def reopen() -> WizardApp:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, RestoreDraft)
            assert any("bios" in line for line in app.screen.changes)
            await pilot.click("#restore")
            await pilot.pause()
        return app
    assert "bios" in asyncio.run(reopen()).answers.barclamps


def test_a_second_session_observes_read_only_then_gets_control() -> None:
    """Control held by another session (its real lock): this wizard observes — banner,
    disabled fields, keys that say why, edits refused — follows the answers the
    controller keeps in its draft, and gets control when the controller ends."""
    other = Control({"user": "alice", "tty": "/dev/pts/7", "from": "10.1.2.3"})
    assert other.try_take()

    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.observing and "observing" in app.sub_title
            banner = str(app.screen.query_one("#banner").render())
            assert "alice on /dev/pts/7 from 10.1.2.3" in banner and "F2" in banner
            app.go("network")
            await pilot.pause()
            assert app.screen.query_one("#net-subnet").disabled
            await pilot.press("x")
            assert any(n.message.startswith("Read-only: alice") for n in app._notifications)
            before = app.answers
            app.use(before.model_copy(update={"nodes": []}), app.path, saved=False)
            assert app.answers is before, "an observer changes nothing"
            changed = before.model_copy(update={"barclamps": {
                **before.barclamps, "ceph": Proposal()}})
            write_draft(changed, Path("lab.yaml"))  # what the controller keeps as it edits
            await pilot.pause(1.5)
            assert "ceph" in app.answers.barclamps
            other.release()
            await pilot.pause(1.5)
            assert not app.observing and "observing" not in app.sub_title
            assert not app.screen.query_one("#net-subnet").disabled
            assert any("you have control now" in n.message for n in app._notifications)
    try:
        asyncio.run(walk())
    finally:
        other.release()


def test_an_observer_sees_no_inline_secret_on_review() -> None:
    """Review shows the YAML to be saved; to an observer (a read-only browser tab, another
    login) inline secrets are masked and references shown; the session that has control
    sees the file as it will be written."""
    inline = {"bmc-password-inline": "env:CROWBAR_BMC_PASSWORD",
              "chef-key-inline": "file:/etc/crowbar/chef/crowbar.pem"}
    text = Path("lab.yaml").read_text()
    for secret, reference in inline.items():
        assert reference in text
        text = text.replace(reference, secret)
    Path("secret.yaml").write_text(text)
    other = Control({"user": "alice", "tty": "/dev/pts/7", "from": "10.1.2.3"})
    assert other.try_take()

    async def walk() -> None:
        app = WizardApp(Path("secret.yaml"), load("secret.yaml", complete=False))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.observing and app.screen.step == "review"
            shown = app.screen.query_one("#yaml").text
            assert "client_name: crowbar" in shown
            assert "admin_password: env:CROWBAR_KEYSTONE_PASSWORD" in shown, "a reference"
            for secret in inline:
                assert secret not in shown
            assert shown.count("********") == len(inline)
            other.release()
            await pilot.pause(1.5)
            assert not app.observing
            shown = app.screen.query_one("#yaml").text
            assert all(secret in shown for secret in inline), "the controller sees them"
    try:
        asyncio.run(walk())
    finally:
        other.release()


def test_quitting_with_unsaved_changes_asks_first() -> None:
    async def walk() -> None:
        app = WizardApp()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.click("#new")
            await pilot.pause()
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmQuit)
            await pilot.click("#stay")
            await pilot.pause()
            assert app.is_running and not isinstance(app.screen, ConfirmQuit)
            assert draft_path(None).exists(), "the unsaved plan is kept in the draft"
            await pilot.press("ctrl+q")
            await pilot.pause()
            await pilot.click("#quit")
            await pilot.pause()
    asyncio.run(walk())


def test_saving_removes_the_draft_of_what_was_edited() -> None:
    """A new plan's edits go to the unsaved draft; saved as a file, the draft goes: it is in
    the file now, and the next wizard must not offer it back."""
    async def walk() -> None:
        app = WizardApp()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.click("#new")
            await pilot.pause(DRAFT_DELAY + 0.5)
            assert draft_path(None).exists()
            app.go("review")
            await pilot.pause()
            app.screen.query_one("#save-path").value = "answers/site.yaml"
            await pilot.click("#save")
            await pilot.pause()
            assert app.saved and app.path == Path("answers/site.yaml")
            await pilot.pause(DRAFT_DELAY + 0.5)
            assert not draft_path(None).exists(), "the unsaved plan's draft is gone"
            assert not draft_path(app.path).exists()
    asyncio.run(walk())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_what_the_wizard_saves_plans_the_same(example: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Open an example in the wizard, walk its steps, save it from Review; ``apply
    --dry-run`` of the saved file prints the same plan as of the example itself."""
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "secret")
    saved = tmp_path / "saved.yaml"

    async def save_it() -> None:
        app = WizardApp(example, load(example))
        async with app.run_test(size=(120, 40)) as pilot:
            for step in ("network", "discovery", "barclamps", "review"):
                app.go(step)
                await pilot.pause()
            app.screen.query_one("#save-path").value = str(saved)
            await pilot.click("#save")
            await pilot.pause()
            assert app.saved
    asyncio.run(save_it())

    def plan(path: Path) -> str:
        assert main(["apply", str(path), "--dry-run", "--state", str(tmp_path / "s")]) == 0
        return capsys.readouterr().out
    assert plan(saved) == plan(example)
    assert plan(example).startswith("DHCP: add ")


# --- with the real lab (slow) -------------------------------------------------------------


@pytest.mark.slow
def test_sweep_the_lab_through_the_password_modal_and_add_the_nodes(tmp_path: Path) -> None:
    """A real sweep of a 6-server lab: range typed, password in the masked modal."""
    lab = Lab(tmp_path / "lab")
    spec = lab.up(6, seed=5, network="127.79.60.0/24")
    try:
        async def walk() -> tuple[int, int, int]:
            app = lab_app()
            async with app.run_test(size=SIZE) as pilot:
                app.go("discovery")
                await pilot.pause()
                screen = app.screen
                screen.query_one("#range").value = "127.79.60.1-127.79.60.6"
                screen.query_one("#user").value = spec.username
                await pilot.click("#sweep")
                await pilot.pause()
                modal = app.screen
                assert modal.query_one("#password").password, "the password is masked"
                modal.query_one("#password").value = spec.password
                await pilot.press("enter")
                await app.workers.wait_for_complete()
                await pilot.pause()
                table = screen.query_one("#found")
                rows = table.row_count
                powers = {table.get_row(key)[2] for key in table.rows}
                before = len(app.answers.nodes)
                await pilot.click("#add")
                return rows, powers, before, len(app.answers.nodes)
        rows, powers, before, after = asyncio.run(walk())
    finally:
        lab.down()
    assert rows == 6 and after == before + 6
    assert powers and powers <= {"on", "off"}, "every found server says its power state"


@pytest.mark.slow
def test_sweeping_a_grown_lab_adds_only_the_racked_servers(tmp_path: Path) -> None:
    """The lab example's 6 nodes cabled to a lab of 6 (as every ``--lab`` command cables
    them), then 2 servers racked: Sweep the lab shows the 6 as their nodes, and Add to
    answers adds the 2 racked ones alone, without the lab's loopback BMC addresses (the lab
    cables its own), so the answers stay valid."""
    lab = Lab(tmp_path / "lab")
    lab.up(6, seed=5, network="127.79.64.0/24")
    try:
        lab_answers(load("lab.yaml"), lab)  # cables node i to server i, as apply --lab does
        spec = lab.rack(2)

        async def walk() -> tuple[dict[str, str], list[Node], list[str], list[str]]:
            app = lab_app()
            async with app.run_test(size=SIZE) as pilot:
                app.go("discovery")
                await pilot.pause()
                await pilot.click("#lab")
                await app.workers.wait_for_complete()
                await pilot.pause()
                table = app.screen.query_one("#found")
                found_by = {str(table.get_row(key)[0]).partition(":")[0]:
                            str(table.get_row(key)[1]) for key in table.rows}
                names = [n.name for n in app.answers.nodes]
                await pilot.click("#add")
                await pilot.pause()
                added = [n for n in app.answers.nodes if n.name not in names]
                return found_by, added, [n.message for n in app._notifications], app.problems()
        found_by, added, messages, problems = asyncio.run(walk())
    finally:
        lab.down()
    servers = [bmc.address for bmc in spec.bmcs]
    nodes = [n.name for n in load("lab.yaml").nodes]
    assert found_by == {address: f"node {name}"
                        for address, name in zip(servers[:6], nodes, strict=True)} | {
        address: "IPMI found" for address in servers[6:]}
    assert sorted(mac for n in added for mac in n.macs) == sorted(
        mac for bmc in spec.bmcs[6:] for mac in bmc.hardware.nic_macs)
    assert [n.bmc_address for n in added] == [None, None]
    assert problems == [], "the added nodes take BMC addresses from the plan"
    assert any(m.startswith("added 2 nodes") for m in messages), messages


@pytest.mark.slow
def test_welcome_starts_the_lab(tmp_path: Path) -> None:
    """Start the lab on Welcome: the simulated fleet comes up in its own process, also
    where a lab died and left its state behind."""
    lab = Lab(tmp_path / "lab")
    lab.up(2, seed=1, network="127.79.63.0/24")
    pid = lab.pid()
    os.kill(pid, signal.SIGKILL)  # the fleet dies; its directory stays
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # (started from this process: reap it)
    assert lab.pid() is None and lab.spec() is not None
    chef = int((lab.chef_directory / "goiardi.pid").read_text()) if lab.chef() else None

    async def walk() -> list[str]:
        app = WizardApp()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.click("#lab-up")
            await app.workers.wait_for_complete()
            assert lab.pid() is not None and len(lab.spec().bmcs) == 6
            await pilot.click("#lab-up")
            await pilot.pause()
            return [n.message for n in app._notifications]
    try:
        messages = asyncio.run(walk())
    finally:
        lab.down()
    assert any(m.startswith("lab up: 6 BMCs") for m in messages), messages
    assert "the lab is up already" in messages
    if chef is not None:  # the dead lab's Chef server was stopped, not left running
        assert os.waitpid(chef, os.WNOHANG)[0] == chef


@pytest.mark.slow
def test_the_ui_answers_keys_while_a_sweep_runs(tmp_path: Path) -> None:
    """A sweep of 6 BMCs among 248 silent addresses (given 5 s to answer): while it runs,
    typed keys reach the filter and a 20 Hz heartbeat keeps ticking (the loop is never
    held), and the rows that arrived stay."""
    lab = Lab(tmp_path / "lab")
    spec = lab.up(6, seed=6, network="127.79.62.0/24")
    try:
        async def walk() -> None:
            app = lab_app()
            async with app.run_test(size=SIZE) as pilot:
                app.go("discovery")
                await pilot.pause()
                screen = app.screen
                beats: list[int] = [0]
                app.set_interval(0.05, lambda: beats.__setitem__(0, beats[0] + 1))
                screen.ping_timeout = 5.0
                worker = screen.run_sweep([f"127.79.62.{i}" for i in range(1, 255)],
                                          spec.bmcs[0].port, spec.username, spec.password)
                await until(lambda: screen.query_one("#found").row_count > 0, 30)
                assert worker.is_running
                screen.query_one("#filter").focus()
                beats_before = beats[0]
                await pilot.press("P", "o", "w")
                assert screen.query_one("#filter").value == "Pow"
                await until(lambda: beats[0] >= beats_before + 5, 30)
                assert worker.is_running, "keys and timers were handled during the sweep"
                await app.workers.wait_for_complete()
                assert len(screen.results) >= 6
                await pilot.pause()
        asyncio.run(walk())
    finally:
        lab.down()


async def until(check, seconds: float = 120) -> None:
    for _ in range(int(seconds * 20)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {check.__doc__ or check}")


def states_of(screen: DeployScreen) -> set[str]:
    return {node.state for node in screen.progress.nodes.values()}


@pytest.mark.slow
def test_deploy_on_the_lab_cancel_pause_resume_all_ready(tmp_path: Path) -> None:
    """The whole flow on the real lab: save the example, deploy, pause (no step starts),
    resume, watch all six go ready; as another site, cancel on the way and deploy again
    (it resumes) to all ready."""
    target = tmp_path / "lab-site.yaml"

    async def walk() -> None:
        app = WizardApp()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.click("#lab")
            await pilot.pause()
            app.screen.query_one("#save-path").value = str(target)
            await pilot.click("#save")
            await pilot.press("ctrl+n")
            screen = app.screen
            assert isinstance(screen, DeployScreen)
            await pilot.click("#lab")
            await until(lambda: screen.holder is not None)
            await pilot.click("#pause")
            await until(lambda: screen.progress.paused)
            assert "paused" in str(screen.query_one("#deploy-status").render())
            started = screen.progress.seq
            await asyncio.sleep(1.5)
            assert screen.running and states_of(screen) != {"ready"}
            with Journal.open(screen.path, lock=False) as journal:
                assert "step-started" not in {e.kind for e in journal.events(started)}
            await pilot.click("#pause")  # now labelled Resume
            await until(lambda: not screen.progress.paused)
            await until(lambda: states_of(screen) == {"ready"} and not screen.running)
            assert len(screen.progress.nodes) == 7, "the six and the admin node"
            assert screen.query_one("#overall").percentage == 1
            await app.workers.wait_for_complete()

            # the same servers as another site: cancelled on the way, then resumed
            app.use(app.answers.model_copy(update={"site": app.answers.site.model_copy(
                update={"name": "lab2"})}), None, saved=False)
            app.go("review")
            await pilot.pause()
            app.screen.query_one("#save-path").value = str(tmp_path / "lab2.yaml")
            await pilot.click("#save")
            await pilot.press("ctrl+n")
            await pilot.click("#lab")
            await until(lambda: screen.holder is not None and screen.kind == "lab"
                        and screen.path.parent.name == "lab2")
            await pilot.click("#pause")  # so that it cannot finish before the cancel
            await until(lambda: screen.progress.paused)
            await pilot.click("#cancel")
            await app.workers.wait_for_complete()
            await until(lambda: not screen.running)
            log = "\n".join(str(line) for line in screen.query_one("#log").lines)
            assert "cancelled" in log, "the apply was stopped, not finished"
            await pilot.click("#lab")  # deploy again: it resumes
            await until(lambda: states_of(screen) == {"ready"} and not screen.running)
            await app.workers.wait_for_complete()
    try:
        asyncio.run(walk())
    finally:
        subprocess.run([sys.executable, "-m", "wizard.cli", "lab", "down"],
                       capture_output=True)


@pytest.mark.slow
def test_opening_the_wizard_during_an_apply_attaches_to_it(tmp_path: Path) -> None:
    """An apply started from the command line; the wizard opened on the same answers
    goes to Deploy and follows it to the end."""
    lab = Lab(tmp_path / "lab")
    lab.up(6, seed=4, network="127.79.61.0/24")
    running = subprocess.Popen([sys.executable, "-m", "wizard.cli", "apply", "lab.yaml",
                                "--lab"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        journal = tmp_path / "lab" / "apply" / "lab" / "journal.db"
        deadline = time.monotonic() + 60
        while holder(journal) is None:
            assert time.monotonic() < deadline and running.poll() is None
            time.sleep(0.05)

        async def walk() -> None:
            app = lab_app()
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause()
                screen = app.screen
                assert isinstance(screen, DeployScreen) and screen.kind == "lab"
                await until(lambda: screen.running)
                assert "running (pid" in str(screen.query_one("#deploy-status").render())
                await until(lambda: states_of(screen) == {"ready"} and not screen.running)
                assert len(screen.progress.nodes) == 7, "the six and the admin node"
        asyncio.run(walk())
        assert running.wait(timeout=60) == 0
    finally:
        running.kill()
        running.wait()
        lab.down()


def failed_output(screen: DeployScreen) -> str:
    return str(screen.query_one("#failed-output").render())


async def deploy_too_small_lab(pilot) -> DeployScreen:
    """Deploy on the lab (up with 1 server) the 6-node example: the apply exits at once."""
    pilot.app.go("deploy")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, DeployScreen)
    await pilot.click("#lab")
    await until(lambda: screen.query_one("#deploy-failed").display)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return screen


@pytest.mark.slow
def test_deploy_shows_an_apply_that_failed_to_start(tmp_path: Path) -> None:
    """The lab is up with 1 server, the answers have 6 nodes: the apply exits with a clear
    message. Deploy says the apply did not start, shows that message as written (from
    apply.log), and offers to rack the 5 servers the lab lacks, which deploys on it: the
    same lab, its first server and Chef server kept."""
    lab = Lab(tmp_path / "lab")
    lab.up(1, seed=2, network="127.79.65.0/24")
    fleet, chef = lab.pid(), lab.chef()

    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            screen = await deploy_too_small_lab(pilot)
            assert not screen.running and screen.exit_code == 1
            status = str(screen.query_one("#deploy-status").render())
            assert "The apply on the lab did not start (exit 1)" in status
            shown = failed_output(screen)
            assert ("the lab has 1 servers and the answers 6 nodes: `crowbar-wizard lab rack "
                    "5` racks more") in shown
            assert "full output: lab/apply/lab/apply.log" in shown
            resize = screen.query_one("#lab-resize")
            assert resize.display and str(resize.label) == "Rack 5 more lab servers"
            assert not screen.query_one("#lab").disabled, "Deploy can be tried again"
            await pilot.click("#lab-resize")
            await until(lambda: screen.holder is not None)
            assert not screen.query_one("#deploy-failed").display
            spec = lab.spec()
            assert spec is not None and len(spec.bmcs) == 6
            assert spec.network == "127.79.65.0/24", "the same lab, larger"
            assert (lab.pid(), lab.chef()) == (fleet, chef), "nothing restarted"
            log = "\n".join(str(line) for line in screen.query_one("#log").lines)
            assert "lab rack: 5 servers more" in log
            await pilot.click("#cancel")
            await app.workers.wait_for_complete()
            await until(lambda: not screen.running)
            assert not screen.query_one("#deploy-failed").display, "cancelled, not failed"
    try:
        asyncio.run(walk())
    finally:
        lab.down()


@pytest.mark.slow
def test_deploy_shows_an_apply_that_ended_with_a_node_in_problem(tmp_path: Path) -> None:
    """One BMC refuses the password: the apply ends (exit 1) with five nodes ready and one
    in problem; Deploy says so, with the apply's own summary and a Retry."""
    lab = Lab(tmp_path / "lab")
    lab.up(6, seed=7, network="127.79.67.0/24", faults={2: Faults(wrong_password=True)})

    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            app.go("deploy")
            await pilot.pause()
            screen = app.screen
            await pilot.click("#lab")
            await until(lambda: screen.query_one("#deploy-failed").display, 300)
            await app.workers.wait_for_complete()
            assert screen.exit_code == 1
            status = str(screen.query_one("#deploy-status").render())
            # the grid's nodes: the admin node too
            assert "The apply on the lab ended (exit 1): 6 of 7 ready, 1 in problem" in status
            shown = failed_output(screen)
            assert "5 nodes ready, 1 in problem:" in shown
            assert "compute-2: bmc-boot-network: 127.79.67.3: auth failed" in shown
            assert not screen.query_one("#lab-resize").display, "the lab is large enough"
            assert screen.query_one("#retry").display and screen.focused is not None
            assert screen.focused.id == "retry"
    try:
        asyncio.run(walk())
    finally:
        lab.down()


@pytest.mark.slow
def test_deploy_shows_a_node_whose_converge_failed(tmp_path: Path) -> None:
    """compute-2's chef-client fails: the apply ends with it in problem, the other nodes
    and the admin node ready. Deploy shows compute-2's last run, failed, with chef-client's
    error; a ready node all its roles converged; All steps short by compute-2's roles."""
    lab = Lab(tmp_path / "lab")
    lab.up(6, seed=8, network="127.79.68.0/24", faults={2: Faults(converge_fail=True)})

    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            app.go("deploy")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, DeployScreen)
            await pilot.click("#lab")
            await until(lambda: screen.query_one("#deploy-failed").display, 300)
            await app.workers.wait_for_complete()
            status = str(screen.query_one("#deploy-status").render())
            assert "The apply on the lab ended (exit 1): 6 of 7 ready, 1 in problem" in status
            progress = screen.progress
            assert {n: p.activity for n, p in progress.nodes.items()} == {
                **{n: "ready" for n in ("ctl-1", "compute-1", "compute-3", "storage-1",
                                        "storage-2", "admin")}, "compute-2": "problem"}
            assert cell_color(screen, "compute-2") == STATE_COLORS["problem"]
            grid = screen.query_one("#grid")
            grid.focus()
            grid.move_cursor(row=screen.cells["compute-2"][0],
                             column=screen.cells["compute-2"][1])
            await pilot.pause()
            detail = str(screen.query_one("#node-detail").render())
            assert "compute-2 ■ problem" in detail and "0 of 7 roles converged" in detail
            assert "last run " in detail and "✗ failed after" in detail
            assert "chef-client failed: lab fault converge_fail" in detail
            grid.move_cursor(row=screen.cells["ctl-1"][0], column=screen.cells["ctl-1"][1])
            await pilot.pause()
            detail = str(screen.query_one("#node-detail").render())
            assert "16 of 16 roles converged" in detail and "✓ success in" in detail
            assert progress.total - len(progress.done) == 7, "compute-2's roles, not done"
    try:
        asyncio.run(walk())
    finally:
        lab.down()


@pytest.mark.slow
def test_deploy_snapshot_of_an_apply_that_failed_to_start(snap_compare,
                                                         tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab")
    lab.up(1, seed=3, network="127.79.66.0/24")
    try:
        assert snap_compare(lab_app(), terminal_size=SIZE, run_before=deploy_too_small_lab)
    finally:
        lab.down()


HOSTILE = "[bold]Evil[/] [/] [$error]x[/] [ctl-1]"
"""Markup in text from outside: styles, a stray close tag (MarkupError), Textual's
``$variable`` style, a word in brackets (a YAML list) that markup would swallow."""


def test_text_from_bmcs_and_problem_reasons_shows_as_written(tmp_path: Path) -> None:
    """A BMC's FRU fields in the discovery table and its detail line, and a problem reason
    in Deploy's log and node detail, are shown literally: never styled, never a crash."""
    path = tmp_path / "journal.db"
    with Journal.open(path) as journal:
        journal.transition("ctl-1", "allocated")
        journal.step_started("ctl-1", "bmc-boot-network", attempt=1)
        journal.step_failed("ctl-1", "bmc-boot-network", f"bmc-boot-network: {HOSTILE}")
        journal.transition("ctl-1", "problem", f"bmc-boot-network: {HOSTILE}")

    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=(160, 40)) as pilot:
            app.go("discovery")
            await pilot.pause()
            screen = app.screen
            bmc = BmcInventory("10.0.1.9", 623, manufacturer=HOSTILE, model=HOSTILE,
                               serial=HOSTILE, nic_macs=["52:54:00:00:01:09"], power="on")
            screen.show(SweepResult(bmc.address, 623, "found", bmc=bmc))
            await pilot.pause()
            table = screen.query_one("#found")
            cells = [default_cell_formatter(cell).plain for cell in table.get_row("10.0.1.9")]
            assert cells[3] == cells[4] == HOSTILE
            table.focus()
            table.move_cursor(row=0)
            await pilot.pause()
            assert f"serial: {HOSTILE}" in str(screen.query_one("#detail").render())
            deploy = await show_deploy(pilot, path, "ctl-1")
            assert app.is_running
            assert HOSTILE in str(deploy.query_one("#node-detail").render())
            log = "\n".join(strip.text for strip in deploy.query_one("#log").lines)
            assert f"ctl-1: bmc-boot-network: {HOSTILE}" in log
    asyncio.run(walk())


def log_text(screen: DeployScreen) -> str:
    return "\n".join(line.text for line in screen.query_one("#log").lines)


@pytest.mark.slow
def test_deploy_says_what_it_would_change_and_releases_a_node_after_asking(
        tmp_path: Path) -> None:
    """The lab example deployed from the command line, then Swift's replicas raised in the
    file: Deploy says what an apply would change (the attribute, Swift's nodes converging
    again). From compute-3's pane, Release asks first, naming what goes; kept, nothing
    happens; released, the node goes off and out of the answers, which the wizard reads
    back."""
    lab = Lab(tmp_path / "lab")
    lab.up(6, seed=9, network="127.79.69.0/24")
    try:
        done = subprocess.run([sys.executable, "-m", "wizard.cli", "apply", "lab.yaml",
                               "--lab"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        text = Path("lab.yaml").read_text()
        assert "replicas: 2" in text
        Path("lab.yaml").write_text(text.replace("replicas: 2", "replicas: 3"))

        async def walk() -> None:
            app = lab_app()
            async with app.run_test(size=SIZE) as pilot:
                app.go("deploy")
                await pilot.pause()
                screen = app.screen
                assert isinstance(screen, DeployScreen)
                await until(lambda: "swift: replicas 2 → 3" in log_text(screen))
                assert "Deploy on the lab would change" in log_text(screen)
                assert "storage-1: converge again swift-storage" in log_text(screen)
                grid = screen.query_one("#grid")
                await until(lambda: "compute-3" in screen.cells)
                grid.focus()
                grid.move_cursor(row=screen.cells["compute-3"][0],
                                 column=screen.cells["compute-3"][1])
                await until(lambda: screen.query_one("#node-actions").display)
                await pilot.click("#release")
                await pilot.pause()
                question = app.screen
                assert type(question).__name__ == "ConfirmRelease"
                said = " ".join(str(w.render()) for w in question.query("Static"))
                assert "Release compute-3 on the lab?" in said and "powered off" in said
                assert "nova-compute-kvm" in said, "its roles are named"
                await pilot.click("#no")
                await pilot.pause()
                assert app.screen is screen and not screen.running
                await pilot.click("#release")
                await pilot.pause()
                await pilot.click("#yes")
                await until(lambda: screen.running)
                await until(lambda: not screen.running, 180)
                await until(lambda: "compute-3" in screen.progress.nodes and
                            screen.progress.nodes["compute-3"].state == "released")
                assert app.answers is not None
                assert "compute-3" not in [n.name for n in app.answers.nodes]

                # edited in the wizard: Review says what it would change before it is
                # saved; saved, back on Deploy, the log says it (found walking day two in
                # one wizard session)
                cinder = app.answers.barclamps["cinder"]
                roles = cinder.roles | {"cinder-volume": [*cinder.roles["cinder-volume"],
                                                          "compute-1"]}
                app.use(app.answers.model_copy(update={"barclamps": app.answers.barclamps | {
                    "cinder": cinder.model_copy(update={"roles": roles})}}), app.path,
                    saved=False)
                app.go("review")
                review = app.screen
                await until(lambda: "  compute-1: run list +role[cinder-volume]" in str(
                    review.query_one("#pending").render()).splitlines(), 60)
                shown = str(review.query_one("#pending").render())
                assert shown.startswith("Applying these answers on the lab would change")
                assert "DHCP:" not in shown, "the per-node part, not the counts"
                await pilot.click("#save")
                await until(lambda: app.saved)
                app.go("deploy")
                await until(lambda: "  compute-1: run list +role[cinder-volume]" in
                            log_text(screen).splitlines())
        asyncio.run(walk())
        assert "compute-3" not in Path("lab.yaml").read_text().split("nodes:")[1]
    finally:
        lab.down()


def test_deploy_snapshot_of_the_changes_pending_and_a_release_question(
        snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:
    """A site deployed before (its journal where a real apply keeps it): the log says what
    Deploy would change (apply --dry-run, run as its own process); storage-2's Release
    asks first, naming what goes."""
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")
    path = Path(os.environ["CROWBAR_STATE_DIR"]) / "lab" / "journal.db"
    path.parent.mkdir(parents=True)
    mixed_journal(path)

    async def release(pilot) -> None:
        pilot.app.go("deploy")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, DeployScreen) and screen.kind == "real"
        await until(lambda: "would change" in log_text(screen))
        grid = screen.query_one("#grid")
        grid.focus()
        grid.move_cursor(row=screen.cells["storage-2"][0], column=screen.cells["storage-2"][1])
        await until(lambda: screen.query_one("#node-actions").display)
        await pilot.click("#release")
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=release)


def test_review_snapshot_of_what_applying_an_edit_would_change(
        snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:
    """A site deployed before (its journal where a real apply keeps it: ctl-1 ready, with no
    run recorded), compute-1 given cinder-volume in the wizard and not saved: Review says,
    per node, what applying the answers as they are here would change (apply --dry-run of
    them, as its own process): ctl-1's run list; compute-1 is not deployed yet."""
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")
    path = Path(os.environ["CROWBAR_STATE_DIR"]) / "lab" / "journal.db"
    path.parent.mkdir(parents=True)
    mixed_journal(path)

    async def edit(pilot) -> None:
        app = pilot.app
        app.go("barclamps")  # where the edit is made
        await pilot.pause()
        cinder = app.answers.barclamps["cinder"]
        roles = cinder.roles | {"cinder-volume": [*cinder.roles["cinder-volume"], "compute-1"]}
        app.use(app.answers.model_copy(update={"barclamps": app.answers.barclamps | {
            "cinder": cinder.model_copy(update={"roles": roles})}}), app.path, saved=False)
        app.go("review")
        await pilot.pause()
        pending = app.screen.query_one("#pending")
        await until(lambda: "changes per node:" in str(pending.render()), 60)
        app.screen.query_one("#save-path").cursor_blink = False
        await pilot.pause()
    assert snap_compare(lab_app(), terminal_size=SIZE, run_before=edit)
