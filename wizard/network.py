"""Network planning: Crowbar's networks, conduits and ranges, their validation and an auto-plan.

A network lives on a *conduit* (a NIC or a bond of NICs), optionally tagged with a VLAN, and
carries named address ranges: ``admin`` (the admin node), ``dhcp`` (unknown machines while
they are discovered), ``host`` (one address per node that joins the network), ``switch`` and
``router``. Only IPv4, as in Crowbar.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from itertools import combinations
from typing import Annotated, Any, Literal

import netaddr
from pydantic import Field, PlainSerializer, PlainValidator, WithJsonSchema

from wizard.base.fields import (
    AddressRange,
    Identifier,
    Interface,
    IPv4,
    Subnet,
    parse_cidr,
    parse_ipv4,
    parse_range,
    printable,
    valid_tag,
)
from wizard.base.model import Model
from wizard.base.problems import Finding, Loc

RangeName = Literal["admin", "dhcp", "host", "switch", "router"]
BMC_CONDUIT = "bmc"
"""The conduit of a dedicated BMC port: it needs no entry under ``conduits``."""


def _node_selector(value: Any) -> str | list[str]:
    if value in ("all", "none"):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [valid_tag(str(printable(v)).strip()) for v in value]
    raise ValueError("write 'all', 'none' or a list of node roles such as [controller, network]")


NodeSelector = Annotated[
    str | list[str],
    PlainValidator(_node_selector),
    PlainSerializer(lambda v: v),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": ["all", "none"]},
                {"type": "array", "items": {"type": "string"}},
            ],
            "description": "Which nodes take an address from the host range: all, none, "
            "or the nodes holding one of these roles.",
        }
    ),
]


class Conduit(Model):
    """NICs that carry networks; two or more NICs form a bond in ``teaming_mode``."""

    interfaces: list[Interface] = Field(min_length=1)
    teaming_mode: int = Field(1, ge=0, le=6, description="Linux bonding mode 0-6")


class Network(Model):
    """One L3 network on a conduit, with its named ranges."""

    conduit: Identifier
    subnet: Subnet
    netmask: IPv4 | None = None
    broadcast: IPv4 | None = None
    router: IPv4 | None = None
    router_pref: int | None = Field(None, ge=0, le=10_000)
    vlan: int | None = Field(None, ge=1, le=4094)
    use_vlan: bool = False
    add_bridge: bool = False
    mtu: int = Field(1500, ge=576, le=9216)
    ranges: dict[RangeName, AddressRange] = Field(default_factory=dict)
    node_addresses: NodeSelector = "none"

    def cidr(self) -> netaddr.IPNetwork:
        """The subnet as a block; raises ``ValueError`` if subnet and netmask disagree."""
        address, _, prefix = self.subnet.partition("/")
        if prefix:
            net = netaddr.IPNetwork(self.subnet)
            if self.netmask is not None and self.netmask != str(net.netmask):
                raise ValueError(
                    f"netmask {self.netmask} does not match subnet {net} ({net.netmask})"
                )
            return net
        if self.netmask is None:
            raise ValueError(f"subnet {self.subnet} needs a prefix length (/24) or a netmask")
        try:
            net = netaddr.IPNetwork(f"{address}/{self.netmask}")
        except (netaddr.AddrFormatError, ValueError):
            raise ValueError(f"netmask {self.netmask} is not a valid netmask") from None
        if str(net.netmask) != self.netmask:  # netaddr takes 0.0.0.255 as a hostmask: /24
            raise ValueError(f"netmask {self.netmask} is not a netmask: its one bits come first "
                             f"(such as {net.netmask})")
        if net.ip != net.network:
            raise ValueError(f"subnet {self.subnet} has host bits set for netmask {self.netmask}")
        return net

    def block(self, name: RangeName) -> netaddr.IPRange | None:
        """The named range as a block, or None when the network has no such range."""
        text = self.ranges.get(name)
        return None if text is None else netaddr.IPRange(*parse_range(text))

    def tag(self) -> int | None:
        """The VLAN the network's frames carry on its conduit (None when untagged)."""
        return self.vlan if self.use_vlan else None


SPECIAL_BLOCKS = {
    "0.0.0.0/8": "'this network' block (RFC 1122)",
    "127.0.0.0/8": "loopback block",
    "169.254.0.0/16": "link-local block (RFC 3927: never configured by DHCP)",
    "224.0.0.0/4": "multicast block",
    "240.0.0.0/4": "reserved block (and the broadcast address 255.255.255.255)",
}
"""IPv4 blocks no host of a site network takes an address from."""


