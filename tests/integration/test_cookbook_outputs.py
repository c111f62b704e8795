"""Every file the shipped cookbooks write passes its own daemon's check, rendered from what a
deployment really pushes to a real Chef server (goiardi, authentication on).

What stands in for chef-client, and why: no Chef client package exists in any registry
these machines reach, so no recipe can run here. ``tests/chef_recorder.rb`` stands in: real
Ruby evaluates each cookbook's attribute files and the recipes of the node's run list,
records every resource, and renders every template with Ruby's own ERB and the variables
the recipe passes. It runs no provider and no guard (only_if/not_if and notifications are
recorded, not run), and the few commands a recipe runs while compiling (lsblk) answer from
a canned output given below. The node's attributes are what goiardi serves after a push:
the environment's and its roles' default attributes and its own normal attributes, merged
in Chef's precedence; its automatic (ohai) attributes are made from the answers' OS.

Each rendered file is written at its path under a scratch root and checked by the real
tool: ``chronyd -p -f`` (chrony unpacked from its .deb, not installed: it would replace the
machine's time daemon), ``rsyslogd -N1 -f``, ``logrotate -d``, ``named-checkconf -z``
(which loads the zone too) and ``named-checkzone``, ``apt-get update --print-uris`` on the
sources alone, ``ssh-keygen -l -f``. A file with no checker of its own is listed in
``UNCHECKED`` with the reason. Every node, the admin node too, lists its roles in
``/etc/crowbar/roles`` (deployer::client), in its run list's order.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.debian_tools import unpacked
from tests.integration.conftest import need
from wizard.answers import OS_FAMILIES, Answers, load
from wizard.answers.proposals import Proposal
from wizard.catalog import default_catalog
from wizard.catalog.cookbooks import run_list_recipe
from wizard.chef.api import ChefServer
from wizard.chef.cookbooks import site_cookbooks
from wizard.chef.objects import DATA_BAG, render
from wizard.chef.push import push
from wizard.chef.starters import admin_ssh_key
from wizard.lab.goiardi import Goiardi
from wizard.provisioning.site import ProvisionerSite

pytestmark = pytest.mark.slow

RECORDER = Path(__file__).parents[1] / "chef_recorder.rb"
EXAMPLES = ["lab-small", "hadoop"]  # Ubuntu and Rocky: both platform families' paths
UNCHECKED = {
    "/etc/resolv.conf": "resolv.conf has no checker (glibc reads what it can)",
    "/etc/systemd/resolved.conf.d/crowbar.conf": "systemd-resolved has no config check",
    "/etc/cloudera-scm-agent/config.ini": "the agent is not packaged for Debian",
}
LSBLK = {"blockdevices": [
    {"name": "/dev/vda", "type": "disk", "fstype": None, "label": None, "mountpoint": None,
     "children": [{"name": "/dev/vda1", "type": "part", "fstype": "ext4", "label": None,
                   "mountpoint": "/"}]},
    {"name": "/dev/vdb", "type": "disk", "fstype": "ext4", "label": "hdfs0",
     "mountpoint": "/grid/0"},
    {"name": "/dev/vdc", "type": "disk", "fstype": None, "label": None, "mountpoint": None},
]}
"""A data node's disks: the OS disk, one data disk prepared before, one blank disk."""


def admin(server: Goiardi) -> ChefServer:
    return ChefServer(server.url, "admin", server.admin_key.read_text())


async def served(server: Goiardi, answers: Answers, admin_ssh_key: str | None = None
                 ) -> tuple[dict, dict, dict, dict]:
    """Push the deployment, then read back what a node's chef-client would be served."""
    catalog = default_catalog()
    objects = render(answers, catalog, site_cookbooks(catalog, answers.barclamps),
                     admin_ssh_key=admin_ssh_key)
    async with admin(server) as chef:
        await push(chef, objects, answers.site.name)
        env = await chef.get("environments", answers.site.name)
        roles = {name: await chef.get("roles", name) for name in objects.roles}
        nodes = {name: await chef.get("nodes", name) for name in objects.nodes}
        items = {item: await chef.get_item(DATA_BAG, item)
                 for item in await chef.list_items(DATA_BAG)}
    return env, roles, nodes, items  # type: ignore[return-value]


def automatic(answers: Answers, fqdn: str) -> dict[str, Any]:
    family, release = OS_FAMILIES[answers.provisioning.os]
    platform = {"ubuntu": "ubuntu", "debian": "debian", "rhel": "rocky"}[family]
    return {"platform": platform, "platform_family": "rhel" if family == "rhel" else "debian",
            "hostname": fqdn.split(".")[0], "fqdn": fqdn, "lsb": {"codename": release}}


