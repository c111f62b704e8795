"""``--lab`` on the commands that talk to the lab, against a real lab: its fake BMCs (real
IPMI over LAN) and goiardi (the real Chef API). The answers file says nothing of the lab:
addresses, port, credentials and Chef server all come from the lab itself."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard.answers import Node, Proposal, load, save
from wizard.catalog import default_catalog
from wizard.chef.api import ChefServer
from wizard.chef.objects import render
from wizard.chef.push import targets
from wizard.lab.control import Lab, stop_group
from wizard.lab.fleet import read_states
from wizard.lab.goiardi import find_goiardi

pytestmark = pytest.mark.slow

EXAMPLE = str(Path("answers/examples/lab-small.yaml").resolve())
NODES = 6


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Lab, dict[str, str]]]:
    if find_goiardi() is None:
        if os.environ.get("CI"):
            pytest.fail("goiardi is not installed (./dev deps installs it)")
        pytest.skip("goiardi is not installed (./dev deps installs it)")
    directory = tmp_path / "lab"
    env = os.environ | {"CROWBAR_LAB_DIR": str(directory),
                        "CROWBAR_STATE_DIR": str(tmp_path / "state")}
    env.pop("CROWBAR_KEYSTONE_PASSWORD", None)  # the lab makes one up
    env.pop("CROWBAR_BMC_PASSWORD", None)  # the lab's own is used
    lab = Lab(directory)
    lab.up(NODES, seed=9, network="127.79.70.0/24")
    try:
        yield lab, env
    finally:
        lab.down()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def power_of(lab: Lab) -> list[str]:
    """Each lab server's power, by index, as its fake BMC recorded it."""
    spec = lab.spec()
    assert spec is not None
    states = read_states(lab.directory)
    return [states[bmc.address]["state"]["power"] for bmc in spec.bmcs]


def test_lab_status_shows_the_chef_server_and_where_its_key_is(
        lab: tuple[Lab, dict[str, str]]) -> None:
    fleet, env = lab
    chef = fleet.chef()
    assert chef is not None
    key = fleet.chef_directory / "admin.pem"
    text = cli(env, "lab", "status")
    assert text.returncode == 0, text.stderr
    assert f"Chef server (goiardi) at {chef.url}, client admin, key {key}" in text.stdout
    shown = cli(env, "lab", "status", "--json")
    assert json.loads(shown.stdout)["chef"] == {"url": chef.url, "client": "admin",
                                                "key": str(key)}
    assert [b["index"] for b in json.loads(shown.stdout)["bmcs"]] == list(range(NODES))
    assert "PRIVATE KEY" not in text.stdout + shown.stdout


