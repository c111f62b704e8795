"""As an operator would: lab up, discover it, put the nodes in an answers file, power them,
lab down — through the installed crowbar-wizard command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wizard.answers import Node, save
from wizard.lab.control import Lab
from wizard.network import Network
from wizard.secrets import Secret
from wizard.starter import starter_answers

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
