"""The network planner: Crowbar's defaults, validation of plans, and auto_plan."""

from __future__ import annotations

import re

import netaddr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wizard.network import (
    Network,
    PlanError,
    auto_plan,
    check_networks,
    default_conduits,
    default_networks,
    unusable,
)


def _findings(networks: dict[str, Network]) -> list[tuple[str, str]]:
    found = check_networks(networks, default_conduits())
    return [(".".join(map(str, f.loc)), f.message) for f in found]


def test_crowbar_defaults_are_valid() -> None:
    networks = default_networks()
    assert set(networks) == {
        "admin", "bmc", "bmc_vlan", "storage", "public", "nova_fixed", "nova_floating"
    }
    assert _findings(networks) == []


def test_netmask_form_of_subnet() -> None:
    net = Network(conduit="intf0", subnet="10.1.0.0", netmask="255.255.255.0",
                  ranges={"host": "10.1.0.10-10.1.0.20"})
    assert str(net.cidr()) == "10.1.0.0/24"
    assert _findings({"n": net}) == []
    bare = Network(conduit="intf0", subnet="10.1.0.0")
    assert _findings({"n": bare}) == [
        ("networks.n.subnet", "subnet 10.1.0.0 needs a prefix length (/24) or a netmask")
    ]
    hostbits = Network(conduit="intf0", subnet="10.1.0.5", netmask="255.255.255.0")
    assert _findings({"n": hostbits}) == [
        ("networks.n.netmask", "subnet 10.1.0.5 has host bits set for netmask 255.255.255.0")
    ]


def test_router_pref_without_router() -> None:
    net = Network(conduit="intf0", subnet="10.1.0.0/24", router_pref=3)
    assert _findings({"n": net}) == [
        ("networks.n.router_pref", "router_pref is set but the network has no router")
    ]


def test_router_on_broadcast_address() -> None:
    net = Network(conduit="intf0", subnet="10.1.0.0/24", router="10.1.0.255")
    assert _findings({"n": net}) == [
        ("networks.n.router", "router 10.1.0.255 is the network or broadcast address")
    ]


def test_router_may_sit_in_the_router_range() -> None:
    net = Network(conduit="intf0", subnet="10.1.0.0/24", router="10.1.0.1",
                  ranges={"router": "10.1.0.1-10.1.0.9"})
    assert _findings({"n": net}) == []


def test_different_vlans_on_one_conduit_may_reuse_a_subnet() -> None:
    a = Network(conduit="intf1", subnet="10.1.0.0/24", vlan=10, use_vlan=True,
                ranges={"host": "10.1.0.10-10.1.0.20"})
    b = a.model_copy(update={"vlan": 20, "ranges": {"host": "10.1.0.30-10.1.0.40"}})
    assert _findings({"a": a, "b": b}) == []
    same = a.model_copy(update={"ranges": {"host": "10.1.0.30-10.1.0.40"}})
    assert [path for path, _ in _findings({"a": a, "b": same})] == ["networks.b.subnet"]


def test_auto_plan_for_500_nodes_in_a_slash_16() -> None:
    plan = auto_plan("10.20.0.0/16", 500)
    assert _findings(plan) == []
    for name in ("admin", "bmc", "storage", "public"):
        assert plan[name].block("host").size >= 500
    assert plan["admin"].block("dhcp").size >= 500
    public = netaddr.IPNetwork(plan["public"].subnet)
    assert netaddr.IPNetwork(plan["nova_floating"].subnet) in public
    assert plan["bmc_vlan"].subnet == plan["bmc"].subnet
    supernet = netaddr.IPNetwork("10.20.0.0/16")
    assert all(netaddr.IPNetwork(n.subnet) in supernet for n in plan.values())


def test_auto_plan_explains_a_supernet_too_small() -> None:
    with pytest.raises(PlanError) as caught:
        auto_plan("10.20.0.0/20", 500)
    assert str(caught.value) == (
        "10.20.0.0/20 holds 4,096 addresses; 500 nodes need 8,192 (admin /21, bmc /22, "
        "storage /22, public /21, nova_fixed /21): use a /19 or larger"
    )
    auto_plan("10.20.0.0/19", 500)  # the suggested size is enough