def unusable(cidr: netaddr.IPNetwork, *, loopback_ok: bool = False) -> str | None:
    """Why no site network can be ``cidr`` (it validates, but DHCP ranges and routes made
    from it make no sense), or None. ``loopback_ok`` lets a dedicated BMC port's network be
    on loopback, where the lab's BMCs listen."""
    if cidr.prefixlen < 8:
        return f"{cidr} is wider than /8: no site network spans {cidr.size:,} addresses"
    for block, what in SPECIAL_BLOCKS.items():
        special = netaddr.IPNetwork(block)
        overlaps = cidr.first <= special.last and special.first <= cidr.last
        if overlaps and not (loopback_ok and block == "127.0.0.0/8"):
            return f"{cidr} {'is in' if cidr in special else 'overlaps'} {block}, the {what}"
    return None


def _overlap(a: netaddr.IPRange, b: netaddr.IPRange) -> netaddr.IPRange | None:
    first, last = max(a.first, b.first), min(a.last, b.last)
    return netaddr.IPRange(first, last) if first <= last else None


def _span(block: netaddr.IPRange) -> str:
    return str(block[0]) if block.size == 1 else f"{block[0]}-{block[-1]}"


def check_networks(
    networks: Mapping[str, Network], conduits: Mapping[str, Conduit]
) -> Iterator[Finding]:
    """Every rule the network plan breaks on its own (nodes are checked in answers)."""
    cidrs: dict[str, netaddr.IPNetwork] = {}
    for name, net in networks.items():
        findings = list(_check_network(name, net, conduits))
        yield from findings
        if not findings:
            cidrs[name] = net.cidr()
    yield from _check_router_prefs(networks)
    yield from _check_shared_segments(networks, cidrs)


def _check_network(
    name: str, net: Network, conduits: Mapping[str, Conduit]
) -> Iterator[Finding]:
    at: Loc = ("networks", name)
    if net.conduit != BMC_CONDUIT and net.conduit not in conduits:
        known = ", ".join([*conduits, BMC_CONDUIT])
        yield Finding((*at, "conduit"), f"unknown conduit {net.conduit!r} (known: {known})")
    if net.use_vlan and net.vlan is None:
        yield Finding((*at, "use_vlan"), "use_vlan is true but no vlan id is set")
    if net.router_pref is not None and net.router is None:
        yield Finding((*at, "router_pref"), "router_pref is set but the network has no router")
    try:
        cidr = net.cidr()
    except ValueError as exc:
        field = "subnet" if "/" not in net.subnet and net.netmask is None else "netmask"
        yield Finding((*at, field), str(exc))
        return
    if cidr.prefixlen > 30:
        yield Finding((*at, "subnet"), f"subnet {cidr} leaves no room for hosts (use /30 or wider)")
        return
    reason = unusable(cidr, loopback_ok=net.conduit == BMC_CONDUIT)
    if reason is not None:
        yield Finding((*at, "subnet"), f"subnet {reason}")
        return
    if net.broadcast is not None and net.broadcast != str(cidr.broadcast):
        yield Finding(
            (*at, "broadcast"),
            f"broadcast {net.broadcast} does not match subnet {cidr} ({cidr.broadcast})",
        )
    usable = netaddr.IPRange(cidr.first + 1, cidr.last - 1)
    blocks: list[tuple[RangeName, netaddr.IPRange]] = []
    for range_name, text in net.ranges.items():
        block = netaddr.IPRange(*parse_range(text))
        where = (*at, "ranges", range_name)
        if block.first < cidr.first or block.last > cidr.last:
            yield Finding(where, f"range {text} is not inside subnet {cidr}")
            continue
        if block.first < usable.first or block.last > usable.last:
            which = "network" if block.first < usable.first else "broadcast"
            yield Finding(where, f"range {text} includes the {which} address of subnet {cidr}")
            continue
        for other_name, other in blocks:
            both = _overlap(block, other)
            if both is not None:
                yield Finding(
                    where,
                    f"range {range_name} ({text}) overlaps range {other_name} at {_span(both)}",
                )
        blocks.append((range_name, block))
    if net.router is not None:
        router = parse_ipv4(net.router)
        if router not in cidr:
            yield Finding((*at, "router"), f"router {router} is not inside subnet {cidr}")
        elif router not in usable:
            yield Finding((*at, "router"), f"router {router} is the network or broadcast address")
        for range_name, block in blocks:
            if range_name != "router" and router in block:
                yield Finding(
                    (*at, "router"),
                    f"router {router} is inside the {range_name} range {_span(block)}",
                )


