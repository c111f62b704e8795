"""``lab up`` / ``lab status`` / ``lab down``: the lab's fleet as a background process.

The fleet (fake BMCs and their node agents) and, when goiardi is installed, a Chef server
run detached (their own sessions), so they outlive the command that started them;
its state lives in the lab directory: ``$CROWBAR_LAB_DIR``, else ``/run/crowbar-wizard/lab``
for root, else ``$XDG_RUNTIME_DIR/crowbar-wizard/lab`` (or ``/tmp/crowbar-wizard-UID/lab``).
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
from dataclasses import dataclass, field
from pathlib import Path

from wizard.base.interrupts import deferred_interrupt
from wizard.base.ownedfs import open_append
from wizard.base.yamlfile import write_atomic
from wizard.hardware.ipmi import IpmiDriver
from wizard.lab.bmc import Faults
from wizard.lab.fleet import DEFAULT_NETWORK, FleetSpec, plan_fleet, read_states
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

    def up(self, count: int, *, seed: int = 0, network: str = DEFAULT_NETWORK,
           faults: dict[int, Faults] | None = None) -> FleetSpec:
        """Start a fleet of ``count`` BMCs and wait until every healthy one answers."""
        if self.pid() is not None:
            spec = self.spec()
            size = len(spec.bmcs) if spec else "?"
            raise LabError(f"the lab is already up ({size} BMCs, pid {self.pid()}, "
                           f"{self.directory}); run `crowbar-wizard lab down` first")
        spec = plan_fleet(count, seed=seed, network=network, faults=faults)
        if (self.directory / "fleet.json").exists():
            self._stop()  # an old lab's leftovers: what still runs of it (agents, goiardi)
            shutil.rmtree(self.directory)
        elif self.directory.exists() and any(self.directory.iterdir()):
            raise LabError(f"{self.directory} is not empty and holds no lab: give the lab a "
                           "directory of its own (CROWBAR_LAB_DIR)")
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.directory / "fleet.json", spec.to_json(), mode=0o644)
        try:
            self._start()
            if find_goiardi() is not None:
                self._start_chef()
        except KeyboardInterrupt:  # no half-started lab left behind
            self.down()
            raise
        return spec

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
                raise LabError(f"the BMC fleet did not start:\n{tail}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            return "\n".join((self.directory / "fleet.log").read_text().splitlines()[-15:])
        except OSError:
            return "(no log)"

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

    def status(self) -> list[dict]:
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

    def _stop(self) -> None:
        self._stop_chef()
        self._stop_fleet()

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
        """
        running = self.pid() is not None
        self._stop()
        if (self.directory / "fleet.json").exists():
            shutil.rmtree(self.directory)
        return running


def no_chef_reason() -> str:
    """Why a lab that is up has no Chef server."""
    if find_goiardi() is None:
        return "goiardi is not installed; `./dev deps` installs it"
    return "its goiardi is not running: `crowbar-wizard lab down`, then `lab up`"


def stop_group(pidfile: Path) -> None:
    """Stop the process group led by the pid in ``pidfile`` (its leader may be gone, its
    group not): SIGTERM, up to 5 s for the leader to go, then SIGKILL."""
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
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
