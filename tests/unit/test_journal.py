"""The deployment journal: committed transitions, steps, a gapless event log, and its lock."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.tmpfs import small_disk
from wizard.engine.journal import SITE, Journal, JournalError, JournalLocked, holder

WRITER = """
import sys, time
from pathlib import Path
from wizard.engine.journal import Journal
journal = Journal.open(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    journal.transition(f"n{i}", "allocated")
print("ready", flush=True)
time.sleep(600)
"""


def writer(path: Path, count: int) -> subprocess.Popen[str]:
    """Another process holding the journal after writing ``count`` transitions."""
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(count)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def test_transitions_and_steps_persist(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as journal:
        journal.transition("ctl-1", "allocated")
        journal.transition("ctl-1", "hardware-installing")
        journal.step_started("ctl-1", "power-cycle")
        journal.step_finished("ctl-1", "power-cycle", "was off")
        journal.step_started(SITE, "dnsmasq")
        journal.step_failed(SITE, "dnsmasq", "refused: bad dhcp-range")
        journal.step_started(SITE, "dnsmasq")
        journal.transition("ctl-2", "problem", "BMC refused the password")
    with Journal.open(path, lock=False) as reader:
        assert reader.states() == {"ctl-1": ("hardware-installing", None),
                                   "ctl-2": ("problem", "BMC refused the password")}
        step = reader.step("ctl-1", "power-cycle")
        assert step is not None and (step.status, step.detail) == ("done", "was off")
        [running] = reader.in_flight()
        assert (running.node, running.step, running.attempts) == (SITE, "dnsmasq", 2)
        events = reader.events()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[1].data == {"from": "allocated", "to": "hardware-installing"}
        assert events[-1].data["reason"] == "BMC refused the password"


def test_bad_calls_change_nothing(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        with pytest.raises(ValueError, match="unknown node state 'done'"):
            journal.transition("n", "done")
        with pytest.raises(ValueError, match="never started"):
            journal.step_finished("n", "power-cycle")
        assert journal.events() == [] and journal.states() == {}


def test_readers_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal.open(path).close()
    with Journal.open(path, lock=False) as reader, pytest.raises(PermissionError):
        reader.transition("n", "allocated")


def test_a_journal_being_made_is_not_there_yet_for_readers(tmp_path: Path) -> None:
    """Between a writer making the file and its tables, a reader finds no journal (and
    does not fail later on a missing table)."""
    path = tmp_path / "journal.db"
    sqlite3.connect(path).close()  # the file, as a writer's connect leaves it at first
    with pytest.raises(FileNotFoundError, match=r"no journal at .* yet"):
        Journal.open(path, lock=False)
    Journal.open(path).close()
    with Journal.open(path, lock=False) as reader:
        assert reader.events() == []


def test_second_writer_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    process = writer(path, 3)
    try:
        start = time.monotonic()
        with pytest.raises(JournalLocked) as locked:
            Journal.open(path)
        assert time.monotonic() - start < 1
        message = str(locked.value)
        assert f"pid {process.pid}" in message and "crowbar-wizard apply" in message
        assert os.uname().nodename in message
        info = holder(path)
        assert info is not None and info["pid"] == process.pid
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert holder(path) is None, "a killed holder leaves no stale lock"
    with Journal.open(path) as journal:
        assert len(journal.states()) == 3


def test_a_holder_check_at_the_moment_a_writer_opens_does_not_refuse_it(tmp_path: Path
                                                                          ) -> None:
    """holder() takes the lock for a moment to look (the wizard looks 4 times a second);
    a writer opening just then waits that moment out instead of failing."""
    path = tmp_path / "journal.db"
    Journal.open(path).close()
    fd = os.open(path.with_name("journal.db.lock"), os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what holder() does while it looks
    threading.Timer(0.1, os.close, (fd,)).start()
    with Journal.open(path) as journal:
        journal.transition("n1", "allocated")


def test_a_reader_follows_while_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal.open(path).close()
    seen: list[int] = []
    with Journal.open(path, lock=False) as reader:
        done = threading.Event()
        follower = threading.Thread(target=lambda: seen.extend(
            e.seq for e in reader.follow(interval=0.02, until=done.is_set)))
        follower.start()
        process = writer(path, 50)
        try:
            deadline = time.monotonic() + 10
            while len(seen) < 50 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            done.set()
            process.kill()
            process.wait()
            follower.join(5)
    assert seen == list(range(1, 51))


FOLLOWED = """
import sys, time
from pathlib import Path
from wizard.engine.journal import Journal
journal = Journal.open(Path(sys.argv[1]))
journal.transition("ctl-1", "allocated")
time.sleep(0.5)
journal.transition("ctl-1", "hardware-installing")
journal.transition("ctl-1", "problem", "BMC refused the password")
"""


def test_status_follow_prints_events_until_apply_ends(tmp_path: Path) -> None:
    """``status --follow`` follows a journal another process writes, and ends with it."""
    process = subprocess.Popen([sys.executable, "-c", FOLLOWED, str(tmp_path / "journal.db")])
    deadline = time.monotonic() + 10
    while not (tmp_path / "journal.db").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    follow = subprocess.run(
        [sys.executable, "-m", "wizard.cli", "status", "answers/examples/lab-small.yaml",
         "--state", str(tmp_path), "--follow"], capture_output=True, text=True, timeout=30)
    process.wait(10)
    lines = follow.stdout.splitlines()
    assert follow.returncode == 0, follow.stderr
    assert [line.split(" ", 1)[1] for line in lines] == [
        'ctl-1 transition {"from": null, "to": "allocated"}',
        'ctl-1 transition {"from": "allocated", "to": "hardware-installing"}',
        'ctl-1 transition {"from": "hardware-installing", "reason": "BMC refused the '
        'password", "to": "problem"}',
    ]
    table = subprocess.run(
        [sys.executable, "-m", "wizard.cli", "status", "answers/examples/lab-small.yaml",
         "--state", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert table.stdout.split() == ["ctl-1", "problem:", "BMC", "refused", "the", "password"]


@pytest.mark.parametrize("name", ["a#b", "what?", "100%41", "two words"])
def test_a_state_path_with_uri_characters_reads_back(tmp_path: Path, name: str) -> None:
    """Readers open the journal by a SQLite URI, where '#' and '?' would end the path."""
    path = tmp_path / name / "journal.db"
    with Journal.open(path) as journal:
        journal.transition("ctl-1", "allocated")
    with Journal.open(path, lock=False) as reader:
        assert reader.states() == {"ctl-1": ("allocated", None)}


def test_a_full_disk_is_one_error_naming_the_journal_and_nothing_half_written(
        tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "256k") as disk:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * 96 * 1024)
        path = disk / "journal.db"
        with Journal.open(path) as journal:
            with pytest.raises(JournalError) as caught:
                for written in range(100_000):
                    journal.transition(f"node-{written}", "allocated")
            assert str(caught.value) == (f"cannot write the journal {path}: database or "
                                         "disk is full")
            states = journal.states()
            assert len(states) == written and f"node-{written}" not in states
            events = journal.events()
            assert [e.seq for e in events] == list(range(1, written + 1))
            filler.unlink()  # room again: the same journal goes on
            journal.transition(f"node-{written}", "allocated")
            assert journal.state(f"node-{written}") == "allocated"
