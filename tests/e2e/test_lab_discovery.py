"""As an operator would: lab up, discover it, put the nodes in an answers file, power them,
lab down — through the installed crowbar-wizard command."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bmc_relay import hanging_logins
from wizard.answers import Node, save
from wizard.answers.starter import starter_answers
from wizard.base.secrets import Secret
from wizard.lab.control import Lab
from wizard.lab.goiardi import find_goiardi
from wizard.network import Network

NETWORK = "127.78.0.0/22"
pytestmark = pytest.mark.slow


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    script = shutil.which("crowbar-wizard", path=str(Path(sys.executable).parent))
    return subprocess.run([script, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_lab_up_discover_power_down(tmp_path: Path) -> None:
    env = {**os.environ, "CROWBAR_LAB_DIR": str(tmp_path / "lab")}
    up = cli(env, "lab", "up", "--nodes", "20", "--seed", "3", "--network", NETWORK)
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout.startswith("lab up: 20 BMCs on 127.78.0.1-127.78.0.20 port ")
        again = cli(env, "lab", "up", "--nodes", "2", "--network", NETWORK)
        assert again.returncode == 1 and "already up (20 BMCs" in again.stderr

        found = cli(env, "discover", "--lab")
        assert found.returncode == 0, found.stderr
        assert found.stdout.count(": found ") == 20
        assert "20 found, 0 refused the credentials, 0 unreachable" in found.stdout

        status = json.loads(cli(env, "lab", "status", "--json").stdout)
        assert status["running"] and len(status["bmcs"]) == 20
        port = status["bmcs"][0]["port"]
        spec = Lab(tmp_path / "lab").spec()
        bmcs = [{"node": "d" + b.hardware.nic_macs[0].replace(":", "-"), "address": b.address,
                 "nic_macs": b.hardware.nic_macs} for b in spec.bmcs]
        for bmc in bmcs:
            assert f"{bmc['address']}: found " in found.stdout
            assert f"-> {bmc['node']}" in found.stdout

        answers = tmp_path / "site.yaml"
        _answers_from(bmcs, answers, port)
        env["LAB_BMC_PASSWORD"] = "crowbar-lab"
        on = cli(env, "power", "--all", "on", str(answers))
        assert on.returncode == 0, on.stderr
        assert sorted(on.stdout.splitlines()) == sorted(f"{e['node']}: on" for e in bmcs)
        one = cli(env, "power", bmcs[0]["node"], "status", str(answers))
        assert one.stdout == f"{bmcs[0]['node']}: on\n"
        status = json.loads(cli(env, "lab", "status", "--json").stdout)
        assert {b["power"] for b in status["bmcs"]} == {"on"}
    finally:
        down = cli(env, "lab", "down")
    assert down.stdout.startswith("lab down: the BMC fleet, its node agents and the Chef server")
    assert not (tmp_path / "lab").exists()
    assert not _processes_mentioning(f"wizard.lab.fleet {tmp_path}")


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (read from /proc: no procps needed)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def _answers_from(bmcs: list[dict], path: Path, port: int) -> None:
    answers = starter_answers("10.20.0.0/16", 20)
    del answers.networks["bmc_vlan"]
    answers.networks["bmc"] = Network(conduit="bmc", subnet=NETWORK,
                                      ranges={"host": "127.78.0.1-127.78.0.100"},
                                      node_addresses="all")
    answers.discovery.bmc_ranges = ["127.78.0.1-127.78.0.100"]
    answers.bmc.username, answers.bmc.port = "crowbar", port
    answers.bmc.password = Secret("env:LAB_BMC_PASSWORD")
    answers.nodes = [Node(name=e["node"], macs=e["nic_macs"], bmc_address=e["address"])
                     for e in bmcs]
    save(answers, path)


# -- refusals, silence and Ctrl-C -------------------------------------------------------------

SMALL_NETWORK = "127.81.0.0/24"  # away from the lab above and a developer's own


@pytest.fixture(scope="module")
def small_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Three BMCs, the third silent; the environment to run crowbar-wizard against it."""
    env = {**os.environ, "CROWBAR_LAB_DIR": str(tmp_path_factory.mktemp("lab") / "lab"),
           "CROWBAR_BMC_PASSWORD": "crowbar-lab"}
    up = cli(env, "lab", "up", "--nodes", "3", "--network", SMALL_NETWORK, "--fault", "2:silent")
    assert up.returncode == 0, up.stderr
    try:
        yield env
    finally:
        cli(env, "lab", "down")


def test_a_wrong_user_is_refused_not_unreachable_and_discover_fails(
        small_lab: dict[str, str]) -> None:
    start = time.monotonic()
    found = cli(small_lab, "discover", "--range", "127.81.0.1-127.81.0.2", "--user", "root",
                "--timeout", "5")
    assert found.returncode == 1, found.stdout + found.stderr
    assert found.stdout.splitlines() == [
        "127.81.0.1: auth failed: the BMC refused the user name or password",
        "127.81.0.2: auth failed: the BMC refused the user name or password",
        found.stdout.splitlines()[-1]]
    assert ": 0 found, 2 refused the credentials, 0 unreachable" in found.stdout
    assert time.monotonic() - start < 5 + 10  # well before a login's own retries run out


