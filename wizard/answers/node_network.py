"""One node's network as its operating system configures it: NICs, bonds, VLANs, addresses.

Every installer (netplan in Ubuntu's autoinstall, kickstart ``network`` lines, Debian's
ifupdown) renders the same :class:`NodeNetwork`, so they agree on every name and address.

**NICs.** A node's NICs are its discovered inventory (``hardware.nics``, in bus order) or,
without one, its ``macs`` in the order given, of unknown speed. Each NIC gets a stable name
pinned by its MAC: ``nic0``, ``nic1``, ... in bus order. Names of that form are outside the
kernel's ``eth*`` namespace (so renaming never races the kernel, as dracut's ``ifname=``
asks), and the same on every OS family, whatever predictable names its udev would pick.

**Conduits** resolve to NICs as Crowbar resolved them: ``1g1`` is the first 1 GbE NIC in
bus order, ``10g2`` the second 10 GbE one; ``+10g1`` takes the first NIC of 10 GbE or
faster, ``-10g1`` of 10 GbE or slower, ``?1g2`` the second NIC of any speed. A NIC whose
speed is unknown (no inventory, or no link when it was taken) counts as any speed: it may
well be, and ``network check`` verifies the cabling on the real kernel. Any other word is
an interface name, matched against the names the inventory reported. A conduit of one NIC
is that NIC; of several, a bond ``bondN`` (numbered in conduit order) in the conduit's
teaming mode. Conduits resolving to the same NICs share one device (Crowbar's default
``intf0`` and ``intf2`` are both ``?1g1``).

**Networks** the node has an address on are configured on their conduit's device, tagged
ones on a VLAN device ``DEVICE.VLAN``. The BMC conduit is the BMC's, not the OS's. The
default route goes through the router of the node's network with the lowest
``router_pref`` (a router without a preference comes after every one with; ties go to the
first network listed), as in Crowbar. DNS servers and the search domain go on the device
of the admin network, where the DNS servers are.

A node whose inventory cannot satisfy a conduit it needs is an answers problem
(:func:`check_conduits`). Without an inventory the node's listed MACs may be only the ones
known so far: a conduit needing more is left unconfigured, and the networks on it are
listed in :attr:`NodeNetwork.unconfigured` (the installers say so in a comment).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from wizard.base.fields import parse_ipv4
from wizard.base.problems import Finding
from wizard.network import BMC_CONDUIT, Conduit, Network

if TYPE_CHECKING:
    from wizard.answers import Answers, Node

BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
              "balance-tlb", "balance-alb")
"""Linux bonding mode names by ``teaming_mode`` 0-6."""
MII_MONITOR_MS = 100
"""How often a bond checks its slaves' links (without it a dead slave is never noticed)."""
ADMIN_NETWORK = "admin"
_SPEC = re.compile(r"^(?P<sign>[+?-]?)(?P<speed>\d+)g(?P<index>\d+)$")
_SIGN_WORDS = {"": "", "+": " or faster", "-": " or slower"}


@dataclass(frozen=True)
class NodeNic:
    """A physical NIC, named by bus order and pinned by its MAC."""

    name: str
    mac: str
    speed_mbps: int | None
    reported_name: str | None


@dataclass(frozen=True)
class Address:
    """The node's address on one network, with the network's prefix."""

    network: str
    ip: str
    prefix: int
    netmask: str

    @property
    def cidr(self) -> str:
        return f"{self.ip}/{self.prefix}"


@dataclass(frozen=True)
class Device:
    """An OS interface that carries networks: a NIC, a bond of NICs, or a VLAN on one."""

    name: str
    kind: Literal["nic", "bond", "vlan"]
    mtu: int
    conduit: str
    nics: tuple[str, ...] = ()
    """The NICs it is (one) or bonds (several)."""
    bond_mode: str | None = None
    miimon: int | None = None
    """A bond's link check interval in ms."""
    vlan: int | None = None
    parent: str | None = None
    addresses: tuple[Address, ...] = ()


@dataclass(frozen=True)
class NodeNetwork:
    """Everything a node's OS needs to bring up its planned network."""

    node: str
    nics: tuple[NodeNic, ...]
    devices: tuple[Device, ...]
    """Untagged devices (NICs and bonds) first, then VLANs, in the order of the networks."""
    admin_device: str | None
    gateway: Address | None
    router: str | None
    dns_servers: tuple[str, ...]
    search: str
    unconfigured: dict[str, str] = field(default_factory=dict)
    """Networks left out (node without inventory), each with why."""

    def device(self, name: str) -> Device | None:
        return next((device for device in self.devices if device.name == name), None)

    def by_kind(self, kind: str) -> list[Device]:
        return [device for device in self.devices if device.kind == kind]

    def used_nics(self) -> set[str]:
        return {name for device in self.devices for name in device.nics}


