"""A node's network: conduits resolved to NICs by speed and bus order, bonds, VLANs, routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.base_answers import BASE
from wizard.answers import Answers, Hardware, Nic, Node, check, load
from wizard.answers.addressing import node_addresses
from wizard.answers.node_network import (
    ConduitError,
    NodeNic,
    check_conduits,
    node_network,
    resolve,
)
from wizard.network import Conduit

EXAMPLES = Path(__file__).parents[2] / "answers" / "examples"
G = 1000
NICS = [NodeNic("nic0", "52:54:00:00:00:01", 1 * G, "eno1"),
        NodeNic("nic1", "52:54:00:00:00:02", 10 * G, "ens1f0"),
        NodeNic("nic2", "52:54:00:00:00:03", 1 * G, "eno2"),
        NodeNic("nic3", "52:54:00:00:00:04", 25 * G, "ens2f0"),
        NodeNic("nic4", "52:54:00:00:00:05", 10 * G, "ens1f1")]
"""Bus order mixing speeds: 1G, 10G, 1G, 25G, 10G."""


@pytest.mark.parametrize(("spec", "nic"), [
    ("1g1", "nic0"), ("1g2", "nic2"), ("10g1", "nic1"), ("10g2", "nic4"), ("25g1", "nic3"),
    ("+10g1", "nic1"), ("+10g2", "nic3"), ("+10g3", "nic4"), ("+25g1", "nic3"),
    ("-10g1", "nic0"), ("-10g3", "nic2"), ("-1g2", "nic2"),
    ("?1g1", "nic0"), ("?1g4", "nic3"), ("?100g5", "nic4"),
    ("ens2f0", "nic3"), ("eno2", "nic2"),
])
def test_spec_picks_the_nth_fitting_nic_in_bus_order(spec: str, nic: str) -> None:
    assert resolve("c1", "intf1", spec, NICS).name == nic


@pytest.mark.parametrize(("spec", "message"), [
    ("40g1", "node c1: conduit intf1 needs 40g1, and c1 has no NIC of 40 GbE"),
    ("10g3", "node c1: conduit intf1 needs 10g3, and c1 has only 2 NICs of 10 GbE"),
    ("+25g2", "node c1: conduit intf1 needs +25g2, and c1 has only 1 NIC of 25 GbE or faster"),
    ("-1g3", "node c1: conduit intf1 needs -1g3, and c1 has only 2 NICs of 1 GbE or slower"),
    ("?1g6", "node c1: conduit intf1 needs ?1g6, and c1 has only 5 NICs"),
    ("eth0", "node c1: conduit intf1 needs interface eth0, and c1 has no NIC of that name "
             "(its NICs are eno1, ens1f0, eno2, ens2f0, ens1f1)"),
])
def test_unsatisfiable_spec_says_what_the_node_lacks(spec: str, message: str) -> None:
    with pytest.raises(ConduitError) as caught:
        resolve("c1", "intf1", spec, NICS)
    assert str(caught.value) == message


def test_unknown_speed_fits_any_speed_spec() -> None:
    """A NIC without a known speed (no link, or no inventory) may be of any speed."""
    nics = [NICS[0], NodeNic("nic1", "52:54:00:00:00:09", None, None)]
    assert [resolve("c1", "i", spec, nics).name for spec in ("10g1", "1g2", "-1g2", "+40g1")] \
        == ["nic1", "nic1", "nic1", "nic1"]


def _answers(tmp_path: Path, conduits: dict[str, Conduit] | None = None,
             nics: list[Nic] | None = None, **node: Any) -> Answers:
    """BASE with its conduits replaced and ctl-1 given an inventory of ``nics``."""
    path = tmp_path / "answers.yaml"
    path.write_text(BASE)
    answers = load(path)
    ctl = answers.nodes[0]
    hardware = ctl.hardware.model_copy(update={"nics": nics}) if ctl.hardware else None
    nodes = [ctl.model_copy(update={"hardware": hardware, **node}), *answers.nodes[1:]]
    return answers.model_copy(update={"nodes": nodes,
                                      "conduits": conduits or answers.conduits})


def _network(answers: Answers, index: int = 0) -> Any:
    node = answers.nodes[index]
    return node_network(answers, node, node_addresses(answers)[node.name], ["192.168.124.10"])


INVENTORY = [Nic(mac=f"52:54:00:00:10:0{i}", speed_mbps=speed)
             for i, speed in enumerate([1 * G, 10 * G, 10 * G])]


def test_bond_in_teaming_mode_with_vlans_and_default_route(tmp_path: Path) -> None:
    """ctl-1 (a controller) bonds its two 10G NICs in 802.3ad for public and nova_floating
    (VLAN 300), has its admin address on the 1G NIC, and routes by public (router_pref 5)."""
    answers = _answers(tmp_path, {"intf0": Conduit(interfaces=["1g1"]),
                                  "intf1": Conduit(interfaces=["10g1", "10g2"], teaming_mode=4)},
                       INVENTORY, addresses={"nova_floating": "192.168.126.130"})
    assert check(answers) == []
    net = _network(answers)
    assert [(nic.name, nic.mac) for nic in net.nics] == [
        ("nic0", "52:54:00:00:10:00"), ("nic1", "52:54:00:00:10:01"),
        ("nic2", "52:54:00:00:10:02")]
    devices = {d.name: d for d in net.devices}
    assert list(devices) == ["nic0", "bond0", "bond0.300"]
    assert (devices["bond0"].nics, devices["bond0"].bond_mode) == (("nic1", "nic2"), "802.3ad")
    assert devices["bond0"].addresses == ()
    assert (devices["bond0.300"].parent, devices["bond0.300"].vlan) == ("bond0", 300)
    assert [a.cidr for a in devices["bond0.300"].addresses] == ["192.168.126.2/24",
                                                                "192.168.126.130/26"]
    assert [a.cidr for a in devices["nic0"].addresses] == ["192.168.124.81/24"]
    assert net.admin_device == "nic0"
    assert (net.gateway.network, net.router) == ("public", "192.168.126.1")
    assert (net.dns_servers, net.search) == (("192.168.124.10",), "lab.crowbar.test")


def test_admin_route_without_a_better_router_and_bmc_left_to_the_bmc(tmp_path: Path) -> None:
    """compute-1 joins admin only (bmc is its BMC's): the default route is the admin router."""
    net = _network(_answers(tmp_path), 1)
    assert [d.name for d in net.devices] == ["nic0"]
    assert (net.gateway.network, net.router) == ("admin", "192.168.124.1")


def test_inventory_that_cannot_satisfy_a_conduit_is_a_finding(tmp_path: Path) -> None:
    answers = _answers(tmp_path, {"intf0": Conduit(interfaces=["1g1"]),
                                  "intf1": Conduit(interfaces=["25g1"])}, INVENTORY)
    [finding] = check_conduits(answers)
    assert finding.loc == ("nodes", 0, "hardware", "nics")
    assert finding.message == "node ctl-1: conduit intf1 needs 25g1, and ctl-1 has no NIC of 25 GbE"
    with pytest.raises(ConduitError):
        _network(answers)


def test_without_inventory_a_conduit_beyond_the_macs_is_left_out(tmp_path: Path) -> None:
    """ctl-1 lists one MAC and no inventory: public (on the two-NIC bond) waits for discovery;
    it is no problem yet, and the installers are told why it is missing."""
    answers = _answers(tmp_path)
    assert list(check_conduits(answers)) == []
    net = _network(answers)
    assert [d.name for d in net.devices] == ["nic0"]
    assert net.unconfigured == {
        "public": "node ctl-1: conduit intf1 needs 1g2, and ctl-1 has only 1 NIC of 1 GbE"}


@pytest.mark.parametrize(("conduits", "message"), [
    ({"intf0": Conduit(interfaces=["?1g1"]), "intf1": Conduit(interfaces=["?1g1", "?1g2"])},
     "node ctl-1: conduits intf0 (nic0) and intf1 (nic0, nic1) share nic0 but not all their "
     "NICs: a NIC is in one bond or carries one conduit"),
    ({"intf0": Conduit(interfaces=["?1g1", "?1g2"], teaming_mode=1),
      "intf1": Conduit(interfaces=["?1g2", "?1g1"], teaming_mode=4)},
     "node ctl-1: conduits intf0 and intf1 bond the same NICs (nic0, nic1) in different "
     "teaming modes (1 and 4): one bond has one mode"),
    ({"intf0": Conduit(interfaces=["?1g1", "1g1"]), "intf1": Conduit(interfaces=["?1g2"])},
     "node ctl-1: conduit intf0 takes nic0 (52:54:00:00:10:00) twice, as ?1g1 and as 1g1"),
])
def test_conduits_fighting_over_nics(tmp_path: Path, conduits: dict[str, Conduit],
                                     message: str) -> None:
    answers = _answers(tmp_path, conduits, macs=["52:54:00:00:10:00", "52:54:00:00:10:01"])
    findings = [f for f in check_conduits(answers) if f.loc[:2] == ("nodes", 0)]
    assert [(f.loc, f.message) for f in findings] == [(("nodes", 0, "macs"), message)]


def test_shared_nic_set_is_one_device() -> None:
    """Crowbar's intf0 and intf2 are both ?1g1: one device carries both."""
    answers = load(EXAMPLES / "lab-small.yaml")
    node = answers.nodes[0].model_copy(update={"addresses": {"bmc_vlan": "192.168.124.161"}})
    answers = answers.model_copy(update={"nodes": [node, *answers.nodes[1:]]})
    net = node_network(answers, node, node_addresses(answers)[node.name], [])
    assert [d.name for d in net.devices] == ["nic0", "nic1", "nic0.100", "nic1.200", "nic1.300"]


@pytest.mark.parametrize("example", sorted(path.stem for path in EXAMPLES.glob("*.yaml")))
def test_examples_stay_valid_with_and_without_inventory(example: str) -> None:
    """Every shipped example resolves; so it does once its nodes report 1 GbE NICs."""
    answers = load(EXAMPLES / f"{example}.yaml")
    nodes = [node.model_copy(update={"hardware": Hardware(
        cpu_cores=1, memory_gb=1, nics=[Nic(mac=mac, speed_mbps=G) for mac in node.macs])})
        for node in answers.nodes]
    assert list(check_conduits(answers.model_copy(update={"nodes": nodes}))) == []


def test_duplicate_nic_in_inventory_is_refused() -> None:
    with pytest.raises(ValueError, match="NIC mac 52:54:00:00:10:00 is listed twice"):
        Node(name="c1", macs=["52:54:00:00:10:00"], hardware=Hardware(
            cpu_cores=1, memory_gb=1, nics=[Nic(mac="52:54:00:00:10:00"),
                                            Nic(mac="52:54:00:00:10:00")]))
