"""Checks of the admin network before the admin node starts serving DHCP, TFTP and HTTP.

As Mirantis' fuelmenu did: the admin address must be on the admin interface, the ports the
provisioner serves on must be free, and no other DHCP server may answer on the segment (two
servers racing to answer PXE clients boot nodes into the wrong installer, or none at all).
The DHCP probe sends a real DHCPDISCOVER, so it needs root.

With a Chef server, the package mirror must list the Chef client the installers install
(:mod:`wizard.provisioning.mirror`): else every node finds out at the end of its install.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from wizard.provisioning import mirror as mirrors

MAGIC_COOKIE = b"\x63\x82\x53\x63"
DISCOVER, OFFER = 1, 2
PROBE_TIMEOUT = 5.0
"""Seconds to collect offers: dnsmasq pings an address for 3 s before offering it."""
PARAMETERS = bytes([1, 3, 6, 15, 28, 51, 54, 66, 67])
"""Option 55: subnet mask, router, DNS, domain, broadcast, lease, server id, TFTP server, file."""


class PreflightError(Exception):
    """A check could not be run at all."""


@dataclass(frozen=True)
class DhcpOffer:
    """A DHCPOFFER: the server that sent it and the address it offered."""

    server: str
    address: str


@dataclass
class PreflightReport:
    """Problems refuse the start; notes are for the operator's information."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _discover(xid: int, mac: bytes) -> bytes:
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                         bytes(4), bytes(4), bytes(4), bytes(4), mac, b"", b"")
    options = bytes([53, 1, DISCOVER, 55, len(PARAMETERS)]) + PARAMETERS + bytes([255])
    return header + MAGIC_COOKIE + options


def _options(data: bytes) -> dict[int, bytes]:
    """Options of a DHCP packet from its magic cookie on; a truncated one ends the list."""
    options: dict[int, bytes] = {}
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if i + 1 >= len(data) or i + 2 + data[i + 1] > len(data):
            break
        options[data[i]] = data[i + 2:i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    return options


def _offer(data: bytes, xid: int, source: str) -> DhcpOffer | None:
    """The offer in a reply to our DISCOVER, or None for anything else."""
    if len(data) < 240 or data[0] != 2 or data[4:8] != struct.pack("!I", xid):
        return None
    if data[236:240] != MAGIC_COOKIE:
        return None
    options = _options(data)
    if options.get(53) != bytes([OFFER]):
        return None
    server = options.get(54, b"")
    return DhcpOffer(socket.inet_ntoa(server) if len(server) == 4 else source,
                     socket.inet_ntoa(data[16:20]))


def probe_dhcp(interface: str, timeout: float = PROBE_TIMEOUT) -> list[DhcpOffer]:
    """Broadcast a DHCPDISCOVER out of ``interface``; every offer for it within ``timeout``."""
    try:
        mac = bytes.fromhex(Path(f"/sys/class/net/{interface}/address").read_text()
                            .strip().replace(":", ""))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except (OSError, ValueError) as err:
        raise PreflightError(f"cannot probe for DHCP servers on {interface}: {err}") from err
    with sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            sock.bind(("0.0.0.0", 68))
            xid = secrets.randbits(32)
            sock.sendto(_discover(xid, mac), ("255.255.255.255", 67))
        except OSError as err:
            raise PreflightError(
                f"cannot probe for DHCP servers on {interface} (UDP port 68): {err}") from err
        offers: list[DhcpOffer] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, (source, _port) = sock.recvfrom(4096)
            except TimeoutError:
                break
            if offer := _offer(data, xid, source):
                offers.append(offer)
        return offers


def check_ports(address: str, web_port: int) -> list[str]:
    """One message per port the provisioner needs that cannot be bound."""
    problems = []
    for kind, host, port, service in ((socket.SOCK_DGRAM, "0.0.0.0", 67, "DHCP"),
                                      (socket.SOCK_DGRAM, address, 69, "TFTP"),
                                      (socket.SOCK_STREAM, address, web_port, "HTTP")):
        protocol = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
        with socket.socket(socket.AF_INET, kind) as probe:
            # a TCP server reuses the address (so TIME_WAIT does not count); a UDP one must not
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, kind == socket.SOCK_STREAM)
            try:
                probe.bind((host, port))
            except OSError as err:
                problems.append(f"{protocol} port {port} ({service}) on {host} cannot be bound: "
                                f"{err.strerror}")
    return problems