class ConduitError(ValueError):
    """A conduit the node's NICs cannot satisfy, or conduits that fight over a NIC."""


class MissingNic(ConduitError):
    """A conduit needs a NIC the node does not have (or, without inventory, is not known)."""


def node_nics(node: Node) -> list[NodeNic]:
    """The node's NICs in bus order (its inventory, else its MACs), named ``nicN``."""
    if node.hardware is not None and node.hardware.nics is not None:
        return [NodeNic(f"nic{i}", nic.mac, nic.speed_mbps, nic.name)
                for i, nic in enumerate(node.hardware.nics)]
    return [NodeNic(f"nic{i}", mac, None, None) for i, mac in enumerate(node.macs)]


def has_inventory(node: Node) -> bool:
    return node.hardware is not None and node.hardware.nics is not None


def resolve(node: str, conduit: str, spec: str, nics: Sequence[NodeNic]) -> NodeNic:
    """The NIC ``spec`` names among ``nics``; :class:`MissingNic` saying why none does."""
    match = _SPEC.match(spec)
    if match is None:
        named = [nic for nic in nics if nic.reported_name == spec]
        if named:
            return named[0]
        known = ", ".join(nic.reported_name for nic in nics if nic.reported_name)
        names = f"its NICs are {known}" if known else "its inventory names no NIC"
        raise MissingNic(f"node {node}: conduit {conduit} needs interface {spec}, and "
                           f"{node} has no NIC of that name ({names})")
    sign, speed = match["sign"], int(match["speed"]) * 1000
    index = int(match["index"])
    fitting = [nic for nic in nics if nic.speed_mbps is None or sign == "?"
               or (sign == "" and nic.speed_mbps == speed)
               or (sign == "+" and nic.speed_mbps >= speed)
               or (sign == "-" and nic.speed_mbps <= speed)]
    if index <= len(fitting):
        return fitting[index - 1]
    kind = "" if sign == "?" else f" of {match['speed']} GbE{_SIGN_WORDS[sign]}"
    have = (f"no NIC{kind}" if not fitting
            else f"only {len(fitting)} NIC{'s' if len(fitting) > 1 else ''}{kind}")
    raise MissingNic(f"node {node}: conduit {conduit} needs {spec}, and {node} has {have}")


def _resolve_conduit(node: str, name: str, conduit: Conduit,
                     nics: Sequence[NodeNic]) -> tuple[str, ...]:
    picked: dict[str, str] = {}
    for spec in conduit.interfaces:
        nic = resolve(node, name, spec, nics)
        if nic.name in picked:
            raise ConduitError(f"node {node}: conduit {name} takes {nic.name} ({nic.mac}) "
                               f"twice, as {picked[nic.name]} and as {spec}")
        picked[nic.name] = spec
    return tuple(picked)