def test_chef_push_lab_pushes_to_the_labs_goiardi(lab: tuple[Lab, dict[str, str]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fleet, env = lab
    chef = fleet.chef()
    assert chef is not None
    catalog = default_catalog()
    barclamps = list(load(EXAMPLE).barclamps)
    shipped = {c.name for name in barclamps for c in catalog.entries[name].cookbooks}
    assert {"ntp", "dns", "logging", "provisioner"} <= shipped
    # the upstream cookbooks the lab cannot fetch: it writes stand-ins (wizard.lab.upstream)
    upstream = set(catalog.upstream(catalog.closure(barclamps)))
    assert {"openstack-compute", "memcached"} <= upstream
    shipped |= upstream
    # the objects: the environment, a role per Chef role, a node per node, a data bag item
    # per barclamp (secrets do not change how many)
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "a-made-up-lab-value")
    answers = load(EXAMPLE)
    objects = len(targets(render(answers, catalog), answers.site.name))
    first = cli(env, "chef", "push", EXAMPLE, "--lab")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(
        f"pushing {len(shipped)} cookbooks and {objects} objects to {chef.url} as admin\n")
    assert f"cookbooks: {len(shipped)} created, 0 updated, 0 unchanged" in first.stdout
    assert f"{objects} created, 0 updated, 0 unchanged" in first.stdout
    again = cli(env, "chef", "push", EXAMPLE, "--lab")
    assert again.returncode == 0, again.stderr
    assert f"cookbooks: 0 created, 0 updated, {len(shipped)} unchanged" in again.stdout
    assert (f"nothing changed: all {len(shipped)} cookbooks and {objects} objects were already on "
            "the server") in again.stdout

    async def environment() -> dict | None:
        async with ChefServer(chef.url, "admin", chef.admin_key) as server:
            return await server.get("environments", "lab")
    pushed = asyncio.run(environment())
    assert pushed is not None
    # the lab's provisioner, as apply --lab serves it: a push then an apply agree
    port = int((fleet.directory / "provisioner.port").read_text())
    assert pushed["default_attributes"]["provisioner"]["web_port"] == port


def test_chef_push_lab_without_the_labs_chef_server_says_so(
        lab: tuple[Lab, dict[str, str]]) -> None:
    fleet, env = lab
    stop_group(fleet.chef_directory / "goiardi.pid")  # goiardi died; the lab goes on
    refused = cli(env, "chef", "push", EXAMPLE, "--lab")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == ("chef push --lab: the lab has no Chef server (its goiardi is "
                              "not running: `crowbar-wizard lab down`, then `lab up`)\n")
    assert "no Chef server (its goiardi is not running" in cli(env, "lab", "status").stdout


def test_power_lab_acts_on_lab_server_i_for_node_i(lab: tuple[Lab, dict[str, str]]) -> None:
    """ctl-1 is the example's first node: lab server 0; compute-2 its third: server 2."""
    fleet, env = lab
    assert power_of(fleet) == ["off"] * NODES
    on = cli(env, "power", "ctl-1", "on", EXAMPLE, "--lab")
    assert (on.returncode, on.stdout) == (0, "ctl-1: on\n"), on.stderr
    assert cli(env, "power", "--lab", "compute-2", "on", EXAMPLE).returncode == 0
    assert power_of(fleet) == ["on", "off", "on", "off", "off", "off"]
    every = cli(env, "power", "--all", "status", EXAMPLE, "--lab")
    assert every.returncode == 0, every.stderr
    assert sorted(every.stdout.splitlines()) == [
        "compute-1: off", "compute-2: on", "compute-3: off", "ctl-1: on", "storage-1: off",
        "storage-2: off"]
    spec = fleet.spec()
    assert spec is not None
    if shutil.which("ipmitool"):  # the same BMC, asked by another IPMI implementation
        first = spec.bmcs[0]
        seen = subprocess.run(
            ["ipmitool", "-I", "lanplus", "-C", "3", "-H", first.address, "-p",
             str(first.port), "-U", spec.username, "-P", spec.password, "power", "status"],
            capture_output=True, text=True, timeout=30, check=True)
        assert seen.stdout.strip() == "Chassis Power is on"


def test_a_new_file_deploys_on_the_lab_once_it_has_nodes_and_a_provisioner(
        lab: tuple[Lab, dict[str, str]], tmp_path: Path) -> None:
    """What the message for a fresh ``new`` file asks for is enough: nodes, ``provisioner:
    {}``, ``allocate``; then ``apply --lab`` takes every node to ready."""
    _, env = lab
    made = tmp_path / "site.yaml"
    assert cli(env, "new", "--supernet", "10.20.0.0/16", "--nodes", str(NODES),
               "-o", str(made)).returncode == 0
    refused = cli(env, "apply", str(made), "--lab")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    answers = load(made)
    answers.nodes = [Node(name=f"node-{i}", macs=[f"52:54:00:00:30:{i:02x}"],
                          bmc_address=f"10.20.1.{130 + i}") for i in range(NODES)]
    answers.barclamps = {"provisioner": Proposal()}
    save(answers, made)
    allocated = cli(env, "allocate", str(made))
    assert allocated.returncode == 0, allocated.stderr
    done = cli(env, "apply", str(made), "--lab")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"all {NODES} nodes ready")