def test_good_and_silent_bmcs_each_reported(small_lab: dict[str, str]) -> None:
    found = cli(small_lab, "discover", "--range", "127.81.0.0/29", "--user", "crowbar",
                "--json", "--timeout", "1")  # .1-.6: two BMCs, a silent one, no BMC at all
    assert found.returncode == 0, found.stderr
    events = [json.loads(line) for line in found.stdout.splitlines()]
    outcomes = {e["address"]: e["outcome"] for e in events if e["event"] == "bmc"}
    assert outcomes == {"127.81.0.1": "found", "127.81.0.2": "found"} | {
        f"127.81.0.{n}": "unreachable" for n in range(3, 7)}
    assert events[-1] | {"seconds": 0} == {
        "event": "summary", "addresses": 6, "seconds": 0, "found": 2, "duplicate": 0,
        "auth_failed": 0, "unreachable": 4, "unsupported": 0, "bmc_error": 0}


def test_one_address_is_a_range(small_lab: dict[str, str]) -> None:
    found = cli(small_lab, "discover", "--range", "127.81.0.1", "--user", "crowbar")
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("127.81.0.1: found ")
    assert "swept 1 addresses" in found.stdout


def test_ctrl_c_stops_a_sweep_at_once_with_what_it_found(small_lab: dict[str, str]) -> None:
    script = shutil.which("crowbar-wizard", path=str(Path(sys.executable).parent))
    sweep = subprocess.Popen(  # the silent BMC keeps it pinging for a minute
        [script, "discover", "--range", "127.81.0.1-127.81.0.3", "--user", "crowbar",
         "--timeout", "60"], env=small_lab, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=_default_sigint)
    with _killed_on_failure(sweep):
        lines = [sweep.stdout.readline(), sweep.stdout.readline()]
        assert all(": found " in line for line in lines), lines
        out, err = _interrupt(sweep, timeout=10)
    assert sweep.returncode == 130, err
    assert "interrupted after 2 of 3 addresses in " in out
    assert ": 2 found, 0 refused the credentials, 0 unreachable" in out
    assert "Traceback" not in err


def test_ctrl_c_stops_a_sweep_whose_login_hangs(small_lab: dict[str, str]) -> None:
    script = shutil.which("crowbar-wizard", path=str(Path(sys.executable).parent))
    bmc = Lab(Path(small_lab["CROWBAR_LAB_DIR"])).spec().bmcs[0]
    with hanging_logins((bmc.address, bmc.port)) as relay:
        sweep = subprocess.Popen(
            [script, "discover", "--range", "127.0.0.1-127.0.0.1", "--port", str(relay.port),
             "--user", "crowbar"], env=small_lab, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, preexec_fn=_default_sigint)
        with _killed_on_failure(sweep):
            assert relay.login_started.wait(30)
            out, err = _interrupt(sweep, timeout=10)
    assert sweep.returncode == 130, err
    assert out.startswith("interrupted after 0 of 1 addresses in "), out
    assert "Traceback" not in err


def test_discover_into_head_ends_quietly(small_lab: dict[str, str]) -> None:
    script = shutil.which("crowbar-wizard", path=str(Path(sys.executable).parent))
    # the silent BMCs' lines come after head has left; the lab's answer its ping within
    # 10 s even on a loaded machine (2 s once was not: CI with a core taken)
    piped = subprocess.run(
        ["bash", "-c", f"{script} discover --range 127.81.0.0/29 --user crowbar --json "
         "--timeout 10 | head -1; exit ${PIPESTATUS[0]}"],
        env=small_lab, capture_output=True, text=True, timeout=60, check=False)
    assert piped.returncode == 141  # as a shell reports a tool that SIGPIPE ended
    assert json.loads(piped.stdout)["outcome"] == "found"
    assert piped.stderr == ""


def test_ctrl_c_while_the_lab_starts_leaves_nothing_running(tmp_path: Path) -> None:
    if find_goiardi() is None:
        pytest.skip("goiardi is not installed (./dev deps installs it)")
    directory = tmp_path / "lab"
    script = shutil.which("crowbar-wizard", path=str(Path(sys.executable).parent))
    up = subprocess.Popen(
        [script, "lab", "up", "--nodes", "3", "--network", "127.81.1.0/24"],
        env={**os.environ, "CROWBAR_LAB_DIR": str(directory)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    with _killed_on_failure(up):
        log = directory / "chef" / "goiardi.log"
        while not log.exists():  # the BMCs are up, the Chef server starting
            assert up.poll() is None, up.communicate()
            time.sleep(0.01)
        _, err = _interrupt(up, timeout=20)
    assert up.returncode == 130, err
    assert err == "lab up: interrupted: what it had started is stopped\n"
    assert not directory.exists()
    assert not _processes_mentioning(str(directory))


def _interrupt(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """Ctrl-C to ``process``; what it printed by the time it ended (within ``timeout``)."""
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=timeout)


@contextlib.contextmanager
def _killed_on_failure(process: subprocess.Popen[str]) -> Iterator[None]:
    """``process`` is gone after the block, also when an assertion in it failed."""
    try:
        yield
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _default_sigint() -> None:
    """A child whose parent ignores SIGINT (nohup, some CI) would ignore it too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
