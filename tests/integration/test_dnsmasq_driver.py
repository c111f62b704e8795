"""The dnsmasq driver against real dnsmasq in a network namespace, a busybox DHCP client in
another: refused configs change nothing, reservations reload on SIGHUP, leases survive;
dnsmasq dies with the process that started it, and one that fails at start says why.

Namespaces, veths and daemons are removed at the end, also on failure (``tests/netns.py``).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns import Segment, leftovers, need_root_netns
from tests.proc import alive
from wizard.answers import Answers, Node, load
from wizard.catalog import default_catalog
from wizard.provisioning.dnsmasq import Dnsmasq, DnsmasqError, find_dnsmasq
from wizard.provisioning.site import ProvisionerSite
from wizard.provisioning.tree import dnsmasq_files

pytestmark = pytest.mark.slow

EXAMPLE = Path("answers/examples/lab-small.yaml")
LATE_MAC = "52:54:00:cc:00:01"
SCRIPT = """\
#!/bin/sh
case "$1" in bound|renew) echo "lease ip=$ip hostname=$hostname";; esac
exit 0
"""


@pytest.fixture
def rig() -> Iterator[tuple[Segment, str, str, Dnsmasq, Path]]:
    need_root_netns()
    if find_dnsmasq() is None or shutil.which("busybox") is None:
        pytest.skip("dnsmasq and busybox are needed (./dev deps installs them)")
    work = Path(tempfile.mkdtemp(prefix="cw-dnsmasq-"))
    work.chmod(0o755)
    segment = Segment("dq")
    driver = None
    try:
        server = segment.host("srv", "192.168.124.10/24")
        client = segment.host("cli", mac=LATE_MAC)
        (work / "tftp").mkdir()
        script = work / "lease.sh"
        script.write_text(SCRIPT)
        script.chmod(0o755)
        driver = Dnsmasq(work / "dnsmasq", prefix=["ip", "netns", "exec", server])
        yield segment, server, client, driver, script
    finally:
        if driver is not None:
            driver.stop()
        segment.close()
        shutil.rmtree(work, ignore_errors=True)
        assert leftovers(segment.prefix) == []


def files_for(answers: Answers, directory: Path) -> tuple[str, str]:
    return dnsmasq_files(ProvisionerSite(answers, default_catalog(), b"k" * 32), directory)


def lease(segment: Segment, client: str, script: Path) -> str:
    out = segment.run(client, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "6",
                      "-T", "1", "-s", str(script)).stdout
    return next(line for line in out.splitlines() if line.startswith("lease "))


def test_refused_config_changes_nothing_and_reservations_reload(rig) -> None:
    segment, _server, client, driver, script = rig
    answers = load(EXAMPLE)
    config, hosts = files_for(answers, driver.directory.parent)
    assert driver.install(config, hosts) == "config"
    driver.start()
    pid = driver.pid()
    first = lease(segment, client, script)
    assert first.startswith("lease ip=192.168.124.") and first.endswith("hostname=")
    assert 21 <= int(first.split()[1].rsplit(".", 1)[1]) <= 80

    with pytest.raises(DnsmasqError) as refused:
        driver.install(config + "dhcp-range=not-an-address\n", hosts)
    assert "dnsmasq refused the new config" in str(refused.value)
    assert "bad dhcp-range" in str(refused.value).lower()
    assert driver.config.read_text() == config and driver.pid() == pid
    assert not driver.config.with_name("dnsmasq.conf.last-good").exists()
    with pytest.raises(DnsmasqError):
        driver.install(config, hosts + "zz:zz,192.168.124.99,bad\n")
    assert driver.hosts.read_text() == hosts

    late = answers.model_copy(update={"nodes": [
        *answers.nodes, Node(name="late-1", macs=[LATE_MAC], roles=["compute"])]})
    config2, hosts2 = files_for(late, driver.directory.parent)
    assert config2 == config
    assert driver.install(config2, hosts2) == "reservations"
    assert driver.pid() == pid, "a reservation change reloads (SIGHUP), not restarts"
    assert driver.hosts.with_name("nodes.last-good").read_text() == hosts
    second = lease(segment, client, script)
    assert "ip=192.168.124.87 hostname=late-1" in second
    assert driver.install(config2, hosts2) == "unchanged"
    assert LATE_MAC in driver.leases.read_text()


STARTER = """\
import sys, time
from pathlib import Path
from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.provisioning.dnsmasq import Dnsmasq
from wizard.provisioning.site import ProvisionerSite
from wizard.provisioning.tree import dnsmasq_files
directory, namespace = Path(sys.argv[1]), sys.argv[2]
driver = Dnsmasq(directory / "dnsmasq", prefix=["ip", "netns", "exec", namespace])
site = ProvisionerSite(load(Path("answers/examples/lab-small.yaml")), default_catalog(),
                       b"k" * 32)
driver.install(*dnsmasq_files(site, directory))
driver.start()
print(driver.pid(), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGHUP],
                         ids=["SIGTERM", "SIGKILL", "SIGHUP"])
def test_dnsmasq_dies_with_the_process_that_started_it(rig, sig: int) -> None:
    """As ``apply``'s dnsmasq when apply is killed: its clean-up never runs, dnsmasq stops
    all the same (its tether sees its starter gone)."""
    _segment, server, _client, driver, _script = rig
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(driver.directory.parent),
                                server], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(starter.stdout.readline())
        assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(driver.binary.encode())
        starter.send_signal(sig)  # its default action: no clean-up of its own runs
        assert starter.wait(10) == -sig
        _wait(lambda: not alive(pid), "dnsmasq to stop")
        assert "exiting on receipt of SIGTERM" in driver.log.read_text()
    finally:
        starter.kill()
        starter.wait()


def test_a_dnsmasq_that_fails_its_start_up_checks_is_reported(rig) -> None:
    """Its pid file is there, then it drops root and cannot enter its TFTP root: start()
    says why, in dnsmasq's words, instead of returning as if it ran."""
    _segment, _server, _client, driver, _script = rig
    driver.install(*files_for(load(EXAMPLE), driver.directory.parent))
    (driver.directory.parent / "tftp").chmod(0o700)
    with pytest.raises(DnsmasqError) as failed:
        driver.start()
    tftp = driver.directory.parent / "tftp"
    assert str(failed.value) == ("dnsmasq exited at start: TFTP directory "
                                 f"{tftp} inaccessible: Permission denied")
    assert not driver.running()


def _wait(condition, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for: {what}")
        time.sleep(0.05)
