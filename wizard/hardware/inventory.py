"""Discovered nodes: what the IPMI sweep and PXE-booted inventory say, merged per server.

A server found by its BMC and again by its PXE-booted discovery image is one node: two
reports are the same server when they share the system serial number, a NIC MAC, or the
BMC's MAC. Nodes are named as Crowbar named them, ``d`` + the first NIC MAC with dashes.

A PXE report comes over the admin network, where anyone can post: it may fill in what is
not known of a server yet, but never change what is (its serial, BMC, NICs). A report that
would is an :class:`InventoryConflict`, and the node stays as it was: otherwise a forged
report could point a server's BMC elsewhere or add a NIC that "add to answers" then writes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import Field, model_validator

from wizard.answers import Hardware, Nic, Node
from wizard.base.fields import CONTROL_CHARACTERS, IPv4, Mac
from wizard.base.model import Model
from wizard.hardware.ipmi import BmcInventory


class NicReport(Model):
    """One NIC as the discovery image saw it (``bus``: its place on the bus, which orders
    NICs as Crowbar's ``1g1``, ``10g2`` names count them)."""

    mac: Mac
    name: str = Field(max_length=15, pattern=r"^[A-Za-z0-9_.:-]+$")
    bus: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")
    speed_mbps: int | None = Field(None, ge=1, le=10_000_000)
    link: bool = False
    driver: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class DriveReport(Model):
    """One disk as the discovery image saw it."""

    name: str = Field(max_length=32, pattern=r"^[A-Za-z0-9_.!-]+$")
    size_bytes: int = Field(ge=0, le=1 << 60)
    serial: str | None = Field(None, max_length=128)
    model: str | None = Field(None, max_length=128)


class InventoryReport(Model):
    """What a PXE-booted discovery image posts about its machine."""

    mac: Mac = Field(description="The NIC the machine booted from.")
    macs: list[Mac] = Field(min_length=1, max_length=64)
    serial: str | None = Field(None, max_length=128)
    manufacturer: str | None = Field(None, max_length=128)
    model: str | None = Field(None, max_length=128)
    cpu_cores: int = Field(ge=1, le=65536)
    memory_gb: int = Field(ge=1, le=1 << 20)
    disks: int = Field(0, ge=0, le=4096)
    virtualization: bool = True
    bmc_mac: Mac | None = None
    bmc_address: IPv4 | None = None
    memory_mb: int | None = Field(None, ge=1, le=1 << 30)
    bmc_present: bool | None = Field(None, description="An in-band IPMI interface answered.")
    nics: list[NicReport] = Field(default_factory=list, max_length=64)
    drives: list[DriveReport] = Field(default_factory=list, max_length=4096)

    @model_validator(mode="after")
    def _boot_nic_listed(self) -> InventoryReport:
        if self.mac not in self.macs:
            raise ValueError(f"mac {self.mac} is not among macs")
        unlisted = sorted({nic.mac for nic in self.nics} - set(self.macs))
        if unlisted:
            raise ValueError(f"nics name {', '.join(unlisted)}, which are not among macs")
        return self


@dataclass
class DiscoveredNode:
    """One server, from every report about it."""

    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    bmc_address: str | None = None
    bmc_port: int = 623
    bmc_mac: str | None = None
    macs: list[str] = field(default_factory=list)
    cpu_cores: int | None = None
    memory_gb: int | None = None
    disks: int | None = None
    virtualization: bool | None = None
    memory_mb: int | None = None
    nics: list[dict[str, Any]] = field(default_factory=list)
    """The discovery image's NICs (:class:`NicReport` fields), in bus order."""
    drives: list[dict[str, Any]] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        """Crowbar's name for a discovered node: ``d52-54-00-12-34-56``."""
        ident = self.macs[0] if self.macs else self.bmc_mac or self.serial or "unknown"
        return "d" + ident.lower().replace(":", "-").replace(" ", "-")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"sources": sorted(self.sources)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscoveredNode:
        return cls(**(data | {"sources": set(data.get("sources", []))}))

    def to_answers_node(self, *, bmc: bool = True) -> Node | None:
        """The node as the answers file holds it (None while no NIC MAC is known); without
        ``bmc``, no BMC address (the plan gives it one, or the lab cables its own)."""
        if not self.macs:
            return None
        known: dict[str, Any] = {}  # only what is known: an unknown is left out of the file
        if self.cpu_cores and self.memory_gb:
            nics = [Nic(mac=nic["mac"], speed_mbps=nic.get("speed_mbps"), name=nic.get("name"))
                    for nic in self.nics]
            known["hardware"] = Hardware(
                vendor=_one_line(self.manufacturer), model=_one_line(self.model),
                serial=_one_line(self.serial),
                cpu_cores=self.cpu_cores, memory_gb=self.memory_gb, disks=self.disks or 0,
                virtualization=self.virtualization if self.virtualization is not None else True,
                **({"nics": nics} if nics else {}))
        if bmc and self.bmc_address:
            known["bmc_address"] = self.bmc_address
        return Node(name=self.name, macs=self.macs, **known)


class InventoryConflict(ValueError):
    """A report that contradicts what is known of the server it names."""


def _contradictions(node: DiscoveredNode, report: InventoryReport) -> list[str]:
    """What ``report`` would change of ``node``'s identity (empty: it may merge)."""
    found = [f"{name} {mine} is known as {theirs}"
             for name, mine, theirs in (("serial", report.serial, node.serial),
                                        ("BMC MAC", report.bmc_mac, node.bmc_mac),
                                        ("BMC address", report.bmc_address, node.bmc_address))
             if mine and theirs and mine != theirs]
    new_macs = set(report.macs) - set(node.macs)
    if node.macs and new_macs:
        found.append(f"NICs {', '.join(sorted(new_macs))} are not among the known "
                     f"{', '.join(node.macs)}")
    return found


def _identifiers(serial: str | None, macs: list[str], bmc_mac: str | None
                 ) -> list[tuple[str, str]]:
    return ([("serial", serial)] if serial else []) + [("mac", mac) for mac in macs] + (
        [("bmc", bmc_mac)] if bmc_mac else [])


def _one_line(text: str | None) -> str | None:
    """A BMC's free text as the answers file can hold it: control characters (NUL padding,
    line breaks) become spaces, runs of spaces one; None when nothing is left."""
    if text is None:
        return None
    return " ".join(CONTROL_CHARACTERS.sub(" ", text).split()) or None


class Inventory:
    """Every discovered node, merged across sweeps and PXE reports.

    Nodes are indexed by their identifiers, so a report costs the same with ten thousand
    machines known as with none.
    """

    def __init__(self) -> None:
        self.nodes: list[DiscoveredNode] = []
        self._index: dict[tuple[str, str], int] = {}
        """Identifier -> position in ``nodes`` of the first node that holds it."""

    def find(self, serial: str | None, macs: list[str],
             bmc_mac: str | None) -> DiscoveredNode | None:
        """The first node (in discovery order) sharing any of these identifiers."""
        position = self._locate(serial, macs, bmc_mac)
        return None if position is None else self.nodes[position]

    def restore(self, node: DiscoveredNode) -> None:
        """Take in a node as it was recorded before."""
        self.nodes.append(node)
        self._indexed(node, len(self.nodes) - 1)

    def _locate(self, serial: str | None, macs: list[str], bmc_mac: str | None) -> int | None:
        positions = [self._index[key] for key in _identifiers(serial, macs, bmc_mac)
                     if key in self._index]
        return min(positions) if positions else None

    def _node_for(self, source: str, serial: str | None, macs: list[str],
                  bmc_mac: str | None) -> tuple[DiscoveredNode, bool, int]:
        """The node these identifiers belong to, made if there is none; whether it is new;
        its position."""
        position = self._locate(serial, macs, bmc_mac)
        new = position is None
        if position is None:
            self.nodes.append(DiscoveredNode())
            position = len(self.nodes) - 1
        node = self.nodes[position]
        node.sources.add(source)
        return node, new, position

    def _indexed(self, node: DiscoveredNode, position: int) -> None:
        """Index what ``node`` holds now (identifiers only grow as reports merge)."""
        for key in _identifiers(node.serial, node.macs, node.bmc_mac):
            self._index.setdefault(key, position)

    def add_bmc(self, info: BmcInventory) -> tuple[DiscoveredNode, bool]:
        """Record a BMC's inventory; returns the node and whether it is new."""
        node, new, position = self._node_for("ipmi", info.serial, info.nic_macs, info.mac)
        node.bmc_address, node.bmc_port = info.address, info.port
        node.bmc_mac = info.mac or node.bmc_mac
        node.serial = info.serial or node.serial
        node.manufacturer = info.manufacturer or node.manufacturer
        node.model = info.model or node.model
        node.macs = list(dict.fromkeys([*node.macs, *info.nic_macs]))
        for attr in ("cpu_cores", "memory_gb", "disks", "virtualization"):
            value = getattr(info, attr)
            if value is not None:
                setattr(node, attr, value)
        self._indexed(node, position)
        return node, new

    def add_report(self, report: InventoryReport) -> tuple[DiscoveredNode, bool]:
        """Record what a discovery image posted; returns the node and whether it is new.

        Raises :class:`InventoryConflict` (and changes nothing) when the report contradicts
        the known server it matches.
        """
        known = self.find(report.serial, report.macs, report.bmc_mac)
        if known is not None:
            contradictions = _contradictions(known, report)
            if contradictions:
                raise InventoryConflict(f"report from {report.mac} contradicts {known.name}: "
                                        + "; ".join(contradictions))
        node, new, position = self._node_for("pxe", report.serial, report.macs,
                                             report.bmc_mac)
        ordered = [report.mac, *report.macs] if new else [*node.macs, *report.macs]
        node.macs = list(dict.fromkeys(ordered))
        node.serial = report.serial or node.serial
        node.manufacturer = report.manufacturer or node.manufacturer
        node.model = report.model or node.model
        node.bmc_mac = report.bmc_mac or node.bmc_mac
        node.bmc_address = report.bmc_address or node.bmc_address
        node.cpu_cores, node.memory_gb = report.cpu_cores, report.memory_gb
        node.disks, node.virtualization = report.disks, report.virtualization
        node.memory_mb = report.memory_mb or node.memory_mb
        if report.nics:
            node.nics = [nic.model_dump() for nic in sorted(report.nics,
                                                             key=lambda nic: nic.bus)]
        if report.drives:
            node.drives = [drive.model_dump() for drive in report.drives]
        self._indexed(node, position)
        return node, new
