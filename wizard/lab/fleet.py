"""The lab's BMC fleet: N fake BMCs in one process, each on its own loopback address.

Addresses come from a loopback block (default 127.1.0.0/22: up to 1,022 BMCs; one process
serves them all through pyghmi's select loop, which caps at 1,024 sockets). Every BMC
listens on the IPMI port 623 when the process may bind it (root), else on 10623 — same
port for all, so a sweep of the block needs no per-address port. Hardware comes from a
seed, so the same seed always gives the same fleet.

Run by ``crowbar-wizard lab up`` as ``python -m wizard.lab.fleet DIR``, where ``DIR`` holds
``fleet.json`` (what to serve: ``lab rack`` appends to it, and the running fleet serves
what it gains); each BMC's state is kept in ``DIR/bmcs/<address>.json``.
Behind each BMC a node agent (``wizard.lab.agent``) acts on network boots.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import multiprocessing
import os
import random
import select
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import netaddr

from wizard.base.yamlfile import write_atomic
from wizard.hardware import pyghmi_io
from wizard.lab.agent import NodeAgents
from wizard.lab.bmc import FakeBmc, Faults, Hardware, ServerState

DEFAULT_NETWORK = "127.1.0.0/22"
LAB_USERNAME = "crowbar"
LAB_PASSWORD = "crowbar-lab"
PRIVILEGED_PORT, UNPRIVILEGED_PORT = 623, 10623
EXIT_ADDRESS_UNAVAILABLE = 3
"""The fleet's exit status when a BMC's address is held by another process (or is not on
this machine): ``lab up`` then says what holds it rather than show a traceback."""
_VENDORS = [
    ("Dell Inc.", ["PowerEdge R650", "PowerEdge R750", "PowerEdge R740xd2"]),
    ("Lenovo", ["ThinkSystem SR650", "ThinkSystem SR630"]),
    ("Supermicro", ["SYS-1029U-TRT", "SSG-6049P-E1CR36L"]),
    ("HPE", ["ProLiant DL380 Gen10", "ProLiant DL360 Gen10"]),
]


def default_port() -> int:
    """623 when this process may bind privileged ports, else 10623."""
    return PRIVILEGED_PORT if os.geteuid() == 0 else UNPRIVILEGED_PORT


@dataclass
class BmcSpec:
    """One fake BMC: where it listens and the server behind it."""

    address: str
    port: int
    mac: str
    hardware: Hardware
    faults: Faults = field(default_factory=Faults)


@dataclass
class FleetSpec:
    """A whole fleet, as written to ``fleet.json``."""

    network: str
    seed: int
    username: str
    password: str
    bmcs: list[BmcSpec]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FleetSpec:
        data = json.loads(text)
        data["bmcs"] = [
            BmcSpec(address=b["address"], port=b["port"], mac=b["mac"],
                    hardware=Hardware(**b["hardware"]), faults=Faults(**b["faults"]))
            for b in data["bmcs"]
        ]
        return cls(**data)


def _mac(rng: random.Random, prefix: int) -> str:
    value = (prefix << 24) | rng.getrandbits(24)
    return str(netaddr.EUI(value, dialect=netaddr.mac_unix_expanded))


def plan_fleet(count: int, *, seed: int = 0, network: str = DEFAULT_NETWORK,
               port: int | None = None, faults: dict[int, Faults] | None = None) -> FleetSpec:
    """``count`` BMCs with hardware drawn from ``seed``; ``faults`` by BMC index."""
    try:
        block = netaddr.IPNetwork(network)
    except (netaddr.AddrFormatError, ValueError):
        raise ValueError(f"{network!r} is not a network (CIDR, e.g. {DEFAULT_NETWORK})") from None
    if block.version != 4:
        raise ValueError(f"{network} is not an IPv4 block (the lab's BMCs are on 127.0.0.0/8)")
    hosts = list(block.iter_hosts())
    if not 1 <= count <= min(len(hosts), 1000):
        raise ValueError(f"a lab fleet on {block} holds 1 to {min(len(hosts), 1000)} BMCs")
    rng = random.Random(seed)
    bmcs = []
    for index in range(count):
        vendor, models = rng.choice(_VENDORS)
        model = rng.choice(models)
        storage = "xd2" in model or "SSG" in model
        hardware = Hardware(
            vendor=vendor, model=model, serial=f"LAB{seed:04d}{index:05d}",
            cpu_cores=rng.choice([16, 24, 32, 48, 64]),
            memory_gb=rng.choice([64, 128, 256, 384, 512]),
            disks=rng.choice([12, 16, 24]) if storage else rng.choice([2, 2, 4]),
            nic_macs=[_mac(rng, 0x525400) for _ in range(2)],
            virtualization=not storage,
        )
        bmcs.append(BmcSpec(address=str(hosts[index]), port=port or default_port(),
                            mac=_mac(rng, 0x02C0BA), hardware=hardware,
                            faults=(faults or {}).get(index, Faults())))
    return FleetSpec(network=str(block), seed=seed, username=LAB_USERNAME,
                     password=LAB_PASSWORD, bmcs=bmcs)


def _state_file(directory: Path, address: str) -> Path:
    return directory / "bmcs" / f"{address}.json"


def read_states(directory: Path) -> dict[str, dict[str, Any]]:
    """Every BMC's last recorded identity and state, by address."""
    states = {}
    for path in sorted((directory / "bmcs").glob("*.json")):
        try:
            states[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now; the next read has it
    return states


class _ReadySockets:
    """pyghmi's IO loop selects on every socket, then reads every socket to drain it: with a
    socket per BMC that is 1,000 ``recvfrom`` calls per packet, and a 1,000-BMC fleet spends
    20 s of CPU on them for one IPMI command each. This stands in for its ``select`` module
    and remembers what was readable, so that draining reads only those."""

    def __init__(self, session_module: Any):
        """``session_module``: pyghmi.ipmi.private.session (pyghmi has no types)."""
        self._module = session_module
        self._graball = session_module._io_graball
        self._ready: list[Any] | None = None
        session_module.select = self
        session_module._io_graball = self._drain

    def select(self, read: list[Any], write: Sequence[Any], error: Sequence[Any],
               timeout: float) -> tuple[list[Any], list[Any], list[Any]]:
        """``read``: pyghmi's sockets, some wrapped (anything with a ``fileno``)."""
        found = select.select(read, write, error, timeout)
        self._ready = found[0]
        return found

    def _drain(self, sockets: list[Any], waiters: dict[Any, Any]) -> Any:
        ready, self._ready = self._ready, None
        return self._graball(ready if ready is not None else sockets, waiters)

    def __getattr__(self, name: str) -> object:
        return getattr(select, name)


RACK_POLL = 1.0
"""Seconds between looks at ``fleet.json`` for servers racked while the fleet runs."""


def serve(directory: Path) -> None:
    """Serve the fleet in ``directory/fleet.json`` until SIGTERM or SIGINT; BMCs that
    ``lab rack`` appends to it meanwhile are served from then on (the others keep running:
    a deploy on the lab goes on)."""
    (directory / "bmcs").mkdir(exist_ok=True)
    previous = read_states(directory)
    import pyghmi.ipmi.private.session as ipmisession

    pyghmi_io.install()
    _ReadySockets(ipmisession)
    ipmisession.Session._assignsocket()  # a plain socket first: pyghmi wakes its loop on it

    def record(bmc: FakeBmc) -> None:  # a simulation's state: no fsync
        write_atomic(_state_file(directory, bmc.address),
                     json.dumps(bmc.snapshot()) + "\n", mode=0o644, sync=False)

    boots = _start_agents(directory)
    served: dict[str, FakeBmc] = {}

    def serve_new(spec: FleetSpec, *, starting: bool) -> None:
        for item in spec.bmcs:
            if item.address in served:
                continue
            saved = previous.get(item.address, {}).get("state")
            try:
                bmc = FakeBmc(address=item.address, port=item.port, username=spec.username,
                              password=spec.password, mac=item.mac, hardware=item.hardware,
                              state=ServerState(**saved) if saved else None,
                              faults=item.faults, on_change=record,
                              on_boot=lambda bmc, device: boots.put(
                                  (bmc.hardware.nic_macs[0], device, asdict(bmc.hardware),
                                   bmc.address)))
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                    raise
                logging.error("%s:%d: %s", item.address, item.port, exc.strerror)
                if starting:
                    sys.exit(EXIT_ADDRESS_UNAVAILABLE)
                continue  # racked onto an address taken since lab rack looked: not served
            record(bmc)
            served[item.address] = bmc
        _wake(ipmisession)  # its select() has the sockets of before
        write_atomic(directory / "ready", f"{len(served)}\n", mode=0o644, sync=False)

    fleet = directory / "fleet.json"
    serve_new(FleetSpec.from_json(fleet.read_text()), starting=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    seen, look = fleet.stat().st_mtime_ns, time.monotonic() + RACK_POLL
    while True:
        ipmisession.Session.wait_for_rsp(RACK_POLL)
        if time.monotonic() < look:  # it returns as packets come: not a stat for each
            continue
        look = time.monotonic() + RACK_POLL
        with contextlib.suppress(OSError):
            if (changed := fleet.stat().st_mtime_ns) != seen:
                seen = changed
                spec = FleetSpec.from_json(fleet.read_text())
                if len(spec.bmcs) > len(served):
                    logging.info("racked: %d servers more", len(spec.bmcs) - len(served))
                    serve_new(spec, starting=False)


def _wake(session_module: Any) -> None:
    """Break pyghmi's I/O thread out of its select(), so that it selects the new sockets
    too (pyghmi wakes it the same way: a byte to its first socket)."""
    first = session_module.iosockets[0]
    first.sendto(b"\x01", (session_module.myself or "127.0.0.1", first.getsockname()[1]))


Boots: TypeAlias = "multiprocessing.queues.Queue[tuple[str, str, dict[str, Any], str] | None]"
"""Boots for the node agents: (MAC, boot device, hardware, the server's address); None
ends them."""


def _start_agents(directory: Path) -> Boots:
    """The node agents in a process of their own (they must not slow the BMCs' loop); the
    queue takes (MAC, boot device, hardware, the server's address) for every boot."""
    context = multiprocessing.get_context("spawn")
    boots: Boots = context.Queue()
    context.Process(target=_agents_main, args=(directory, boots), daemon=True,
                    name="lab-agents").start()
    return boots


def _agents_main(directory: Path, boots: Boots) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    agents = NodeAgents(directory)
    with contextlib.suppress(KeyboardInterrupt):
        while (boot := boots.get()) is not None:
            agents.booted(*boot)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a lab BMC fleet (see lab up).")
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.directory)


if __name__ == "__main__":
    main()
