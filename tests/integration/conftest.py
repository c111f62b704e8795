"""Real daemons for integration tests: the lab's fake BMC fleet, OpenIPMI's ipmi_sim and
goiardi (a Chef server).

Each fixture starts its daemon on loopback, health-checks it before every test (a fake-BMC
process can stop answering as a whole; it is then restarted with its state) and stops it
at the end, also when a test fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wizard.hardware.fru import encode_fru
from wizard.lab.bmc import Faults
from wizard.lab.control import Lab
from wizard.lab.goiardi import Goiardi

LAB_NETWORK = "127.77.0.0/24"  # away from a developer's own lab on 127.1.0.0/22
LAB_FAULTS = {3: Faults(wrong_password=True), 4: Faults(silent=True), 5: Faults(drop_first=2)}
LAB_SIZE = 8


def need(binary: str) -> str:
    """The path of a Debian-packaged tool; CI must have it, a laptop may skip."""
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed (./dev deps installs it)")
        pytest.skip(f"{binary} is not installed (./dev deps installs it)")
    return path


@pytest.fixture
def goiardi(tmp_path: Path) -> Iterator[Goiardi]:
    """A Chef server of its own for each test: empty, new keys, authentication on."""
    need("goiardi")
    server = Goiardi(tmp_path / "goiardi")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def lab_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("lab") / "lab")
    lab.up(LAB_SIZE, seed=7, network=LAB_NETWORK, faults=LAB_FAULTS)
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture
def lab(lab_fleet: Lab) -> Lab:
    """The fleet, answering (restarted with its state if it stopped)."""
    lab_fleet.ensure_running()
    return lab_fleet


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


CHASSIS_SCRIPT = """\
#!/bin/sh
# ipmi_sim's chassis control: PROG MC get PARM... | PROG MC set PARM VALUE...
# The simulated server's power and boot device live in files beside this script.
dir=$(dirname "$0")
mc=$1; op=$2; shift 2
case $op in
  get) for p in "$@"; do
         case $p in
           power) echo "power:$(cat "$dir/power" 2>/dev/null || echo 0)";;
           boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)";;
         esac
       done;;
  set) while [ $# -gt 1 ]; do
         case $1 in
           power) echo "$2" > "$dir/power";;
           boot) echo "$2" > "$dir/boot";;
         esac
         shift 2
       done;;
esac
"""


@dataclass
class IpmiSim:
    """A running ipmi_sim: where it listens, its admin account, its simulated server."""

    address: str
    port: int
    username: str
    password: str
    directory: Path
    serial: str

    def server(self, name: str) -> str:
        path = self.directory / name
        return path.read_text().strip() if path.exists() else ""


@pytest.fixture(scope="session")
def ipmi_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpmiSim]:
    binary = need("ipmi_sim")
    directory = tmp_path_factory.mktemp("ipmi_sim")
    sim = IpmiSim("127.0.0.1", free_udp_port(), "admin", "sim-pass", directory, "SIM000042")
    script = directory / "chassis"
    script.write_text(CHASSIS_SCRIPT)
    script.chmod(0o755)
    (directory / "lan.conf").write_text(f"""\
name "crowbar-test"
set_working_mc 0x20
  startlan 1
    addr {sim.address} {sim.port}
    priv_limit admin
    allowed_auths_callback none md5 straight
    allowed_auths_user none md5 straight
    allowed_auths_operator none md5 straight
    allowed_auths_admin none md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "{script} 0x20"
  user 1 true  "" "unused" user 10 none md5 straight
  user 2 true  "{sim.username}" "{sim.password}" admin 10 none md5 straight
""")
    fru = encode_fru("OpenIPMI", "ipmi_sim", "SIM-1", sim.serial, ["cpu_cores=4"])
    (directory / "sim.emu").write_text(
        "mc_setbmc 0x20\n"
        "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n"
        f"mc_add_fru_data 0x20 0 {len(fru)} data {' '.join(f'0x{b:02x}' for b in fru)}\n"
        "mc_enable 0x20\n"
    )
    process = subprocess.Popen(
        [binary, "-c", str(directory / "lan.conf"), "-f", str(directory / "sim.emu"), "-n",
         "-s", str(directory / "state")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not _udp_bound(sim.port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("ipmi_sim did not start")
            time.sleep(0.05)
        yield sim
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
