"""Loopback addresses for a lab's BMCs: which are free, which block to take, who holds one.

Whether a fleet may take its addresses is what it will meet: a UDP socket bound to each
address and port, without ``SO_REUSEADDR`` (as pyghmi binds them), then closed. Which block a
lab without ``--network`` takes, and who holds an address, are read from the kernel's socket
table (``/proc/net/udp``, ``udp6``) and the processes' descriptors (``/proc/PID/fd``): a
lab's fleet is recognised by its command line (``python -m wizard.lab.fleet DIR``), whether
``DIR`` still holds that lab or not. Processes of other users are seen only by root; they
are then "a process of another user".
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from pathlib import Path

import netaddr

Endpoint = tuple[str, int]

AUTOMATIC_RANGE = "127.1.0.0/16"
"""Where a lab without ``--network`` looks for a block, from the default one on."""


def unavailable(endpoints: Iterable[Endpoint]) -> dict[Endpoint, int]:
    """The endpoints a BMC could not bind now, with the errno (``EADDRINUSE``: held;
    ``EADDRNOTAVAIL``: not an address of this machine)."""
    failed = {}
    for address, port in endpoints:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((address, port))
            except OSError as exc:
                failed[(address, port)] = exc.errno or 0
    return failed


def free_block(port: int, *, first: str, within: str = AUTOMATIC_RANGE) -> str | None:
    """The first block the size of ``first``, from ``first`` on through ``within``, none of
    whose addresses is bound on ``port``; None when every one has some bound.

    Read from the kernel's socket table rather than probed by binding, so that looking for
    a block never makes another lab's fleet, binding right then, fail; a lab that takes
    the block meanwhile is met by the fleet's own bind."""
    bound = {address for (address, p), _ in _udp_sockets() if p == port}
    if "0.0.0.0" in bound:
        return None
    taken = [netaddr.IPAddress(address) for address in bound]
    size = netaddr.IPNetwork(first)
    for block in netaddr.IPNetwork(within).subnet(size.prefixlen):
        if block.first >= size.first and not any(address in block for address in taken):
            return str(block)
    return None


def holders(endpoints: Iterable[Endpoint]) -> list[str]:
    """What holds the (UDP) ``endpoints``, one description per process, e.g. "the lab in
    /tmp/lab (fleet pid 1234)"; "a process of another user" for those it cannot see."""
    wanted = set(endpoints)
    inodes = {inode for (address, port), inode in _udp_sockets()
              if port in {p for _, p in wanted}
              and (address == "0.0.0.0" or (address, port) in wanted)}
    if not inodes:
        return []
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                        found[int(proc.name)] = describe(int(proc.name))
                        break
    unseen = ["a process of another user"] if not found and os.geteuid() != 0 else []
    return [found[pid] for pid in sorted(found)] + unseen


def fleet_directory(pid: int) -> Path | None:
    """The lab directory of the fleet process ``pid`` (None if it is no lab's fleet)."""
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")[:-1]
        if argv[-3:-1] != [b"-m", b"wizard.lab.fleet"]:
            return None
        directory = Path(os.fsdecode(argv[-1]))
        if not directory.is_absolute():
            directory = Path(os.readlink(f"/proc/{pid}/cwd")) / directory
    except (OSError, IndexError):
        return None
    return directory


def lab_processes(directory: Path) -> list[int]:
    """The processes that a lab of ``directory`` started and that still run, whatever its
    pidfiles say (the directory may have been removed under them): its fleets, and the
    goiardi keeping its keys in ``directory/chef``. Each leads its own process group."""
    chef = os.fsencode(f"--conf-root={directory / 'chef'}")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        pid = int(proc.name)
        with contextlib.suppress(OSError):
            if fleet_directory(pid) == directory or \
                    chef in (proc / "cmdline").read_bytes().split(b"\0"):
                pids.append(pid)
    return pids


def describe(pid: int) -> str:
    """A process as an operator can act on it: a lab by its directory, else its command."""
    directory = fleet_directory(pid)
    if directory is None:
        try:
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes()
            command = " ".join(os.fsdecode(argv).replace("\0", " ").split())
        except OSError:
            command = "?"
        return f"pid {pid} ({command[:80]})"
    try:
        current = int((directory / "fleet.pid").read_text()) == pid
    except (OSError, ValueError):
        current = False
    if current:
        return f"the lab in {directory} (fleet pid {pid})"
    if not directory.exists():
        return (f"a lab whose directory {directory} was removed while it ran (fleet pid {pid};"
                f" `crowbar-wizard lab down` with CROWBAR_LAB_DIR={directory} stops it)")
    return (f"a lab left running from {directory}, which no longer names it (fleet pid {pid}; "
            f"`kill -- -{pid}` stops it)")


def _udp_sockets() -> list[tuple[Endpoint, int]]:
    """The UDP sockets of this network namespace that hold IPv4 endpoints: ((address,
    port), inode); an IPv6 one bound to ``::`` counts as ``0.0.0.0`` (it may be dual-stack)."""
    sockets = []
    for table, words in (("udp", 1), ("udp6", 4)):
        try:
            lines = Path("/proc/net", table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port = fields[1].split(":")
            # printed as 32-bit words in host order
            packed = b"".join(struct.pack("=I", int(address[8 * i:8 * i + 8], 16))
                              for i in range(words))
            ip = ipaddress.ip_address(packed)
            if isinstance(ip, ipaddress.IPv6Address):
                if ip.ipv4_mapped is None and not ip.is_unspecified:
                    continue
                ip = ip.ipv4_mapped or ipaddress.IPv4Address(0)
            sockets.append(((str(ip), int(port, 16)), int(fields[9])))
    return sockets


def problem(endpoints: list[Endpoint], failed: dict[Endpoint, int]) -> str:
    """One line on why a fleet cannot take ``endpoints`` (``failed``: from
    :func:`unavailable`): the ones not on this machine, else what holds them."""
    first = next(e for e in endpoints if e in failed)
    code = failed[first]
    what = f"{first[0]}:{first[1]}"
    if len(failed) > 1:
        what += f" and {len(failed) - 1} more of the {len(endpoints)} BMC addresses"
    if code == errno.EADDRNOTAVAIL:
        return (f"{what} {'are' if len(failed) > 1 else 'is'} not on this machine: the lab's "
                "BMCs take addresses of a loopback block (127.0.0.0/8)")
    if code != errno.EADDRINUSE:
        return f"{what}: {os.strerror(code)}"
    held = holders(e for e, c in failed.items() if c == errno.EADDRINUSE)
    return (f"{what} {'are' if len(failed) > 1 else 'is'} in use by "
            f"{' and '.join(held) or 'another process'}")
