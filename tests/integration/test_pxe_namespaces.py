"""PXE for real: ``crowbar-wizard pxe serve`` (dnsmasq + the HTTP service) in one network
namespace, PXE clients (busybox udhcpc, tftp-hpa, curl) in others, on one bridged segment.

Every namespace has its own resolv.conf and the DHCP client runs with its own script (it
only sets the address in its namespace and prints the lease), so nothing here can touch
the machine's network. All namespaces, veths and daemons go away at the end, also when a
test fails (``tests/netns.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import need
from tests.netns import Segment, leftovers, need_root_netns
from wizard.answers import load
from wizard.provisioning.tree import prepare

pytestmark = pytest.mark.slow

EXAMPLE = Path("answers/examples/lab-small.yaml")
ADMIN = "192.168.124.10"
HTTP = f"http://{ADMIN}:8091"
UNKNOWN_MAC = "52:54:00:aa:bb:01"
EARLIER_MAC = "52:54:00:aa:bb:08"
"""A machine an earlier version of ``pxe serve`` discovered, in its ``DIR/state.db``."""
LEASE_SCRIPT = """\
#!/bin/sh
# udhcpc event script for tests: set the address inside this namespace, print the lease.
# It never writes resolv.conf.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    echo "lease ip=$ip hostname=$hostname boot_file=$boot_file domain=$domain router=$router"
    ;;