def check_address(interface: str, address: str) -> str | None:
    """None when ``address`` is on ``interface``, else what the interface has instead."""
    shown = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", interface],
                           capture_output=True, text=True)
    if shown.returncode != 0:
        return f"{address} is not on {interface}: {shown.stderr.strip()}"
    links = json.loads(shown.stdout or "[]")
    infos = [info for link in links for info in link.get("addr_info", [])]
    if any(info["local"] == address for info in infos):
        return None
    has = ", ".join(f"{info['local']}/{info['prefixlen']}" for info in infos) or "no IPv4 address"
    return f"{address} is not on {interface} (it has {has})"


def check_chef_mirror(mirror: str, os_id: str, own_url: str, *,
                      timeout: float = mirrors.TIMEOUT) -> PreflightReport:
    """Whether ``mirror`` lists the Chef client for ``os_id``: a problem when it does not,
    or cannot be asked; a note when it does, or when this check cannot tell. ``own_url``
    is this admin node's provisioner, which cannot be asked before it serves."""
    report = PreflightReport()
    base, own = mirror.rstrip("/"), own_url.rstrip("/")
    if base == own or base.startswith(own + "/"):
        report.notes.append(f"chef-client in the mirror not checked: {mirror} is on this "
                            f"admin node's own provisioner ({own_url}), which starts after "
                            "the preflight")
        return report
    package = mirrors.CHEF_PACKAGE
    try:
        found = mirrors.find_package(mirror, os_id, package, timeout=timeout)
    except mirrors.MirrorUnsupported as exc:
        report.notes.append(f"chef-client in the mirror not checked: {exc}")
    except mirrors.MirrorError as exc:
        report.problems.append(f"cannot check that the mirror {mirror} has chef-client for "
                               f"{os_id}: {exc}")
    else:
        if found is None:
            report.problems.append(
                f"the mirror {mirror} has no package {package!r} (chef-client) for {os_id} "
                f"in {mirrors.searched(os_id)}: every node would install without its Chef "
                "client; add the package to the mirror, or unset chef.server_url")
        else:
            report.notes.append(f"the mirror has chef-client for {os_id}: {found}")
    return report


def run_preflight(interface: str, address: str, web_port: int, *,
                  allow_foreign_dhcp: bool = False, timeout: float = PROBE_TIMEOUT,
                  chef_mirror: tuple[str, str] | None = None) -> PreflightReport:
    """All checks: the admin address, the ports, then other DHCP servers on the segment;
    with ``chef_mirror`` (the mirror's URL, the OS it installs), that it has chef-client."""
    report = _check_network(interface, address, web_port, allow_foreign_dhcp, timeout)
    if chef_mirror is not None:
        found = check_chef_mirror(*chef_mirror, f"http://{address}:{web_port}")
        report.problems += found.problems
        report.notes += found.notes
    return report


def _check_network(interface: str, address: str, web_port: int, allow_foreign_dhcp: bool,
                   timeout: float) -> PreflightReport:
    """The admin address, then the ports and other DHCP servers (which need it)."""
    report = PreflightReport()
    missing = check_address(interface, address)
    if missing:
        report.problems.append(missing)
        report.notes.append(f"port checks and DHCP probe on {interface} skipped: the admin "
                            "address is missing")
        return report
    report.problems += check_ports(address, web_port)
    try:
        offers = probe_dhcp(interface, timeout)
    except PreflightError as err:
        report.problems.append(str(err))
        return report
    if not offers:
        report.notes.append(f"no other DHCP server answered on {interface} within {timeout:g} s")
        return report
    servers = ", ".join(sorted({offer.server for offer in offers}))
    found = f"another DHCP server answers on {interface}: {servers}"
    if allow_foreign_dhcp:
        report.notes.append(f"{found} (allowed by --allow-foreign-dhcp)")
    else:
        report.problems.append(f"{found}; stop it, or start anyway with --allow-foreign-dhcp")
    return report