@pytest.mark.parametrize(
    ("supernet", "nodes", "message"),
    [
        ("10.20.0.1/16", 5, "supernet: 10.20.0.1/16 has host bits set: the block is 10.20.0.0/16"),
        ("10.20.0.0", 5, "supernet: '10.20.0.0' is not a CIDR block such as 10.20.0.0/16"),
        ("fd00::/48", 5, "supernet: 'fd00::/48' is not a CIDR block such as 10.20.0.0/16"),
        ("10.20.0.0/16", 0, "the plan needs at least 1 node"),
        ("0.0.0.0/0", 5, "supernet: 0.0.0.0/0 is wider than /8: no site network spans "
         "4,294,967,296 addresses"),
        ("127.0.0.0/16", 5, "supernet: 127.0.0.0/16 is in 127.0.0.0/8, the loopback block"),
    ],
)
def test_auto_plan_rejects_bad_input(supernet: str, nodes: int, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        auto_plan(supernet, nodes)
    assert str(caught.value) == message


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=8, max_value=28),
    st.integers(min_value=0, max_value=2**24 - 1),
    st.integers(min_value=1, max_value=20_000),
)
def test_auto_plan_is_valid_or_explains(prefix: int, seed: int, nodes: int) -> None:
    supernet = netaddr.IPNetwork(f"{netaddr.IPAddress(seed << 8)}/{prefix}").cidr
    reason = unusable(supernet)
    if reason is not None:  # loopback, multicast, ...: no plan
        with pytest.raises(PlanError, match=f"^supernet: {re.escape(reason)}$"):
            auto_plan(str(supernet), nodes)
        return
    try:
        plan = auto_plan(str(supernet), nodes)
    except PlanError as exc:
        assert f"{nodes} nodes need" in str(exc)
        return
    assert _findings(plan) == []
    for name in ("admin", "bmc", "storage"):
        assert plan[name].block("host").size >= nodes
        assert netaddr.IPNetwork(plan[name].subnet) in supernet
    subnets = [netaddr.IPNetwork(plan[n].subnet) for n in ("admin", "bmc", "storage", "public",
                                                           "nova_fixed")]
    assert sum(s.size for s in subnets) == sum(s.size for s in netaddr.cidr_merge(subnets))


@pytest.mark.parametrize(
    ("subnet", "conduit", "message"),
    [
        ("0.0.0.0/0", "intf0", "subnet 0.0.0.0/0 is wider than /8: no site network spans "
         "4,294,967,296 addresses"),
        ("8.0.0.0/7", "intf0", "subnet 8.0.0.0/7 is wider than /8: no site network spans "
         "33,554,432 addresses"),
        ("0.0.0.0/24", "intf0",
         "subnet 0.0.0.0/24 is in 0.0.0.0/8, the 'this network' block (RFC 1122)"),
        ("127.0.0.0/24", "intf0", "subnet 127.0.0.0/24 is in 127.0.0.0/8, the loopback block"),
        ("169.254.0.0/24", "bmc", "subnet 169.254.0.0/24 is in 169.254.0.0/16, the link-local "
         "block (RFC 3927: never configured by DHCP)"),
        ("169.0.0.0/8", "intf0", "subnet 169.0.0.0/8 overlaps 169.254.0.0/16, the link-local "
         "block (RFC 3927: never configured by DHCP)"),
        ("224.0.0.0/24", "intf0", "subnet 224.0.0.0/24 is in 224.0.0.0/4, the multicast block"),
        ("255.255.255.0/24", "intf0", "subnet 255.255.255.0/24 is in 240.0.0.0/4, the reserved "
         "block (and the broadcast address 255.255.255.255)"),
    ],
)
def test_networks_no_host_can_use_are_refused(subnet: str, conduit: str, message: str) -> None:
    net = Network(conduit=conduit, subnet=subnet)
    assert _findings({"admin": net}) == [("networks.admin.subnet", message)]


def test_a_dedicated_bmc_port_may_be_on_loopback_as_the_labs_bmcs_are() -> None:
    assert _findings({"bmc": Network(conduit="bmc", subnet="127.78.0.0/22")}) == []
    assert unusable(netaddr.IPNetwork("10.0.0.0/8")) is None


def test_a_hostmask_is_not_taken_for_a_netmask() -> None:
    """netaddr reads 10.1.0.0/0.0.0.255 as the hostmask of a /24: it must be refused."""
    net = Network(conduit="intf0", subnet="10.1.0.0", netmask="0.0.0.255")
    with pytest.raises(ValueError, match="^netmask 0.0.0.255 is not a netmask: its one bits "
                       r"come first \(such as 255.255.255.0\)$"):
        net.cidr()
    assert _findings({"admin": net}) == [
        ("networks.admin.netmask",
         "netmask 0.0.0.255 is not a netmask: its one bits come first (such as 255.255.255.0)")]