def _conduits(answers: Answers, node: Node, joined: Sequence[str],
              nics: Sequence[NodeNic]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """The NICs of each conduit the ``joined`` networks need, and the networks left out.

    Raises :class:`ConduitError` for a node with an inventory that cannot satisfy one, and
    for conduits fighting over NICs.
    """
    unconfigured: dict[str, str] = {}
    sets: dict[str, tuple[str, ...]] = {}
    for conduit in dict.fromkeys(answers.networks[n].conduit for n in joined):
        if conduit == BMC_CONDUIT or conduit not in answers.conduits:
            continue  # the BMC's own port; an unknown conduit is check_networks' finding
        try:
            sets[conduit] = _resolve_conduit(node.name, conduit, answers.conduits[conduit],
                                             nics)
        except MissingNic as exc:
            if has_inventory(node):
                raise
            for network in joined:
                if answers.networks[network].conduit == conduit:
                    unconfigured[network] = str(exc)
    _check_overlaps(node.name, sets, answers.conduits)
    return sets, unconfigured


def node_network(answers: Answers, node: Node, addresses: Mapping[str, str],
                 dns_servers: Sequence[str]) -> NodeNetwork:
    """The network ``node``'s OS brings up; ``addresses`` are its addresses by network.

    Expects valid answers; raises :class:`ConduitError` for a node with an inventory that
    cannot satisfy a conduit (validation reports that first: :func:`check_conduits`).
    """
    nics = node_nics(node)
    joined = [name for name, net in answers.networks.items()
              if name in addresses and net.conduit != BMC_CONDUIT]
    sets, unconfigured = _conduits(answers, node, joined, nics)
    base: dict[tuple[str, ...], Device] = {}
    for conduit, members in sets.items():
        if members not in base:
            bonded = len(members) > 1
            mode = BOND_MODES[answers.conduits[conduit].teaming_mode] if bonded else None
            name = f"bond{sum(len(d.nics) > 1 for d in base.values())}" if bonded else members[0]
            base[members] = Device(name, "bond" if bonded else "nic", 0, conduit,
                                   nics=members, bond_mode=mode,
                                   miimon=MII_MONITOR_MS if bonded else None)
    tagged: dict[str, Device] = {}
    gateway: tuple[tuple[int, int], Address, str] | None = None
    admin_device = None
    for network in joined:
        if network in unconfigured:
            continue
        net = answers.networks[network]
        address = _address(network, net, addresses[network])
        members = sets[net.conduit]
        device = base[members]
        mtu = max(device.mtu, net.mtu)
        carrier = device.name
        if net.tag() is None:
            base[members] = replace(device, mtu=mtu, addresses=(*device.addresses, address))
        else:
            base[members] = replace(device, mtu=mtu)
            carrier = f"{device.name}.{net.tag()}"
            vlan = tagged.get(carrier) or Device(carrier, "vlan", 0, net.conduit,
                                                 vlan=net.tag(), parent=device.name)
            tagged[carrier] = replace(vlan, mtu=max(vlan.mtu, net.mtu),
                                      addresses=(*vlan.addresses, address))
        if network == ADMIN_NETWORK:
            admin_device = carrier
        if net.router is not None:
            rank = (0, net.router_pref) if net.router_pref is not None else (1, 0)
            if gateway is None or rank < gateway[0]:
                gateway = (rank, address, net.router)
    return NodeNetwork(
        node=node.name, nics=tuple(nics), devices=(*base.values(), *tagged.values()),
        admin_device=admin_device, gateway=gateway[1] if gateway else None,
        router=gateway[2] if gateway else None, dns_servers=tuple(dns_servers),
        search=answers.site.domain, unconfigured=unconfigured,
    )


def _address(network: str, net: Network, ip: str) -> Address:
    cidr = net.cidr()
    return Address(network, str(parse_ipv4(ip)), cidr.prefixlen, str(cidr.netmask))


def _check_overlaps(node: str, sets: Mapping[str, tuple[str, ...]],
                    conduits: Mapping[str, Conduit]) -> None:
    """Two conduits on the same NICs share a device; on some of the same NICs, or bonding
    the same NICs in different modes, they fight over it."""
    for a, first in sets.items():
        for b, second in sets.items():
            shared = sorted(set(first) & set(second))
            if a >= b or not shared:
                continue
            if set(first) != set(second):
                raise ConduitError(
                    f"node {node}: conduits {a} ({', '.join(first)}) and {b} "
                    f"({', '.join(second)}) share {', '.join(shared)} but not all their NICs: "
                    "a NIC is in one bond or carries one conduit")
            modes = conduits[a].teaming_mode, conduits[b].teaming_mode
            if len(first) > 1 and modes[0] != modes[1]:
                raise ConduitError(
                    f"node {node}: conduits {a} and {b} bond the same NICs "
                    f"({', '.join(first)}) in different teaming modes ({modes[0]} and "
                    f"{modes[1]}): one bond has one mode")


def check_conduits(answers: Answers) -> Iterator[Finding]:
    """Nodes whose NICs cannot carry the conduits of the networks they join.

    A node with an inventory must satisfy every conduit it needs; a node without one only
    must not have conduits fighting over the NICs it lists.
    """
    joining = {name: [node.name for node in answers.nodes_needing(name)]
               for name, net in answers.networks.items() if net.conduit != BMC_CONDUIT}
    for index, node in enumerate(answers.nodes):
        joined = [network for network, names in joining.items() if node.name in names]
        try:
            _conduits(answers, node, joined, node_nics(node))
        except ConduitError as exc:
            at = ("hardware", "nics") if has_inventory(node) else ("macs",)
            yield Finding(("nodes", index, *at), str(exc))
