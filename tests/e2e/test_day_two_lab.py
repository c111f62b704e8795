"""Day two on the lab: change a deployed site, grow it, shrink it, reinstall a node, each
change reaching only what it changes (the journal proves it).

What stands in: chef-client, as in test_converge_lab.py (each lab server plays its part over
the real Chef API against goiardi, and does not execute recipes).
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_apply_lab import EXAMPLE, journal_of
from tests.e2e.test_converge_lab import assert_crowbar_order, chef_nodes
from wizard.answers import load, to_data
from wizard.chef.api import ChefServer
from wizard.engine.journal import Event
from wizard.lab.control import Lab
from wizard.lab.fleet import read_states
from wizard.provisioning.dnsmasq import Dnsmasq, find_dnsmasq

pytestmark = pytest.mark.slow
DOMAIN = "lab.crowbar.test"


class Site:
    """A lab of ``servers`` servers and a copy of the lab example to change."""

    def __init__(self, tmp_path: Path, network: str, servers: int = 8):
        self.lab = Lab(tmp_path / "lab")
        self.env = {**os.environ, "CROWBAR_LAB_DIR": str(self.lab.directory)}
        self.env.pop("CROWBAR_KEYSTONE_PASSWORD", None)  # the lab makes one up
        self.answers = tmp_path / "lab-small.yaml"
        self.answers.write_text(Path(EXAMPLE).read_text())
        self.lab.up(servers, seed=3, network=network)

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wizard.cli", *argv], env=self.env,
                              capture_output=True, text=True, timeout=300)

    def apply(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("apply", str(self.answers), "--lab", *extra)

    def data(self) -> dict[str, Any]:
        return copy.deepcopy(to_data(load(self.answers)))

    def write(self, data: dict[str, Any]) -> None:
        self.answers.write_text(yaml.safe_dump(data, sort_keys=False))

    def events(self) -> list[Event]:
        with journal_of(self.lab) as journal:
            return journal.events()

    def states(self) -> dict[str, str]:
        with journal_of(self.lab) as journal:
            return {node: state for node, (state, _) in journal.states().items()}

    def bmc(self, node: str) -> str:
        with journal_of(self.lab) as journal:
            record = journal.step(node, "bmc-boot-network")
        assert record is not None and record.detail
        return record.detail.rpartition(":")[0]

    def server(self, node: str) -> dict[str, Any]:
        return read_states(self.lab.directory)[self.bmc(node)]["state"]


def touched(events: list[Event], after: int) -> set[str]:
    """Nodes with any step or state change after event ``after``."""
    return {e.node for e in events if e.seq > after and e.node and e.node != "*"
            and e.kind in ("step-started", "transition", "forgot")}


def last_seq(site: Site) -> int:
    return site.events()[-1].seq


def client_key(lab: Lab, fqdn: str) -> str | None:
    chef = lab.chef()
    assert chef is not None

    async def read() -> str | None:
        async with ChefServer(chef.url, chef.client, chef.admin_key) as server:
            found = await server.get("clients", fqdn)
            return None if found is None else str(found.get("public_key"))
    return asyncio.run(read())


def test_change_grow_shrink_and_reinstall_reach_only_what_they_change(tmp_path: Path) -> None:
    site = Site(tmp_path, "127.78.4.0/24")
    try:
        done = site.apply()
        assert done.returncode == 0, done.stdout + done.stderr

        # a ready node gets a new role: it converges it, and cinder's other nodes again
        # (cinder lists its volume hosts); nodes holding no cinder role see nothing
        data = site.data()
        data["barclamps"]["cinder"]["roles"]["cinder-volume"].append("compute-1")
        site.write(data)
        plan = site.apply("--dry-run")
        assert plan.returncode == 0, plan.stderr
        assert "  compute-1: run list +role[cinder-volume]" in plan.stdout.splitlines()
        assert "compute-2" not in plan.stdout and "compute-3" not in plan.stdout
        mark = last_seq(site)
        done = site.apply()
        assert done.returncode == 0, done.stdout + done.stderr
        assert touched(site.events(), mark) == {"compute-1", "ctl-1", "storage-1",
                                                "storage-2"}
        assert "role[cinder-volume]" in chef_nodes(site.lab)[f"compute-1.{DOMAIN}"][
            "run_list"]
        assert_crowbar_order([e for e in site.events() if e.seq > mark])

        # a barclamp attribute: the nodes of its roles converge again, no other
        data = site.data()
        data["barclamps"]["swift"]["attributes"]["replicas"] = 3
        site.write(data)
        plan = site.apply("--dry-run")
        assert "  swift: replicas 2 → 3" in plan.stdout.splitlines(), plan.stdout
        mark = last_seq(site)
        done = site.apply()
        assert done.returncode == 0, done.stdout + done.stderr
        assert touched(site.events(), mark) == {"ctl-1", "storage-1", "storage-2"}

        # two nodes more: they deploy; the others see no step but where a list of hosts
        # names them (the DNS zone on the admin node, Nova's controller)
        data = site.data()
        for number in (4, 5):
            extra = copy.deepcopy(next(n for n in data["nodes"] if n["name"] == "compute-3"))
            extra.update(name=f"compute-{number}", bmc_address=f"192.168.124.{170 + number}",
                         macs=[f"52:54:00:00:4{number}:0{i}" for i in range(2)])
            extra.get("hardware", {}).update(serial=f"SNCMP000{number}")
            data["nodes"].append(extra)
            data["barclamps"]["nova"]["roles"]["nova-compute-kvm"].append(f"compute-{number}")
        site.write(data)
        plan = site.apply("--dry-run")
        assert "  compute-4: add: install its OS, then converge" in plan.stdout, plan.stderr
        mark = last_seq(site)
        done = site.apply()
        assert done.returncode == 0, done.stdout + done.stderr
        assert touched(site.events(), mark) == {"compute-4", "compute-5", "admin", "ctl-1"}
        assert site.states()["compute-5"] == "ready"
        assert site.server("compute-1")["power_cycles"] + site.server("compute-1")[
            "power_ons"] == 1, "a node deployed before is not power-cycled again"

        # release compute-5: off, unreserved, out of Chef; nothing else touched
        macs = [m for n in site.data()["nodes"] if n["name"] == "compute-5" for m in n["macs"]]
        bmc = site.bmc("compute-5")  # its journal steps go with the release
        mark = last_seq(site)
        done = site.run("node", "release", "compute-5", str(site.answers), "--lab")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "released compute-5" in done.stdout
        assert site.states()["compute-5"] == "released"
        assert touched(site.events(), mark) <= {"compute-5", "admin", "ctl-1"}
        assert read_states(site.lab.directory)[bmc]["state"]["power"] == "off"
        assert "compute-5" not in [n["name"] for n in site.data()["nodes"]]
        assert f"compute-5.{DOMAIN}" not in chef_nodes(site.lab)
        assert client_key(site.lab, f"compute-5.{DOMAIN}") is None
        pxe = site.lab.directory / "apply" / "lab" / "pxe"
        if find_dnsmasq() is not None:
            assert "compute-5" not in Dnsmasq(pxe / "dnsmasq").hosts.read_text()
            assert "compute-4" in Dnsmasq(pxe / "dnsmasq").hosts.read_text()
        assert not any((pxe / "http" / "boot" / f"{mac}.ipxe").exists() for mac in macs)

        # reinstall compute-4: power-cycled once, a new client key, ready; no other node
        boots_before = site.server("compute-4")["power_cycles"]
        key_before = client_key(site.lab, f"compute-4.{DOMAIN}")
        mark = last_seq(site)
        done = site.run("node", "reinstall", "compute-4", str(site.answers), "--lab")
        assert done.returncode == 0, done.stdout + done.stderr
        assert site.server("compute-4")["power_cycles"] == boots_before + 1
        assert client_key(site.lab, f"compute-4.{DOMAIN}") not in (None, key_before)
        assert site.states()["compute-4"] == "ready"
        assert touched(site.events(), mark) == {"compute-4"}
        again = site.apply("--dry-run")
        assert again.stdout.strip() == "nothing to do: every step is done and every node ready"
    finally:
        site.lab.down()


def test_servers_racked_during_a_deploy_join_on_their_own_hardware(tmp_path: Path) -> None:
    """``lab rack 2`` while the lab example deploys on 6 servers: the deploy goes on to
    ready, no server of it power-cycled again; then the second racked server, added as a
    sweep adds it (its NICs, no BMC address), deploys on that very server (not on the
    first unused one), and only the hosts lists that name it converge again."""
    site = Site(tmp_path, "127.78.7.0/24", servers=6)
    try:
        deploy = subprocess.Popen(
            [sys.executable, "-m", "wizard.cli", "apply", str(site.answers), "--lab", "--json"],
            env=site.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert deploy.stdout is not None
        try:
            for line in deploy.stdout:  # racked once the first node installs
                if "hardware-installing" in line:
                    break
            racked = site.run("lab", "rack", "2")
            deploy.communicate(timeout=300)
        finally:
            if deploy.poll() is None:
                deploy.kill()
        assert racked.returncode == 0, racked.stderr
        assert "lab rack: 2 servers more" in racked.stdout
        assert deploy.returncode == 0
        assert set(site.states().values()) == {"ready"}
        cycles = {n: site.server(n)["power_cycles"] + site.server(n)["power_ons"]
                  for n in site.states() if n != "admin"}
        assert set(cycles.values()) == {1}, cycles

        spec = site.lab.spec()
        assert spec is not None and len(spec.bmcs) == 8
        joining = spec.bmcs[7]
        data = site.data()
        like = next(n for n in data["nodes"] if n["name"] == "compute-3")
        data["nodes"].append({"name": "compute-9", "macs": joining.hardware.nic_macs,
                              "hardware": {**like["hardware"],
                                           "serial": joining.hardware.serial}})
        data["barclamps"]["nova"]["roles"]["nova-compute-kvm"].append("compute-9")
        site.write(data)
        mark = last_seq(site)
        done = site.apply()
        assert done.returncode == 0, done.stdout + done.stderr
        assert site.bmc("compute-9") == joining.address
        assert site.states()["compute-9"] == "ready"
        assert touched(site.events(), mark) == {"compute-9", "admin", "ctl-1"}
        assert read_states(site.lab.directory)[spec.bmcs[6].address]["state"][
            "power_cycles"] == 0, "the first racked server is left as it was"
    finally:
        site.lab.down()


@pytest.mark.parametrize("kill_after", [4, 12, 24])
def test_a_change_killed_midway_resumes_without_doing_anything_twice(tmp_path: Path,
                                                                    kill_after: int) -> None:
    """SIGKILL after the Nth --json event of a change (compute-1 gains a role, compute-3 is
    released), then apply again: the change completes; no role converged twice on a node,
    no release step done twice, nothing left half-released."""
    site = Site(tmp_path, f"127.78.{50 + kill_after}.0/24", servers=6)
    try:
        done = site.apply()
        assert done.returncode == 0, done.stdout + done.stderr
        bmc = site.bmc("compute-3")
        data = site.data()
        data["barclamps"]["cinder"]["roles"]["cinder-volume"].append("compute-1")
        data["nodes"] = [n for n in data["nodes"] if n["name"] != "compute-3"]
        kvm = data["barclamps"]["nova"]["roles"]["nova-compute-kvm"]
        kvm.remove("compute-3")
        site.write(data)
        mark = last_seq(site)
        process = subprocess.Popen(
            [sys.executable, "-m", "wizard.cli", "apply", str(site.answers), "--lab", "--json"],
            env=site.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert process.stdout is not None
        for seen, _line in enumerate(process.stdout, 1):
            if seen == kill_after:
                process.send_signal(signal.SIGKILL)
                break
        assert process.wait(60) == -signal.SIGKILL, "apply ended before the kill point"
        resumed = site.apply()
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        states = site.states()
        assert states.pop("compute-3") == "released"
        assert set(states.values()) == {"ready"}
        events = [e for e in site.events() if e.seq > mark]
        finished = [(e.node, e.step) for e in events if e.kind == "step-finished"
                    and e.node != "*"]
        assert len(finished) == len(set(finished)), f"a step done twice: {finished}"
        assert read_states(site.lab.directory)[bmc]["state"]["power"] == "off"
        assert f"compute-3.{DOMAIN}" not in chef_nodes(site.lab)
        assert client_key(site.lab, f"compute-3.{DOMAIN}") is None
        assert "role[cinder-volume]" in chef_nodes(site.lab)[f"compute-1.{DOMAIN}"][
            "run_list"]
        assert_crowbar_order(events)
    finally:
        site.lab.down()


def test_a_forced_release_leaves_the_roles_short_and_touches_no_other_node(
        tmp_path: Path) -> None:
    """ctl-1 holds every OpenStack server role: its release is refused, then forced. Only
    ctl-1 is released (no Chef object pushed, no other node's step); the answers lose it,
    and say which roles need a node before the next apply, which refuses them until then."""
    site = Site(tmp_path, "127.78.5.0/24", servers=6)
    try:
        done = site.apply()
        assert done.returncode == 0, done.stdout + done.stderr
        before = site.answers.read_text()
        refused = site.run("node", "release", "ctl-1", str(site.answers), "--lab")
        assert refused.returncode == 2 and site.answers.read_text() == before
        mark = last_seq(site)
        forced = site.run("node", "release", "ctl-1", str(site.answers), "--lab", "--force")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert "needs a node for: database role database-server needs at least 1 node" in \
            forced.stderr
        events = [e for e in site.events() if e.seq > mark]
        assert {e.node for e in events if e.node and e.node != "*"} == {"ctl-1"}
        assert not [e for e in events if e.node == "*" and (e.step or "").startswith("chef:")]
        assert site.states()["ctl-1"] == "released"
        assert f"ctl-1.{DOMAIN}" not in chef_nodes(site.lab)
        again = site.apply("--dry-run")
        assert again.returncode == 2 and "keystone-server needs at least 1 node" in again.stderr
    finally:
        site.lab.down()
