"""What a change to a deployed site reaches: the digests of each role's inputs on each node,
rendered from the lab example before and after an edit."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from wizard.answers import load, to_data
from wizard.catalog import default_catalog
from wizard.chef.objects import render
from wizard.engine.changes import converge_inputs
from wizard.engine.convergence import role_graph

EXAMPLE = to_data(load("answers/examples/lab-small.yaml"))
DOMAIN = EXAMPLE["site"]["domain"]


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")


def inputs(data: dict[str, Any], tmp_path: Path) -> dict[str, dict[str, str]]:
    path = tmp_path / f"answers-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(data))
    catalog = default_catalog()
    objects = render(load(path), catalog)
    found = converge_inputs(objects, catalog, role_graph(catalog, objects.roles))
    return {fqdn.removesuffix(f".{DOMAIN}"): roles for fqdn, roles in found.items()}


def changed(before: dict[str, dict[str, str]],
            after: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """Each node's roles whose digest differs, or that it did not hold (nodes new or gone
    included)."""
    found = {}
    for node in set(before) | set(after):
        old, new = before.get(node, {}), after.get(node, {})
        roles = {role for role in set(old) | set(new) if old.get(role) != new.get(role)}
        if roles:
            found[node] = roles
    return found


def test_the_same_answers_give_the_same_digests(tmp_path: Path) -> None:
    assert changed(inputs(EXAMPLE, tmp_path), inputs(copy.deepcopy(EXAMPLE), tmp_path)) == {}


def test_an_attribute_reaches_its_barclamps_roles_and_those_that_use_them(
        tmp_path: Path) -> None:
    edited = copy.deepcopy(EXAMPLE)
    edited["barclamps"]["glance"]["attributes"] = {"default_store": "swift"}
    found = changed(inputs(EXAMPLE, tmp_path), inputs(edited, tmp_path))
    assert found["ctl-1"] == {"glance-server", "nova-controller", "cinder-controller"}, (
        "nova and cinder require glance; keystone, swift and the core do not")
    assert found["compute-1"] == {"nova-compute-kvm"}
    assert found["storage-1"] == {"cinder-volume"}
    assert "admin" not in found


def test_a_role_given_to_a_node_reaches_its_barclamps_nodes_alone(tmp_path: Path) -> None:
    """Cinder lists its volume hosts: its other nodes re-converge, no other barclamp's."""
    edited = copy.deepcopy(EXAMPLE)
    edited["barclamps"]["cinder"]["roles"]["cinder-volume"].append("compute-1")
    found = changed(inputs(EXAMPLE, tmp_path), inputs(edited, tmp_path))
    assert found == {"compute-1": {"cinder-volume"}, "storage-1": {"cinder-volume"},
                     "storage-2": {"cinder-volume"}, "ctl-1": {"cinder-controller"}}


def test_a_new_compute_node_reaches_the_zone_and_the_controller_alone(tmp_path: Path) -> None:
    """The DNS zone and Nova's controller list the hosts; every resolver and every other
    compute node ignores those lists."""
    edited = copy.deepcopy(EXAMPLE)
    extra = copy.deepcopy(next(n for n in EXAMPLE["nodes"] if n["name"] == "compute-3"))
    extra.update(name="compute-4", macs=["52:54:00:00:40:00", "52:54:00:00:40:01"],
                 bmc_address="192.168.124.200")
    extra.get("hardware", {}).update(serial="SNCMP0004")
    edited["nodes"].append(extra)
    edited["barclamps"]["nova"]["roles"]["nova-compute-kvm"].append("compute-4")
    found = changed(inputs(EXAMPLE, tmp_path), inputs(edited, tmp_path))
    assert set(found.pop("compute-4")) >= {"nova-compute-kvm", "dns-client", "ntp-client"}
    assert found == {"admin": {"dns-server"}, "ctl-1": {"nova-controller"}}
