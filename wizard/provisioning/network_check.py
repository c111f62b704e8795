"""The network check: a machine waiting in the discovery image brings up its planned
network on its real kernel, and says what the kernel made of it.

Before a node installs, its cabling and the switch ports (bond partners, tagged VLANs) can
be verified with the very plan its installer will configure (:class:`NodeNetwork`). The
admin node hands the image :func:`instructions` (one word-only line per step, so the
image's shell never evaluates what it reads); the image applies them with the kernel's own
interfaces (sysfs bonding, 802.1Q) and posts a :class:`CheckResult`, which
:func:`compare` holds against the plan.

The NIC the image booted from carries its conversation with the admin node, so the image
leaves it as DHCP configured it: a bond holding it is not built, its planned address is
compared with, not put in place of, the leased one, and a default route through it stays
DHCP's. VLANs on top of it are made: they do not disturb its untagged traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from wizard.answers.node_network import Device, NodeNetwork
from wizard.base.fields import IPv4, Mac
from wizard.base.model import Model

_NAME = r"^[A-Za-z0-9_.-]{1,15}$"


def instructions(plan: NodeNetwork, request: str) -> str:
    """What the image applies for ``plan``, as lines of words (``request`` names the check).

    ``nic NAME MAC MTU`` · ``bond NAME MODE MIIMON MTU NIC...`` · ``vlan NAME PARENT ID MTU``
    · ``address DEVICE CIDR`` · ``route ROUTER DEVICE`` · ``end``
    """
    lines = [f"check-network {request}"]
    mtus = {nic: device.mtu for device in plan.devices for nic in device.nics}
    lines += [f"nic {nic.name} {nic.mac} {mtus.get(nic.name, 1500) or 1500}"
              for nic in plan.nics]
    for device in plan.devices:
        if device.kind == "bond":
            lines.append(f"bond {device.name} {device.bond_mode} {device.miimon} "
                         f"{device.mtu or 1500} {' '.join(device.nics)}")
        elif device.kind == "vlan":
            lines.append(f"vlan {device.name} {device.parent} {device.vlan} "
                         f"{device.mtu or 1500}")
    for device in plan.devices:
        lines += [f"address {device.name} {address.cidr}" for address in device.addresses]
    if plan.router is not None and plan.gateway is not None:
        lines.append(f"route {plan.router} {_carrier(plan, plan.gateway.network)}")
    return "\n".join([*lines, "end"]) + "\n"


def _carrier(plan: NodeNetwork, network: str) -> str:
    return next(device.name for device in plan.devices
                if any(address.network == network for address in device.addresses))


class CheckedDevice(Model):
    """One interface as the image's kernel has it after applying the plan."""

    name: str = Field(pattern=_NAME, description="The plan's name (nicN, bondN, DEV.VLAN).")
    kernel: str = Field("", pattern=r"^[A-Za-z0-9_.-]{0,15}$")
    mac: Mac | None = None
    mtu: int | None = Field(None, ge=68, le=65536)
    up: bool = False
    carrier: bool = False
    slaves: list[Mac] = Field(default_factory=list, max_length=64)
    bond_mode: str | None = Field(None, pattern=r"^[a-z0-9.-]{1,20}$")
    vlan: int | None = Field(None, ge=0, le=4095)
    parent: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,15}$",
                               description="A VLAN's parent, by the plan's name.")
    addresses: list[str] = Field(default_factory=list, max_length=64)


class CheckResult(Model):
    """What the discovery image posts after a network check."""

    request: str = Field(pattern=r"^[0-9a-f]{8,64}$")
    boot: str = Field(pattern=_NAME, description="The plan's name for the booting NIC.")
    devices: list[CheckedDevice] = Field(default_factory=list, max_length=256)
    default_via: IPv4 | None = None
    default_dev: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,15}$")
    errors: list[str] = Field(default_factory=list, max_length=64)


@dataclass(frozen=True)
class Finding:
    """One point of the plan, and what the kernel made of it (``ok`` None: for the
    operator's information, neither right nor wrong)."""

    subject: str
    planned: str
    found: str
    ok: bool | None


def compare(plan: NodeNetwork, result: CheckResult) -> list[Finding]:
    """Every device, bond, VLAN, address and the default route of ``plan``, checked."""
    found = {device.name: device for device in result.devices}
    macs = {nic.name: nic.mac for nic in plan.nics}
    kept = {device.name for device in plan.devices if result.boot in device.nics}
    findings = [Finding("image", "", error, False) for error in result.errors]
    for device in plan.devices:
        have = found.get(device.name)
        if have is None:
            findings.append(Finding(device.name, _describe(device, macs), "missing", False))
            continue
        findings += _device_findings(device, have, macs, device.name in kept)
    if plan.router is not None and plan.gateway is not None:
        carrier = _carrier(plan, plan.gateway.network)
        kernel = found[carrier].kernel if carrier in found else carrier
        via = f"via {result.default_via} dev {result.default_dev}"
        if carrier in kept:
            ok = result.default_via == plan.router
        else:
            ok = result.default_via == plan.router and result.default_dev == kernel
        findings.append(Finding("default route", f"via {plan.router} dev {carrier}",
                                via if result.default_via else "none", ok))
    return findings


def _describe(device: Device, macs: dict[str, str]) -> str:
    if device.kind == "bond":
        return f"{device.bond_mode} of {', '.join(f'{n} ({macs[n]})' for n in device.nics)}"
    if device.kind == "vlan":
        return f"VLAN {device.vlan} on {device.parent}"
    return f"NIC {macs.get(device.nics[0], '?')}"


def _device_findings(device: Device, have: CheckedDevice, macs: dict[str, str],
                     kept: bool) -> list[Finding]:
    name = f"{device.name} ({have.kernel})" if have.kernel not in ("", device.name) \
        else device.name
    if kept and device.kind == "bond":
        return [Finding(name, _describe(device, macs), "not built: it holds the NIC the "
                        "image booted from and talks to the admin node over", None)]
    findings = [Finding(name, "link up", "link up" if have.carrier else "no link",
                        have.carrier)]
    if device.kind == "bond":
        findings.append(Finding(name, f"mode {device.bond_mode}",
                                f"mode {have.bond_mode or '?'}",
                                have.bond_mode == device.bond_mode))
        planned = sorted(macs[nic] for nic in device.nics)
        findings.append(Finding(name, "slaves " + ", ".join(planned),
                                "slaves " + (", ".join(sorted(have.slaves)) or "none"),
                                sorted(have.slaves) == planned))
    elif device.kind == "vlan":
        findings.append(Finding(name, f"VLAN {device.vlan} on {device.parent}",
                                f"VLAN {have.vlan} on {have.parent}",
                                have.vlan == device.vlan and have.parent == device.parent))
    for address in device.addresses:
        if kept:
            findings.append(Finding(name, f"address {address.cidr}",
                                    "leased " + (", ".join(have.addresses) or "nothing")
                                    + " (the installer sets the planned one)", None))
        else:
            findings.append(Finding(name, f"address {address.cidr}",
                                    ", ".join(have.addresses) or "no address",
                                    address.cidr in have.addresses))
    return findings