def _check_router_prefs(networks: Mapping[str, Network]) -> Iterator[Finding]:
    prefs = {
        name: net.router_pref
        for name, net in networks.items()
        if net.router is not None and net.router_pref is not None
    }
    if not prefs:
        return
    lowest = min(prefs.values())
    holders = [name for name, pref in prefs.items() if pref == lowest]
    if len(holders) > 1:
        yield Finding(
            ("networks", holders[1], "router_pref"),
            f"router_pref {lowest} is also the lowest on {holders[0]}: the lowest router_pref "
            "picks the default route and must be unique",
        )


def _check_shared_segments(
    networks: Mapping[str, Network], cidrs: Mapping[str, netaddr.IPNetwork]
) -> Iterator[Finding]:
    """Networks whose subnets overlap: same segment rules and disjoint ranges."""
    for a, b in combinations(cidrs, 2):
        ca, cb = cidrs[a], cidrs[b]
        if ca.last < cb.first or cb.last < ca.first:
            continue
        na, nb = networks[a], networks[b]
        if na.conduit == nb.conduit and na.tag() == nb.tag() and ca == cb:
            tag = f"VLAN {na.tag()}" if na.tag() else "untagged"
            yield Finding(
                ("networks", b, "subnet"),
                f"subnet {cb} is also used by network {a} on the same conduit "
                f"{na.conduit} ({tag}): networks on one segment need disjoint subnets",
            )
            continue
        for ra, ta in na.ranges.items():
            for rb, tb in nb.ranges.items():
                both = _overlap(
                    netaddr.IPRange(*parse_range(ta)), netaddr.IPRange(*parse_range(tb))
                )
                if both is not None:
                    yield Finding(
                        ("networks", b, "ranges", rb),
                        f"range {tb} overlaps range {ra} of network {a} ({ta}) at "
                        f"{_span(both)}; networks that share addresses need disjoint ranges",
                    )


# --- Crowbar's defaults --------------------------------------------------------------------


def default_conduits() -> dict[str, Conduit]:
    """Crowbar's "dual" conduit map: admin on the first 1 GbE NIC, the rest on the second."""
    return {
        "intf0": Conduit(interfaces=["?1g1"]),
        "intf1": Conduit(interfaces=["?1g2"]),
        "intf2": Conduit(interfaces=["?1g1"]),
    }


def default_networks() -> dict[str, Network]:
    """Crowbar's default network template (Dell-era), with node address needs filled in.

    One fix: Crowbar's nova_floating host range ran to .191, the broadcast address of its /26.
    """
    return {
        "admin": Network(
            conduit="intf0", subnet="192.168.124.0/24", router="192.168.124.1", router_pref=10,
            vlan=100, ranges={
                "admin": "192.168.124.10-192.168.124.11",
                "dhcp": "192.168.124.21-192.168.124.80",
                "host": "192.168.124.81-192.168.124.160",
                "switch": "192.168.124.241-192.168.124.250",
            }, node_addresses="all",
        ),
        "bmc": Network(
            conduit=BMC_CONDUIT, subnet="192.168.124.0/24", vlan=100,
            ranges={"host": "192.168.124.162-192.168.124.240"}, node_addresses="all",
        ),
        "bmc_vlan": Network(
            conduit="intf2", subnet="192.168.124.0/24", vlan=100, use_vlan=True,
            ranges={"host": "192.168.124.161-192.168.124.161"},
        ),
        "storage": Network(
            conduit="intf1", subnet="192.168.125.0/24", vlan=200, use_vlan=True,
            ranges={"host": "192.168.125.10-192.168.125.239"}, node_addresses="all",
        ),
        "public": Network(
            conduit="intf1", subnet="192.168.126.0/24", router="192.168.126.1", router_pref=5,
            vlan=300, use_vlan=True, ranges={
                "host": "192.168.126.2-192.168.126.49",
                "dhcp": "192.168.126.50-192.168.126.127",
            }, node_addresses=["controller", "network"],
        ),
        "nova_fixed": Network(
            conduit="intf1", subnet="192.168.123.0/24", router="192.168.123.1", router_pref=20,
            vlan=500, use_vlan=True, add_bridge=True, ranges={
                "router": "192.168.123.1-192.168.123.49",
                "dhcp": "192.168.123.50-192.168.123.254",
            },
        ),
        "nova_floating": Network(
            conduit="intf1", subnet="192.168.126.128/26", vlan=300, use_vlan=True,
            ranges={"host": "192.168.126.129-192.168.126.190"},
        ),
    }


# --- Auto-plan -----------------------------------------------------------------------------


class PlanError(ValueError):
    """A supernet and node count from which no valid plan can be carved."""


ADMIN_RANGE = 10
SWITCH_RANGE = 10
ROUTER_RANGE = 49


