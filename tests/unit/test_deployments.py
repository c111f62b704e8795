"""The engine's control of applies and the lab (:mod:`wizard.engine.deployments`), with real
processes: one holds a journal as an apply does, the CLI itself runs detached."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wizard.answers import load
from wizard.base import filelock
from wizard.engine import deployments
from wizard.engine.deployments import ApplyWatch, JournalUnreadable
from wizard.engine.discover import sweep_bmcs
from wizard.engine.journal import Journal, holder
from wizard.engine.paths import SitePaths, control_lock, state_root
from wizard.engine.pause import is_paused, set_paused
from wizard.engine.sessions import Control

EXAMPLE = Path("answers/examples/lab-small.yaml").resolve()

HOLDS = """
import sys
from pathlib import Path
from wizard.engine.journal import Journal
journal = Journal.open(Path(sys.argv[1]))
journal.transition("ctl-1", "allocated")
try:  # before it says so: a Ctrl-C the moment it is holding still lands in here
    print("holding", flush=True)
    sys.stdin.read()  # until its input closes, or it is interrupted
except KeyboardInterrupt:
    journal.record("interrupted")
    sys.exit(130)
"""
"""Holds a journal as a running apply does, until its input closes or Ctrl-C."""


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWBAR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CROWBAR_LAB_DIR", str(tmp_path / "lab"))


def wait_for(check: Callable[[], object], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.02)


@pytest.fixture
def apply_holding() -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    """Start a process that holds a journal (SIGINT as a terminal's Ctrl-C would be, also
    where the tests run with it ignored); it is stopped when the test ends."""
    started: list[subprocess.Popen[str]] = []

    def start(journal: Path) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDS, str(journal)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        started.append(process)
        assert process.stdout is not None and process.stdout.readline() == "holding\n"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_site_paths_name_every_state_file(tmp_path: Path) -> None:
    """The journal, its lock, the pause file, the apply log, the control lock: the ones
    the journal, the pause and the sessions use."""
    paths = SitePaths(tmp_path / "site")
    assert paths.journal == tmp_path / "site" / "journal.db"
    assert paths.apply_log == tmp_path / "site" / "apply.log"
    with Journal.open(paths.journal):
        assert filelock.holder(paths.journal_lock) is not None
    assert filelock.holder(paths.journal_lock) is None
    set_paused(paths.journal, True)
    assert paths.pause_file.exists() and is_paused(paths.journal)
    assert control_lock() == state_root() / "control.lock" == tmp_path / "state" / "control.lock"
    assert Control({}).path == control_lock()
    answers = load(EXAMPLE)
    assert SitePaths.of(answers, lab=True).directory == tmp_path / "lab" / "apply" / "lab"
    assert SitePaths.of(answers, lab=False).directory == tmp_path / "state" / "lab"


def test_attach_finds_the_running_apply_else_the_last_one(apply_holding) -> None:
    answers = load(EXAMPLE)
    journals = deployments.journals(answers)
    assert deployments.running(answers) is None and deployments.latest(answers) is None
    with Journal.open(journals["real"]) as journal:
        journal.transition("ctl-1", "allocated")
    assert deployments.running(answers) is None, "a journal nobody holds: not running"
    assert deployments.latest(answers) == "real"
    process = apply_holding(journals["lab"])
    assert deployments.running(answers) == deployments.latest(answers) == "lab"
    assert deployments.holder(journals["lab"])["pid"] == process.pid
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(30) == 0
    assert deployments.running(answers) is None
    assert deployments.latest(answers) == "lab", "the journal written last"


def test_cancel_interrupts_the_apply_holding_the_journal(tmp_path: Path,
                                                         apply_holding) -> None:
    journal = SitePaths(tmp_path / "site").journal
    process = apply_holding(journal)
    who = deployments.cancel(journal)
    assert who["pid"] == process.pid
    assert process.wait(30) == 130, "interrupted as by Ctrl-C"
    with Journal.open(journal, lock=False) as opened:
        assert [e.kind for e in opened.events()][-1] == "interrupted"
    with pytest.raises(deployments.NotRunning):
        deployments.cancel(journal)


@pytest.mark.parametrize(("who", "error", "message"), [
    ({"host": "elsewhere.example"}, deployments.RunsElsewhere,
     "the apply runs on elsewhere.example: cancel it there"),
    ({"pid": "unknown"}, deployments.CannotCancel, "invalid literal for int()"),
])
def test_cancel_says_why_it_cannot(tmp_path: Path, who: dict, error: type[Exception],
                                   message: str) -> None:
    paths = SitePaths(tmp_path)
    fd = filelock.take(paths.journal_lock, who)
    try:
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            deployments.cancel(paths.journal)
    finally:
        filelock.release(fd)


def test_set_pause_pauses_only_a_running_apply(tmp_path: Path) -> None:
    paths = SitePaths(tmp_path)
    assert deployments.set_pause(paths.journal, True) is None
    assert not paths.pause_file.exists(), "no apply runs: nothing to pause"
    fd = filelock.take(paths.journal_lock, {"command": "crowbar-wizard apply"})
    try:
        assert deployments.set_pause(paths.journal, True)["pid"] == os.getpid()
        assert paths.pause_file.exists() and deployments.is_paused(paths.journal)
        assert deployments.set_pause(paths.journal, False) is not None
        assert not paths.pause_file.exists()
    finally:
        filelock.release(fd)


def test_pxe_serve_holding_the_journal_is_no_apply_to_pause_cancel_or_attach_to(
        tmp_path: Path) -> None:
    """``pxe serve`` writes the site's journal too, but runs no deployment: the wizard must
    not attach Deploy to it, pause it or send it Ctrl-C."""
    answers = load(EXAMPLE)
    journal = deployments.journals(answers)["real"]
    with Journal.open(journal, command="pxe serve"):
        assert deployments.holder(journal) is not None
        assert deployments.running(answers) is None
        assert deployments.set_pause(journal, True) is None
        assert not SitePaths(journal.parent).pause_file.exists()
        with pytest.raises(deployments.NotRunning):
            deployments.cancel(journal)
        assert deployments.ApplyWatch(journal).holder() is None


def test_start_apply_appends_what_the_apply_prints_to_its_log(tmp_path: Path) -> None:
    """The CLI's apply, started as the wizard starts it: its exit code, and its output in
    the apply log beside the journal (appended: earlier applies' output stays)."""
    journal = SitePaths(tmp_path / "site").journal
    missing = tmp_path / "missing.yaml"
    assert deployments.apply_command(missing, lab=True)[-4:] == [
        "apply", str(missing), "--json", "--lab"]

    async def run() -> int:
        started = await deployments.start_apply(missing, journal, lab=False)
        assert started.pid > 0
        return await started.wait()
    assert asyncio.run(run()) == 2
    assert asyncio.run(run()) == 2
    log = SitePaths(journal.parent).apply_log.read_text()
    assert log.count(f"{missing}:1:1: (file): cannot read file") == 2


def test_a_detached_process_has_its_own_session_and_no_input(tmp_path: Path) -> None:
    log = tmp_path / "out" / "apply.log"
    script = "import os, sys; print(os.getsid(0) == os.getpid(), repr(sys.stdin.read()))"

    async def run() -> int:
        started = await deployments.spawn_detached([sys.executable, "-c", script], log)
        return await started.wait()
    assert asyncio.run(run()) == 0
    assert log.read_text() == "True ''\n"


def test_the_watch_follows_the_journal_and_whole_lines_of_output(tmp_path: Path) -> None:
    paths = SitePaths(tmp_path)
    paths.apply_log.write_text("an earlier apply\n")
    watch = ApplyWatch(paths.journal)
    assert not watch.open() and watch.events(0) == [] and watch.holder() is None
    assert watch.output() == [], "what earlier applies printed is left out"
    with paths.apply_log.open("a") as log:
        log.write("one\ntw")
        log.flush()
        assert watch.output() == ["one"]
        log.write("o\n")
        log.flush()
        assert watch.output() == ["two"]
    with Journal.open(paths.journal) as journal:
        journal.transition("ctl-1", "allocated")
        assert watch.open() and watch.holder() is not None
        assert [(e.kind, e.node) for e in watch.events(0)] == [("transition", "ctl-1")]
        set_paused(paths.journal, True)
        assert watch.paused()
    assert watch.holder() is None
    watch.close()
    assert watch.journal is None


def test_an_unreadable_journal_is_said_so_and_read_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    assert deployments.read_events(path) == []
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(JournalUnreadable, match=f"cannot read {path}: file is not a database"):
        ApplyWatch(path).open()
    assert deployments.read_events(path) == []


def test_read_events_of_one_kind_after_those_seen(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as journal:
        journal.transition("ctl-1", "allocated")
        first = journal.record("inventory", "ctl-1", mac="52:54:00:aa:00:01")
        journal.record("inventory", "ctl-2", mac="52:54:00:aa:00:02")
    events = deployments.read_events(path, kind="inventory")
    assert [e.node for e in events] == ["ctl-1", "ctl-2"]
    assert [e.node for e in deployments.read_events(path, first, kind="inventory")] == [
        "ctl-2"]
    assert holder(path) is None, "read without taking the lock"


def test_start_and_rack_lab_say_why_the_lab_did_not_start_or_grow(tmp_path: Path) -> None:
    """``lab up`` and ``lab rack`` run as Welcome and Deploy run them: their output comes
    back."""
    assert deployments.running_lab() is None and not deployments.lab_is_up()
    racked, lines = asyncio.run(deployments.rack_lab(2))
    assert not racked
    assert lines == ["lab rack: no lab is running: `crowbar-wizard lab up --nodes N` starts one"]
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "notes.txt").write_text("not a lab\n")
    started, lines = asyncio.run(deployments.start_lab(0))
    assert not started
    assert lines == [f"lab up: {tmp_path / 'lab'} is not empty and holds no lab: give the lab "
                     "a directory of its own (CROWBAR_LAB_DIR)"]
    assert not deployments.lab_is_up()


def test_sweep_bmcs_reports_every_address() -> None:
    """Two loopback addresses where no BMC listens: each is reported, as unreachable."""
    async def run() -> list[tuple[str, str]]:
        return [(r.address, r.outcome) async for r in sweep_bmcs(
            ["127.79.98.1", "127.79.98.2"], port=16623, username="root", password="x",
            ping_timeout=0.2)]
    assert sorted(asyncio.run(run())) == [("127.79.98.1", "unreachable"),
                                          ("127.79.98.2", "unreachable")]
