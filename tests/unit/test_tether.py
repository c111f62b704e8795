"""The tether that dnsmasq runs under (wizard.provisioning.tether): its command dies with the
process that started it, however that process ends; signals are passed on; its command's
end is the tether's.

The command here is a real ``sleep`` with a duration no other process has, found again by
its command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.proc import alive

STARTER = """\
import subprocess, sys, time
tether = subprocess.Popen([sys.executable, "-m", "wizard.provisioning.tether", "--", *sys.argv[1:]],
                          stdin=subprocess.PIPE, start_new_session=True)
print(tether.pid, flush=True)
time.sleep(600)
"""


def _marked_sleep() -> list[str]:
    """A ``sleep`` whose command line no other process has."""
    return ["sleep", f"600.{uuid.uuid4().int % 10**9:09d}"]


def _running(command: list[str]) -> list[int]:
    """Live (not zombie) processes with exactly this command line."""
    wanted = ("\0".join(command) + "\0").encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == wanted \
                    and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait(condition: Callable[[], object], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for: {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGHUP],
                         ids=["SIGTERM", "SIGKILL", "SIGHUP"])
def test_the_command_dies_with_its_starter(sig: int) -> None:
    command = _marked_sleep()
    starter = subprocess.Popen([sys.executable, "-c", STARTER, *command],
                               stdout=subprocess.PIPE, text=True)
    try:
        tether = int(starter.stdout.readline())
        _wait(lambda: _running(command), "the command to start")
        starter.send_signal(sig)  # its default action: the starter dies, no clean-up runs
        assert starter.wait(10) == -sig
        _wait(lambda: not _running(command), "the command to stop")
        _wait(lambda: not alive(tether), "the tether to end")
    finally:
        starter.kill()
        starter.wait()
        for pid in _running(command):
            os.kill(pid, signal.SIGKILL)


def _tethered(*command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "wizard.provisioning.tether", "--", *command],
                            stdin=subprocess.PIPE)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_signals_are_passed_on_and_the_end_mirrored(sig: int) -> None:
    command = _marked_sleep()
    tether = _tethered(*command)
    try:
        _wait(lambda: _running(command), "the command to start")
        tether.send_signal(sig)
        assert tether.wait(10) == -sig  # sleep died of it, and so did the tether
        assert not _running(command)
    finally:
        tether.kill()
        tether.wait()


def test_an_exit_status_is_mirrored() -> None:
    tether = _tethered("sh", "-c", "exit 3")
    assert tether.wait(10) == 3