def _prefix_for(addresses: int) -> int:
    """The longest prefix whose block holds ``addresses`` (network and broadcast included)."""
    return 32 - max(2, math.ceil(math.log2(addresses)))


def _span_at(net: netaddr.IPNetwork, first: int, count: int) -> str:
    return f"{net[first]}-{net[first + count - 1]}"


def auto_plan(supernet: str, node_count: int) -> dict[str, Network]:
    """Carve Crowbar's networks for ``node_count`` nodes out of one supernet.

    Every network gets its own subnet except bmc_vlan (inside bmc) and nova_floating (the
    upper half of public), as in Crowbar's template. Host ranges hold every node plus 10%
    (at least 8) spare. Raises :class:`PlanError` saying what would be needed.
    """
    try:
        block = parse_cidr(supernet.strip())
    except ValueError as exc:
        raise PlanError(f"supernet: {exc}") from None
    reason = unusable(block)
    if reason is not None:
        raise PlanError(f"supernet: {reason}")
    if node_count < 1:
        raise PlanError("the plan needs at least 1 node")
    hosts = node_count + max(8, math.ceil(node_count / 10))
    sizes = {
        "admin": 2 + 1 + ADMIN_RANGE + 2 * hosts + SWITCH_RANGE,
        "bmc": 2 + 1 + hosts,
        "storage": 2 + hosts,
        "public": 2 * (2 + 1 + hosts),
        "nova_fixed": 2 + max(254, 4 * node_count),
    }
    prefixes = {name: _prefix_for(size) for name, size in sizes.items()}
    needed = sum(2 ** (32 - p) for p in prefixes.values())
    if needed > block.size:
        parts = ", ".join(f"{name} /{p}" for name, p in prefixes.items())
        raise PlanError(
            f"{block} holds {block.size:,} addresses; {node_count} nodes need {needed:,} "
            f"({parts}): use a /{_prefix_for(needed)} or larger"
        )
    subnets: dict[str, netaddr.IPNetwork] = {}
    cursor = block.first
    for name in sorted(prefixes, key=lambda n: prefixes[n]):
        subnets[name] = netaddr.IPNetwork(f"{netaddr.IPAddress(cursor)}/{prefixes[name]}")
        cursor += subnets[name].size
    return _plan_networks(subnets, hosts)


def _plan_networks(subnets: Mapping[str, netaddr.IPNetwork], hosts: int) -> dict[str, Network]:
    admin, bmc, storage = subnets["admin"], subnets["bmc"], subnets["storage"]
    public, fixed = subnets["public"], subnets["nova_fixed"]
    public_low, floating = public.subnet(public.prefixlen + 1)
    dhcp_at = 2 + ADMIN_RANGE
    fixed_routers = min(ROUTER_RANGE, fixed.size // 4)
    return {
        "admin": Network(
            conduit="intf0", subnet=str(admin), router=str(admin[1]), router_pref=10,
            ranges={
                "admin": _span_at(admin, 2, ADMIN_RANGE),
                "dhcp": _span_at(admin, dhcp_at, hosts),
                "host": _span_at(admin, dhcp_at + hosts, hosts),
                "switch": _span_at(admin, admin.size - 1 - SWITCH_RANGE, SWITCH_RANGE),
            },
            node_addresses="all",
        ),
        "bmc": Network(
            conduit=BMC_CONDUIT, subnet=str(bmc),
            ranges={"host": _span_at(bmc, 2, hosts)}, node_addresses="all",
        ),
        "bmc_vlan": Network(
            conduit="intf2", subnet=str(bmc), vlan=100, use_vlan=True,
            ranges={"host": _span_at(bmc, 1, 1)},
        ),
        "storage": Network(
            conduit="intf1", subnet=str(storage), vlan=200, use_vlan=True,
            ranges={"host": _span_at(storage, 1, hosts)}, node_addresses="all",
        ),
        "public": Network(
            conduit="intf1", subnet=str(public), router=str(public[1]), router_pref=5,
            vlan=300, use_vlan=True, ranges={"host": _span_at(public_low, 2, hosts)},
            node_addresses=["controller", "network"],
        ),
        "nova_fixed": Network(
            conduit="intf1", subnet=str(fixed), router=str(fixed[1]), router_pref=20,
            vlan=500, use_vlan=True, add_bridge=True,
            ranges={
                "router": _span_at(fixed, 1, fixed_routers),
                "dhcp": _span_at(fixed, 1 + fixed_routers, fixed.size - 2 - fixed_routers),
            },
        ),
        "nova_floating": Network(
            conduit="intf1", subnet=str(floating), vlan=300, use_vlan=True,
            ranges={"host": _span_at(floating, 1, floating.size - 2)},
        ),
    }