def recorded(node_json: Path) -> list[dict[str, Any]]:
    shelves = sorted({str(p.parent.parent) for p in
                      Path("wizard/barclamps").glob("*/cookbooks/*/metadata.rb")})
    result = subprocess.run([need("ruby"), str(RECORDER), str(node_json), *shelves],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    resources: list[dict[str, Any]] = json.loads(result.stdout)
    return resources


def record_node(tmp_path: Path, answers: Answers, served_objects: tuple[dict, dict, dict, dict],
                fqdn: str, cookbooks: set[str], normal: dict[str, Any] | None = None,
                ) -> list[dict[str, Any]]:
    """The resources of the node's run list, for the recipes of ``cookbooks`` only, with
    its served attributes (its normal ones merged with ``normal``); none without any."""
    env, roles, nodes, items = served_objects
    node_roles = [roles[item[len("role["):-1]] for item in nodes[fqdn]["run_list"]]
    run_list = [f"{c}::{r}" for role in node_roles for item in role["run_list"]
                if (found := run_list_recipe(item)) and (c := found[0]) in cookbooks
                and (r := found[1])]
    if not run_list:
        return []
    node_json = tmp_path / f"{fqdn}.json"
    node_json.write_text(json.dumps({
        # chef-client sets the automatic "roles" from the run list it expanded
        "run_list": run_list, "automatic": automatic(answers, fqdn) | {
            "roles": [role["name"] for role in node_roles]},
        "environment": env["default_attributes"],
        "roles": [role["default_attributes"] for role in node_roles],
        "normal": nodes[fqdn]["normal"] | (normal or {}), "data_bags": {DATA_BAG: items},
        "commands": {"lsblk --json --paths --output NAME,TYPE,FSTYPE,LABEL,MOUNTPOINT":
                     json.dumps(LSBLK)},
    }))
    return recorded(node_json)


def run(*command: str) -> str | None:
    """None when ``command`` passes, else what it said."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return None if result.returncode == 0 else f"{command}: {result.stdout}{result.stderr}"


def chrony(root: Path, path: str, _resource: dict[str, Any]) -> str | None:
    return run(str(unpacked("chrony", "/usr/sbin/chronyd")), "-p", "-f", f"{root}{path}")


def rsyslog(root: Path, path: str, _resource: dict[str, Any]) -> str | None:
    return run(need("rsyslogd"), "-N1", "-f", f"{root}{path}")


def logrotate(root: Path, path: str, _resource: dict[str, Any]) -> str | None:
    state = root / "logrotate.state"
    return run(need("logrotate"), "--debug", "--state", str(state), f"{root}{path}")


def named_conf(root: Path, path: str, resource: dict[str, Any]) -> str | None:
    """The whole configuration, zone loaded, chrooted in the scratch root; BIND's working
    directory is there as its package makes it."""
    (root / resource["properties"]["variables"]["directory"].lstrip("/")).mkdir(
        parents=True, exist_ok=True)
    return run(need("named-checkconf"), "-z", "-t", str(root), path)


def zone(root: Path, path: str, resource: dict[str, Any]) -> str | None:
    domain = resource["properties"]["variables"]["domain"]
    return run(need("named-checkzone"), domain, f"{root}{path}")


def apt_sources(root: Path, path: str, _resource: dict[str, Any]) -> str | None:
    state = root / "apt-state"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    return run(need("apt-get"), "-o", "Dir::Etc::SourceList=/dev/null",
               "-o", f"Dir::Etc::SourceParts={root}{Path(path).parent}",
               "-o", f"Dir::State::Lists={state}/lists", "-o", f"Dir::Cache={state}",
               "-o", "Debug::NoLocking=1", "update", "--print-uris")


def authorized_keys(root: Path, path: str, _resource: dict[str, Any]) -> str | None:
    return run(need("ssh-keygen"), "-l", "-f", f"{root}{path}")


CHECKERS: list[tuple[str, Callable[[Path, str, dict[str, Any]], str | None]]] = [
    (r"/chrony(/chrony)?\.conf$", chrony),
    (r"^/etc/rsyslog\.d/.*\.conf$", rsyslog),
    (r"^/etc/logrotate\.d/", logrotate),
    (r"^/etc/(bind/named\.conf\.options|named\.conf)$", named_conf),
    (r"/db\.[^/]+$", zone),
    (r"^/etc/apt/sources\.list\.d/.*\.sources$", apt_sources),
    (r"/\.ssh/authorized_keys$", authorized_keys),
]


def with_an_operator_key(answers: Answers, tmp_path: Path) -> Answers:
    """The example with a real public key for root, so authorized_keys has one to check."""
    key = tmp_path / "operator"
    subprocess.run([need("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "operator",
                    "-f", str(key)], check=True, timeout=60)
    provisioning = answers.provisioning.model_copy(update={
        "ssh_authorized_keys": [(tmp_path / "operator.pub").read_text().strip()]})
    return answers.model_copy(update={"provisioning": provisioning})


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_rendered_file_passes_its_daemons_check(
        goiardi: Goiardi, tmp_path: Path, example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")
    answers = with_an_operator_key(load(f"answers/examples/{example}.yaml"), tmp_path)
    objects = asyncio.run(served(goiardi, answers))
    shipped = {name for name, p in default_catalog().cookbooks().items() if p.shipped}
    checked: dict[str, set[str]] = {}
    for fqdn in sorted(objects[2]):
        resources = record_node(tmp_path, answers, objects, fqdn, shipped)
        [roles] = [r for r in resources if r["name"] == "/etc/crowbar/roles"]
        assert [line for line in roles["properties"]["content"].splitlines()
                if not line.startswith("#")] == [
            item[len("role["):-1] for item in objects[2][fqdn]["run_list"]], fqdn
        templates = [r for r in resources if r["type"] == "template"]
        root = tmp_path / "root" / fqdn
        for resource in templates:  # all written first: a check may read another file
            target = root / resource["name"].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(resource["rendered"])
        for resource in templates:
            path = resource["name"]
            if path in UNCHECKED:
                continue
            checker = next((c for pattern, c in CHECKERS if re.search(pattern, path)), None)
            assert checker is not None, f"{path} ({resource['cookbook']}) has no checker"
            problem = checker(root, path, resource)
            assert problem is None, f"{fqdn}: {path}: {problem}"
            checked.setdefault(resource["cookbook"], set()).add(checker.__name__)
    family = OS_FAMILIES[answers.provisioning.os][0]
    expected = {"ntp": {"chrony"}, "logging": {"rsyslog", "logrotate"},
                "dns": {"named_conf", "zone"}, "provisioner": {"authorized_keys"}}
    if family != "rhel":
        expected["provisioner"].add("apt_sources")
    assert checked == expected


def test_roots_keys_keep_the_admin_nodes_key_a_converge_rewrites_them(
        goiardi: Goiardi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provisioner cookbook rewrites root's authorized_keys: it keeps the admin node's
    key (with which the admin node runs chef-client over SSH) beside the operator's, also
    when the operator gives none."""
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")
    admin_key = admin_ssh_key(tmp_path / "state")
    example = load("answers/examples/lab-small.yaml")
    without = example.model_copy(update={"provisioning": example.provisioning.model_copy(
        update={"ssh_authorized_keys": []})})
    for answers in (with_an_operator_key(example, tmp_path), without):
        operator = list(answers.provisioning.ssh_authorized_keys)
        objects = asyncio.run(served(goiardi, answers, admin_key))
        installed = [node.fqdn for node in ProvisionerSite(
            answers, default_catalog(), b"").nodes.values()]  # the admin node is not
        assert installed
        for fqdn in installed:
            [keys] = [r for r in record_node(tmp_path, answers, objects, fqdn, {"provisioner"})
                      if r["name"] == "/root/.ssh/authorized_keys"]
            lines = [line for line in keys["rendered"].splitlines()
                     if not line.startswith("#")]
            assert lines == [*operator, admin_key], fqdn
            target = tmp_path / "root" / fqdn / "authorized_keys"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(keys["rendered"])
            assert authorized_keys(tmp_path / "root" / fqdn, "/authorized_keys", keys) is None


def test_bios_and_raid_apply_with_the_vendor_tool_and_say_when_there_is_none(
        goiardi: Goiardi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without racadm or storcli the run warns and records the skip on the node; with them
    (executables standing in at the paths the attributes name) every BIOS setting is set
    when it differs and the RAID layout is built."""
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")
    answers = load("answers/examples/lab-small.yaml")
    answers = answers.model_copy(update={"barclamps": {
        **answers.barclamps, "bios": Proposal(attributes={"power_profile": "balanced"}),
        "raid": Proposal()}})
    objects = asyncio.run(served(goiardi, answers))
    fqdn = f"compute-1.{answers.site.domain}"
    skipped = record_node(tmp_path, answers, objects, fqdn, {"bios", "raid"})
    warnings = [r["properties"]["message"] for r in skipped if r["type"] == "log"]
    assert any(m.startswith("bios: skipped: no vendor tool (Dell racadm)") for m in warnings)
    assert any(m.startswith("raid: skipped: no vendor tool (storcli)") for m in warnings)
    assert [r["name"] for r in skipped if r["type"] == "ruby_block"] == [
        "bios: record the outcome", "raid: record the outcome"]
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("racadm", "storcli64"):
        (tools / tool).write_text("#!/bin/sh\nexit 0\n")
        (tools / tool).chmod(0o755)
    present = record_node(tmp_path, answers, objects, fqdn, {"bios", "raid"}, {
        "bios": {"racadm": [str(tools / "racadm")]},
        "raid": {"storcli": [str(tools / "storcli64")]}})
    commands = [r["properties"]["command"] for r in present if r["type"] == "execute"]
    assert [str(tools / "racadm"), "set", "BIOS.SysProfileSettings.SysProfile",
            "PerfPerWattOptimizedDapc"] in commands
    assert len([c for c in commands if c[1] == "set"]) == 3
    assert "raid: build the layout" in [r["name"] for r in present if r["type"] == "ruby_block"]
    assert not [r for r in present if r["type"] == "log" and "skipped" in r["properties"].get(
        "message", "")]
