"""``lab up`` / ``lab status`` / ``lab down``: the lab's fleet as a background process.

The fleet (fake BMCs and their node agents) and, when goiardi is installed, a Chef server
run detached (their own sessions), so they outlive the command that started them;
its state lives in the lab directory: ``$CROWBAR_LAB_DIR``, else ``/run/crowbar-wizard/lab``
for root, else ``$XDG_RUNTIME_DIR/crowbar-wizard/lab`` (or ``/tmp/crowbar-wizard-UID/lab``).

Several labs (several directories) run side by side on different loopback blocks: see
:meth:`Lab.up` for which block a lab takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import netaddr

from wizard.base.interrupts import deferred_interrupt
from wizard.base.ownedfs import open_append
from wizard.base.yamlfile import write_atomic
from wizard.hardware.ipmi import IpmiDriver
from wizard.lab.addresses import (
    AUTOMATIC_RANGE,
    free_block,
    holders,
    lab_processes,
    problem,
    unavailable,
)
from wizard.lab.bmc import Faults
from wizard.lab.fleet import (
    DEFAULT_NETWORK,
    EXIT_ADDRESS_UNAVAILABLE,
    FleetSpec,
    plan_fleet,
    read_states,
)
from wizard.lab.goiardi import Goiardi, GoiardiError, find_goiardi

START_TIMEOUT = 20.0


@dataclass(frozen=True)
class LabChef:
    """The lab's Chef server: its URL, and the admin's key (PEM) and where it is kept."""

    url: str
    admin_key: str = field(repr=False)
    key_path: Path
    client: str = "admin"


class LabError(Exception):
    """The lab cannot do what was asked (already running, failed to start, ...)."""


class AddressesUnavailable(LabError):
    """The fleet's BMC addresses are held by another process (another lab, most often), or
    are not on this machine."""


AUTOMATIC_TRIES = 3
"""Blocks a lab without ``--network`` tries: one more lab may take the block it found free
before its fleet binds it."""


def lab_directory() -> Path:
    if os.environ.get("CROWBAR_LAB_DIR"):  # set and not empty: "" must never mean "here"
        return Path(os.environ["CROWBAR_LAB_DIR"]).absolute()
    if os.geteuid() == 0:
        return Path("/run/crowbar-wizard/lab")
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/crowbar-wizard-{os.getuid()}"
    return Path(base) / "crowbar-wizard" / "lab"


@dataclass
class Lab:
    """A lab directory and what runs from it."""

    directory: Path

    @property
    def pidfile(self) -> Path:
        return self.directory / "fleet.pid"

    def spec(self) -> FleetSpec | None:
        path = self.directory / "fleet.json"
        return FleetSpec.from_json(path.read_text()) if path.exists() else None

    def pid(self) -> int | None:
        """The fleet's pid while it runs, else None."""
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def up(self, count: int, *, seed: int = 0, network: str | None = None,
           faults: dict[int, Faults] | None = None) -> FleetSpec:
        """Start a fleet of ``count`` BMCs and wait until every healthy one answers.

        Which loopback block: with ``network``, that one; if another process holds any of
        the fleet's addresses (on its port), :class:`AddressesUnavailable` says which
        process, by its lab directory when it is a lab (also one whose directory was
        removed under it), and nothing is started. Without ``network``, the first
        :data:`DEFAULT_NETWORK`-sized block of :data:`AUTOMATIC_RANGE`, from the default on,
        none of whose addresses is held: so a second lab (``./dev lab``, the wizard's
        Start the lab, a test) comes up beside one that runs, rather than fail on an
        address the operator never chose; an operator who did choose one is told, not moved.
        "Held", for a chosen block: a test socket cannot bind the address and port, as the
        fleet would not; for the search: bound in the kernel's socket table (a probe there
        could make another fleet, binding right then, fail). A lab that takes the found
        block first makes this fleet's bind fail, and the next free block is tried.
        """
        if self.pid() is not None:
            spec = self.spec()
            size = len(spec.bmcs) if spec else "?"
            raise LabError(f"the lab is already up ({size} BMCs, pid {self.pid()}, "
                           f"{self.directory}); run `crowbar-wizard lab down` first")
        spec = plan_fleet(count, seed=seed, network=network or DEFAULT_NETWORK, faults=faults)
        hint = "; give another --network, or none to take a free block"
        if network is not None:
            self._check_addresses(spec, hint)
        if (self.directory / "fleet.json").exists():
            self._stop()  # an old lab's leftovers: what still runs of it (agents, goiardi)
            shutil.rmtree(self.directory)
        elif self.directory.exists() and any(self.directory.iterdir()):
            raise LabError(f"{self.directory} is not empty and holds no lab: give the lab a "
                           "directory of its own (CROWBAR_LAB_DIR)")
        try:
            for attempt in range(1 if network is not None else AUTOMATIC_TRIES):
                if network is None:
                    block = self._free_block(spec.bmcs[0].port)
                    spec = plan_fleet(count, seed=seed, network=block, faults=faults)
                self.directory.mkdir(parents=True, exist_ok=True)
                write_atomic(self.directory / "fleet.json", spec.to_json(), mode=0o644)
                try:
                    self._start()
                    break
                except AddressesUnavailable as exc:
                    if network is not None:  # taken since the check
                        raise AddressesUnavailable(f"{exc}{hint}") from None
                    if attempt + 1 == AUTOMATIC_TRIES:
                        raise
            if find_goiardi() is not None:
                self._start_chef()
        except KeyboardInterrupt:  # no half-started lab left behind
            self.down()
            raise
        return spec

    def _check_addresses(self, spec: FleetSpec, hint: str = "") -> None:
        endpoints = [(b.address, b.port) for b in spec.bmcs]
        failed = unavailable(endpoints)
        if failed:
            raise AddressesUnavailable(problem(endpoints, failed) + hint)

    @staticmethod
    def _free_block(port: int) -> str:
        block = free_block(port, first=DEFAULT_NETWORK)
        if block is None:
            default = netaddr.IPNetwork(DEFAULT_NETWORK).iter_hosts()
            held = holders((str(host), port) for host in default)
            raise AddressesUnavailable(
                f"every block of {AUTOMATIC_RANGE} from {DEFAULT_NETWORK} on has addresses in "
                f"use on port {port} ({DEFAULT_NETWORK} by {' and '.join(held) or 'others'}): "
                "give the lab a block with --network CIDR")
        return block

    @property
    def chef_directory(self) -> Path:
        return self.directory / "chef"

    def _start_chef(self) -> None:
        server = Goiardi(self.chef_directory)
        try:
            server.start(pidfile=self.chef_directory / "goiardi.pid")
        except GoiardiError as exc:
            self.down()
            raise LabError(f"the lab's Chef server did not start: {exc}") from None
        write_atomic(self.chef_directory / "url", server.url + "\n", mode=0o644)

    def chef(self) -> LabChef | None:
        """The lab's Chef server while it runs (None without goiardi)."""
        try:
            url = (self.chef_directory / "url").read_text().strip()
            pid = int((self.chef_directory / "goiardi.pid").read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        key = self.chef_directory / "admin.pem"
        return LabChef(url, key.read_text(), key_path=key)

    def _start(self) -> None:
        spec = self.spec()
        assert spec is not None
        (self.directory / "ready").unlink(missing_ok=True)
        with open_append(self.directory / "fleet.log") as log, deferred_interrupt():
            process = subprocess.Popen(
                [sys.executable, "-m", "wizard.lab.fleet", str(self.directory)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
            write_atomic(self.pidfile, f"{process.pid}\n", mode=0o644)
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.directory / "ready").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = self._log_tail()
                self.down()
                if process.returncode == EXIT_ADDRESS_UNAVAILABLE:
                    self._check_addresses(spec)  # says what holds them
                    raise AddressesUnavailable("".join(tail.splitlines()[-1:]))  # freed since
                raise LabError(f"the BMC fleet did not start:\n{tail}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            return "\n".join((self.directory / "fleet.log").read_text().splitlines()[-15:])
        except OSError:
            return "(no log)"

    def rack(self, count: int) -> FleetSpec:
        """Add ``count`` servers to the running lab, as new hardware racked beside the
        deployed: the next addresses of its block, hardware from its seed (the servers a
        larger ``lab up`` would have had); the lab's spec with them is returned. The running
        fleet serves them within a second; every other server, its state and the Chef
        server go on untouched. Raises :class:`LabError` (no lab running, the block full,
        an address held elsewhere)."""
        spec = self.spec()
        if spec is None or self.pid() is None:
            raise LabError("no lab is running: `crowbar-wizard lab up --nodes N` starts one")
        try:
            grown = plan_fleet(len(spec.bmcs) + count, seed=spec.seed, network=spec.network,
                               port=spec.bmcs[0].port)
        except ValueError as exc:
            raise LabError(f"{exc}; it has {len(spec.bmcs)}") from None
        added = grown.bmcs[len(spec.bmcs):]
        self._check_addresses(replace(spec, bmcs=added))
        grown = replace(spec, bmcs=[*spec.bmcs, *added])
        write_atomic(self.directory / "fleet.json", grown.to_json(), mode=0o644)
        deadline = time.monotonic() + START_TIMEOUT
        while _served(self.directory) < len(spec.bmcs) + count:
            if self.pid() is None or time.monotonic() > deadline:
                raise LabError(f"the fleet did not take the new servers:\n{self._log_tail()}")
            time.sleep(0.05)
        return grown

    def answering(self, timeout: float = 1.0, *, healthy_only: bool = False) -> set[str]:
        """Addresses of the fleet's BMCs that answer a ping now (of the ones meant to)."""
        spec = self.spec()
        if spec is None:
            return set()

        async def ping() -> set[str]:
            driver = IpmiDriver()
            try:
                targets = [(b.address, b.port) for b in spec.bmcs
                           if not (healthy_only and b.faults.silent)]
                return {a async for a, _ in driver.ping(targets, timeout=timeout)}
            finally:
                driver.close()

        return asyncio.run(ping())

    def ensure_running(self) -> bool:
        """Restart the fleet (state kept) if it died or stopped answering; True if it did."""
        spec = self.spec()
        if spec is None:
            raise LabError("no lab here: run `crowbar-wizard lab up` first")
        expected = {b.address for b in spec.bmcs if not b.faults.silent}
        if self.pid() is not None and expected <= self.answering(healthy_only=True):
            return False
        self._stop_fleet()
        self._start()
        return True

    def status(self) -> list[dict[str, Any]]:
        """Every BMC: its index (0-based: what ``--fault`` takes, and the answers' node
        ``apply --lab`` puts on it), address, port, identity, power and boot state, and
        whether it answers."""
        spec = self.spec()
        if spec is None:
            return []
        alive = self.answering() if self.pid() is not None else set()
        states = read_states(self.directory)
        rows = []
        for index, bmc in enumerate(spec.bmcs):
            state = states.get(bmc.address, {}).get("state", {})
            rows.append({
                "index": index, "address": bmc.address, "port": bmc.port, "mac": bmc.mac,
                "model": bmc.hardware.model, "serial": bmc.hardware.serial,
                "power": state.get("power"), "boot_device": state.get("boot_device"),
                "power_cycles": state.get("power_cycles", 0),
                "answering": bmc.address in alive,
                "faults": [k for k, v in vars(bmc.faults).items() if v],
            })
        return rows

    def set_faults(self, index: int, kinds: list[str], on: bool) -> str:
        """Set (or clear) chef-client faults of server ``index`` in the fleet's spec, where
        the lab's chef-client reads them at each run; its BMC's address. The spec is
        rewritten whole (atomically): a run reading it meanwhile sees before or after."""
        spec = self.spec()
        if spec is None:
            raise LabError("no lab is up: run `crowbar-wizard lab up --nodes N` first")
        if not 0 <= index < len(spec.bmcs):
            raise LabError(f"the lab has servers 0 to {len(spec.bmcs) - 1}, not {index}")
        bmc = spec.bmcs[index]
        for kind in kinds:
            setattr(bmc.faults, kind, on)
        write_atomic(self.directory / "fleet.json", spec.to_json(), mode=0o644)
        return bmc.address

    def _stop(self) -> bool:
        """Stop what the lab started; True if some of it ran past its pidfiles (e.g. its
        directory was removed while it ran), found by their command lines."""
        self._stop_chef()
        self._stop_fleet()
        strays = lab_processes(self.directory)
        for pid in strays:
            stop_pid_group(pid)
        return bool(strays)

    def _stop_chef(self) -> None:
        stop_group(self.chef_directory / "goiardi.pid")
        (self.chef_directory / "goiardi.pid").unlink(missing_ok=True)

    def _stop_fleet(self) -> None:
        """Stop the fleet's process group: the fleet and its node agents, also when the
        fleet itself died and left its agents behind."""
        stop_group(self.pidfile)

    def down(self) -> bool:
        """Stop everything the lab started and remove its directory; False if none ran.

        Only a directory that holds a lab (its ``fleet.json``) is removed, never another.
        A lab whose directory was removed under it is stopped too.
        """
        running = self.pid() is not None
        running = self._stop() or running
        if (self.directory / "fleet.json").exists():
            shutil.rmtree(self.directory)
        return running


def _served(directory: Path) -> int:
    """How many BMCs the fleet says it serves (its ``ready`` file; 0 before it is)."""
    try:
        return int((directory / "ready").read_text())
    except (OSError, ValueError):
        return 0


def no_chef_reason() -> str:
    """Why a lab that is up has no Chef server."""
    if find_goiardi() is None:
        return "goiardi is not installed; `./dev deps` installs it"
    return "its goiardi is not running: `crowbar-wizard lab down`, then `lab up`"


def stop_group(pidfile: Path) -> None:
    """Stop the process group led by the pid in ``pidfile`` (see :func:`stop_pid_group`)."""
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    stop_pid_group(pid)


def stop_pid_group(pid: int) -> None:
    """Stop the process group led by ``pid`` (its leader may be gone, its group not):
    SIGTERM, up to 5 s for the leader to go, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
