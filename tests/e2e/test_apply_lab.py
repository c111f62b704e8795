"""``crowbar-wizard apply --lab`` end to end: the lab's fake BMCs (real IPMI over LAN), its
node agents (real HTTP to the provisioner) and goiardi (the real Chef API), driven by the
CLI as a user runs it; crashes, a refused BMC password and the journal lock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.proc import children
from tests.tmpfs import small_disk
from wizard.engine.journal import Journal, holder
from wizard.engine.pause import set_paused
from wizard.lab.bmc import Faults
from wizard.lab.control import Lab
from wizard.lab.fleet import read_states
from wizard.lab.goiardi import find_goiardi

pytestmark = pytest.mark.slow

EXAMPLE = str(Path("answers/examples/lab-small.yaml").resolve())
NODES = 6


def start_lab(tmp_path: Path, network: str, faults: dict[int, Faults] | None = None
              ) -> tuple[Lab, dict[str, str]]:
    if find_goiardi() is None and os.environ.get("CI"):
        pytest.fail("goiardi is not installed (./dev deps installs it)")
    directory = tmp_path / "lab"
    env = os.environ | {"CROWBAR_LAB_DIR": str(directory)}
    env.pop("CROWBAR_KEYSTONE_PASSWORD", None)  # the lab makes one up
    lab = Lab(directory)
    lab.up(NODES, seed=3, network=network, faults=faults)
    return lab, env


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Lab, dict[str, str]]]:
    lab, env = start_lab(tmp_path, "127.79.0.0/24")
    try:
        yield lab, env
    finally:
        lab.down()


def apply(env: dict[str, str], *extra: str, timeout: float = 300
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard.cli", "apply", EXAMPLE, "--lab",
                           *extra], env=env, capture_output=True, text=True, timeout=timeout)


def journal_of(lab: Lab) -> Journal:
    return Journal.open(lab.directory / "apply" / "lab" / "journal.db", lock=False)


def kill_apply_after(env: dict[str, str], events: int) -> list[int]:
    """Run ``apply --lab --json`` and SIGKILL it after its ``events``-th line; the
    processes it had started then (the lab's chef-client workers, ...)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "wizard.cli", "apply", EXAMPLE, "--lab", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    started: list[int] = []
    for seen, _line in enumerate(process.stdout, 1):
        if seen == events:
            started = children(process.pid)
            process.send_signal(signal.SIGKILL)
            break
    assert process.wait(60) == -signal.SIGKILL, "apply ended before the kill point"
    return started


def boots(lab: Lab) -> dict[str, int]:
    """How often each server was powered on or cycled, from its fake BMC."""
    return {address: s["state"]["power_ons"] + s["state"]["power_cycles"]
            for address, s in read_states(lab.directory).items()}


def test_apply_takes_every_node_to_ready(lab: tuple[Lab, dict[str, str]]) -> None:
    fleet, env = lab
    done = apply(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"all {NODES} nodes ready")
    with journal_of(fleet) as journal:
        assert {s for s, _ in journal.states().values()} == {"ready"}
    assert set(boots(fleet).values()) == {1}
    states = read_states(fleet.directory)
    assert all(s["state"]["boot_device"] == "disk" for s in states.values())
    again = apply(env, "--dry-run")
    assert again.stdout.strip() == "nothing to do: every step is done and every node ready"


def test_a_second_apply_on_the_same_journal_is_refused(lab: tuple[Lab, dict[str, str]]
                                                       ) -> None:
    fleet, env = lab
    path = fleet.directory / "apply" / "lab" / "journal.db"
    with Journal.open(path):
        refused = apply(env)
    assert refused.returncode == 3
    assert f"pid {os.getpid()}" in refused.stderr and "crowbar-wizard apply" in refused.stderr


def test_a_bmc_that_refuses_the_password_puts_only_its_node_in_problem(tmp_path: Path
                                                                        ) -> None:
    fleet, env = start_lab(tmp_path, "127.79.1.0/24", {2: Faults(wrong_password=True)})
    try:
        done = apply(env)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"{NODES - 1} nodes ready, 1 in problem:" in done.stderr
        assert "compute-2: bmc-boot-network: 127.79.1.3: auth failed" in done.stderr
        with journal_of(fleet) as journal:
            states = journal.states()
        assert states["compute-2"][0] == "problem"
        assert sum(1 for n, (s, _) in states.items() if s == "ready" and n != "admin") \
            == NODES - 1
    finally:
        fleet.down()


def test_a_paused_apply_starts_no_step_until_resumed(lab: tuple[Lab, dict[str, str]]
                                                     ) -> None:
    """``crowbar-wizard pause`` while apply runs: steps under way finish, none starts until
    ``resume``; then every node goes on to ready."""
    fleet, env = lab
    path = fleet.directory / "apply" / "lab" / "journal.db"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wizard.cli", *args, EXAMPLE, "--lab"],
                              env=env, capture_output=True, text=True, timeout=60)
    assert cli("pause").returncode == 1, "no apply runs yet"
    running = subprocess.Popen([sys.executable, "-m", "wizard.cli", "apply", EXAMPLE, "--lab"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while holder(path) is None:
            assert time.monotonic() < deadline and running.poll() is None
            time.sleep(0.05)
        # paused at once, as the command does it: a command started now could land after a
        # lab apply on a loaded machine has already finished
        set_paused(path, True)
        paused = cli("pause")  # and the command says so (pausing twice is still paused)
        assert paused.returncode == 0 and "paused the apply of lab" in paused.stdout
        while not any(e.kind == "paused" for e in _events(path)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(3)  # long enough for several steps, were they allowed to start
        events = _events(path)
        after = events[[e.kind for e in events].index("paused"):]
        assert not [e for e in after if e.kind == "step-started"]
        assert running.poll() is None and set(_states(path).values()) != {"ready"}
        assert cli("resume").returncode == 0
        out, err = running.communicate(timeout=120)
    finally:
        running.kill()
        running.wait()
    assert running.returncode == 0, out + err
    assert "apply paused" in out and "apply resumed" in out
    assert set(_states(path).values()) == {"ready"}


def _states(path: Path) -> dict[str, str]:
    with Journal.open(path, lock=False) as journal:
        return {name: state for name, (state, _) in journal.states().items()}


def _events(path: Path) -> list:
    with Journal.open(path, lock=False) as journal:
        return journal.events()


@pytest.mark.parametrize("kill_after", [1, 9, 50, 98, 108, 112, 118, 138, 158, 180])
def test_killed_apply_resumes_to_ready(tmp_path: Path, kill_after: int) -> None:
    """SIGKILL after the Nth event of --json output, then apply again.

    A whole run of the example prints about 200 events: the points fall in the plan, the
    DHCP step, the Chef objects, boot devices and power cycles (98-118), the installs and
    their callbacks, and the Chef nodes at the end.
    """
    fleet, env = start_lab(tmp_path, f"127.79.{10 + kill_after}.0/24")
    try:
        kill_apply_after(env, kill_after)
        resumed = apply(env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        with journal_of(fleet) as journal:
            assert {s for s, _ in journal.states().values()} == {"ready"}
            seqs = [e.seq for e in journal.events()]
        assert seqs == list(range(1, len(seqs) + 1)), "the event log has no gaps"
        assert all(n <= 1 for n in boots(fleet).values()), boots(fleet)
    finally:
        fleet.down()


def test_ctrl_c_ends_apply_at_once_saying_where_it_was(tmp_path: Path) -> None:
    """Also when apply was started with SIGINT ignored, as a shell starts a script's
    background job (the wizard's Cancel signals it so: it must still hear it)."""
    fleet, env = start_lab(tmp_path, "127.79.202.0/24")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "wizard.cli", "apply", EXAMPLE, "--lab", "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        assert process.stdout is not None
        for line in process.stdout:
            if '"installing"' in line:  # power cycled, installs under way
                process.send_signal(signal.SIGINT)
                break
        _, err = process.communicate(timeout=10)
        assert process.returncode == 130, err
        assert err.splitlines()[-1].startswith("apply: interrupted with "), err
        assert f"every step done is in {fleet.directory}/apply/lab/journal.db" in err
        assert "Traceback" not in err
        resumed = apply(env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert all(n <= 1 for n in boots(fleet).values()), boots(fleet)
    finally:
        fleet.down()


@pytest.mark.parametrize(("where", "network"), [("journal", "127.79.200.0/24"),
                                                ("state", "127.79.201.0/24")])
def test_a_full_disk_ends_apply_with_one_line_naming_the_path(tmp_path: Path, where: str,
                                                              network: str) -> None:
    """A real full disk (a 256 KiB tmpfs) under the journal alone (the PXE tree has a disk
    of its own) or under the whole state directory: exit 1, one line, no traceback."""
    fleet, env = start_lab(tmp_path, network)
    try:
        with small_disk(tmp_path / "state", "256k") as state, contextlib.ExitStack() as more:
            if where == "journal":
                more.enter_context(small_disk(state / "pxe", "64m"))
            done = apply(env, "--state", str(state))
    finally:
        fleet.down()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    if where == "journal":
        assert last == (f"apply: cannot write the journal {state / 'journal.db'}: database "
                        "or disk is full")
    else:
        assert last.startswith("apply: ") and str(state) in last, done.stderr
        assert "No space left on device" in last or "disk is full" in last, last