esac
exit 0
"""


@dataclass
class Pxe:
    segment: Segment
    server: str
    known: str
    unknown: str
    directory: Path
    state: Path
    answers_file: Path
    process: subprocess.Popen[bytes]
    log: Path
    script: Path

    def dhcp(self, ns: str, *options: str) -> dict[str, str]:
        """One DHCP exchange from ``ns``; the lease fields udhcpc printed."""
        result = self.segment.run(ns, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n",
                                  "-t", "6", "-T", "1", "-s", str(self.script), *options)
        line = next((x for x in result.stdout.splitlines() if x.startswith("lease ")), None)
        assert line, f"no lease: {result.stdout}{result.stderr}"
        return dict(field.split("=", 1) for field in line.split()[1:])

    def curl(self, ns: str, path: str) -> str:
        return self.segment.run(ns, "curl", "-fsS", "--max-time", "10", f"{HTTP}{path}").stdout


@pytest.fixture(scope="module")
def pxe() -> Iterator[Pxe]:
    need_root_netns()
    for tool in ("busybox", "tftp", "curl"):
        need(tool)
    if shutil.which("dnsmasq", path="/usr/sbin:/usr/bin:/sbin") is None:
        need("dnsmasq")
    answers = load(EXAMPLE)
    known_mac = answers.nodes[0].macs[0]
    work = Path(tempfile.mkdtemp(prefix="cw-pxe-"))
    work.chmod(0o755)  # dnsmasq drops to an unprivileged user that must read the TFTP root
    segment = Segment("px")
    process = None
    try:
        server = segment.host("srv", f"{ADMIN}/24")
        known = segment.host("known", mac=known_mac)
        unknown = segment.host("new", mac=UNKNOWN_MAC)
        answers_file = work / "answers.yaml"
        shutil.copyfile(EXAMPLE, answers_file)
        script = work / "lease.sh"
        script.write_text(LEASE_SCRIPT)
        script.chmod(0o755)
        log = work / "serve.log"
        _earlier_render(work / "pxe")
        process = segment.start(  # relative paths, as an operator types them in DIR's parent
            server, sys.executable, "-m", "wizard.cli", "pxe", "serve", "answers.yaml", "pxe",
            "--state", "state", "--probe-timeout", "1", log=log, cwd=work)
        _wait_for_http(segment, known, process, log)
        yield Pxe(segment, server, known, unknown, work / "pxe", work / "state", answers_file,
                  process, log, script)
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        segment.close()
        shutil.rmtree(work, ignore_errors=True)
        assert leftovers(segment.prefix) == []


def _wait_for_http(segment: Segment, ns: str, process: subprocess.Popen[bytes],
                   log: Path) -> None:
    # the client has no address yet: ask from the server's side of the segment
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pxe serve exited {process.returncode}:\n{log.read_text()}")
        if "serving http://" in log.read_text():
            return
        time.sleep(0.1)
    pytest.fail(f"pxe serve did not come up:\n{log.read_text()}")


def test_reserved_mac_gets_its_address_and_name(pxe: Pxe) -> None:
    lease = pxe.dhcp(pxe.known)
    assert lease["ip"] == "192.168.124.81"
    assert lease["hostname"] == "ctl-1"
    assert lease["domain"] == "lab.crowbar.test"
    assert lease["boot_file"] == "undionly.kpxe"


def test_unknown_mac_gets_a_dhcp_range_address(pxe: Pxe) -> None:
    lease = pxe.dhcp(pxe.unknown)
    last = int(lease["ip"].rsplit(".", 1)[1])
    assert lease["ip"].startswith("192.168.124.") and 21 <= last <= 80
    assert lease["hostname"] == ""
    assert lease["boot_file"] == "undionly.kpxe"


def test_boot_file_by_client_kind(pxe: Pxe) -> None:
    """BIOS firmware gets undionly.kpxe, UEFI (arch 7) ipxe.efi, iPXE itself its HTTP script."""
    efi = pxe.dhcp(pxe.unknown, "-x", "0x5d:0007")
    assert efi["boot_file"] == "ipxe.efi"
    ipxe = pxe.dhcp(pxe.unknown, "-x", "0x4d:69505845")  # user class "iPXE"
    assert ipxe["boot_file"] == f"{HTTP}/boot/${{mac}}"


def test_tftp_serves_the_boot_loader(pxe: Pxe) -> None:
    pxe.dhcp(pxe.unknown)
    target = pxe.directory.parent / "fetched.kpxe"
    pxe.segment.run(pxe.unknown, "tftp", "-m", "binary", ADMIN, "-c", "get", "undionly.kpxe",
                    str(target))
    assert target.read_bytes() == Path("/usr/lib/ipxe/undionly.kpxe").read_bytes()
    config = pxe.directory.parent / "fetched.cfg"
    name = "01-" + UNKNOWN_MAC.replace(":", "-")
    missing = pxe.segment.run(pxe.unknown, "tftp", ADMIN, "-c", "get",
                              f"pxelinux.cfg/{name}", str(config), check=False)
    assert "not found" in (missing.stdout + missing.stderr).lower()


def test_boot_scripts_over_http(pxe: Pxe) -> None:
    """The reserved node gets its installer, the unknown machine the discovery image."""
    known_mac = load(EXAMPLE).nodes[0].macs[0]
    pxe.dhcp(pxe.known)
    pxe.dhcp(pxe.unknown)
    install = pxe.curl(pxe.known, f"/boot/{known_mac}")
    assert install.startswith("#!ipxe") and f"{HTTP}/install/ctl-1/" in install
    discovery = pxe.curl(pxe.unknown, f"/boot/{UNKNOWN_MAC}")
    assert f"crowbar.mac={UNKNOWN_MAC}" in discovery and "media/discovery" in discovery
    user_data = pxe.curl(pxe.known, "/install/ctl-1/user-data")
    assert user_data.startswith("#cloud-config")


def test_reload_keeps_leases(pxe: Pxe) -> None:
    """A changed config (SIGHUP re-reads the answers) restarts dnsmasq; leases survive."""
    first = pxe.dhcp(pxe.known)
    leases = pxe.directory / "dnsmasq" / "leases"
    assert first["ip"] in leases.read_text()
    pid_before = (pxe.directory / "dnsmasq" / "dnsmasq.pid").read_text().strip()
    text = pxe.answers_file.read_text()
    pxe.answers_file.write_text(text.replace("192.168.124.21-192.168.124.80",
                                             "192.168.124.21-192.168.124.79"))
    os.kill(pxe.process.pid, signal.SIGHUP)
    config = pxe.directory / "dnsmasq" / "dnsmasq.conf"
    _wait(lambda: "192.168.124.79" in config.read_text(), "config rewritten")
    _wait(lambda: _pid(pxe) not in ("", pid_before), "dnsmasq restarted")
    assert "192.168.124.80" in (config.with_name("dnsmasq.conf.last-good")).read_text()
    assert first["ip"] in leases.read_text()
    again = pxe.dhcp(pxe.known, "-r", first["ip"])
    assert again["ip"] == first["ip"]


def test_refused_reload_keeps_the_running_config(pxe: Pxe) -> None:
    """Answers that no longer load are reported; dnsmasq keeps running as it was."""
    config = pxe.directory / "dnsmasq" / "dnsmasq.conf"
    before, pid_before = config.read_text(), _pid(pxe)
    pxe.answers_file.write_text(pxe.answers_file.read_text().replace("schema_version: 1",
                                                                     "schema_version: 9"))
    os.kill(pxe.process.pid, signal.SIGHUP)
    _wait(lambda: "reload refused" in pxe.log.read_text(), "reload refused")
    assert config.read_text() == before and _pid(pxe) == pid_before
    assert pxe.dhcp(pxe.known)["ip"] == "192.168.124.81"


def test_what_pxe_serve_records_is_in_the_site_journal(pxe: Pxe) -> None:
    """The machine an earlier version discovered (its DIR/state.db, taken over on start
    with one log line) and one that posts its inventory now: ``status``, another process
    reading the journal while pxe serve writes it, lists both as discovered."""
    pxe.dhcp(pxe.unknown)
    token = re.search(r"crowbar\.token=([0-9a-f]+)", pxe.curl(pxe.unknown, f"/boot/{UNKNOWN_MAC}"))
    assert token
    pxe.segment.run(pxe.unknown, "curl", "-fsS", "--max-time", "10",
                    "-H", f"X-Crowbar-Token: {token[1]}", "-H", "Content-Type: application/json",
                    "--data", json.dumps({"mac": UNKNOWN_MAC, "macs": [UNKNOWN_MAC],
                                          "cpu_cores": 2, "memory_gb": 4}),
                    f"{HTTP}/inventory")
    status = subprocess.run([sys.executable, "-m", "wizard.cli", "status", str(EXAMPLE),
                             "--state", str(pxe.state)], capture_output=True, text=True,
                            timeout=60, check=True)
    for mac in (UNKNOWN_MAC, EARLIER_MAC):
        assert f"{'d' + mac.replace(':', '-'):24s} discovered" in status.stdout.splitlines()
    [taken] = [line for line in pxe.log.read_text().splitlines() if "took over" in line]
    assert str(pxe.directory / "state.db") in taken
    assert (pxe.directory / "state.db.imported").exists()
    assert not (pxe.directory / "state.db").exists()


def _earlier_render(directory: Path) -> None:
    """A DIR an earlier version rendered and served, its store in ``state.db``."""
    prepare(directory)
    with contextlib.closing(sqlite3.connect(directory / "state.db")) as db, db:
        db.executescript("CREATE TABLE nodes (name TEXT PRIMARY KEY, state TEXT NOT NULL);"
                         "CREATE TABLE reports (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "data TEXT NOT NULL);")
        db.execute("INSERT INTO reports (data) VALUES (?)", (json.dumps(
            {"mac": EARLIER_MAC, "macs": [EARLIER_MAC], "cpu_cores": 8, "memory_gb": 32}),))


def _pid(pxe: Pxe) -> str:
    try:
        return (pxe.directory / "dnsmasq" / "dnsmasq.pid").read_text().strip()
    except FileNotFoundError:
        return ""


def _wait(condition, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for: {what}")
        time.sleep(0.1)
