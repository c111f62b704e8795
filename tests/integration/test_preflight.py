"""The admin-network preflight on a namespaced segment, against a real rogue dnsmasq.

The checks run inside the admin namespace (``python -c`` there, JSON back), since they bind
the namespace's ports and send out of its interface.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest

from tests.fake_mirror import NEAR_MISSES, apt_component
from tests.integration.conftest import need
from tests.netns import Segment, leftovers, need_root_netns

pytestmark = pytest.mark.slow

ADMIN = "192.168.124.10"
ROGUE = "192.168.124.5"
WEB_PORT = 8091
MIRROR_PORT = 8092


@pytest.fixture
def segment() -> Iterator[Segment]:
    need_root_netns()
    seg = Segment("pf")
    try:
        yield seg
    finally:
        seg.close()


@pytest.fixture
def admin(segment: Segment) -> str:
    return segment.host("admin", f"{ADMIN}/24")


def inside(seg: Segment, ns: str, expression: str) -> Any:
    """``expression`` (over ``p``, the preflight module) evaluated in ``ns``, as JSON."""
    code = ("import dataclasses, json\nfrom wizard.provisioning import preflight as p\n"
            f"print(json.dumps({expression}, default=dataclasses.asdict))")
    return json.loads(seg.run(ns, sys.executable, "-c", code).stdout)


def start_rogue(seg: Segment, directory: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A dnsmasq serving DHCP on the segment from its own namespace, once it listens."""
    ns = seg.host("rogue", f"{ROGUE}/24")
    log = directory / "dnsmasq.log"
    daemon = seg.start(
        ns, need("dnsmasq"), "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
        "--dhcp-range=192.168.124.100,192.168.124.150,255.255.255.0,2m",
        f"--dhcp-leasefile={directory / 'leases'}", "--interface=eth0", "--bind-interfaces",
        "--pid-file=", "--user=root", "--log-facility=-", *extra, log=log)
    deadline = time.monotonic() + 10
    while not seg.run(ns, "ss", "-Hlun", "sport = :67").stdout.strip():
        if daemon.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"dnsmasq did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return daemon


def start_holder(seg: Segment, ns: str, log: Path, kind: str, host: str, port: int) -> None:
    """A process in ``ns`` holding ``host:port`` (bound, and listening for TCP)."""
    code = (f"import socket, sys, time\ns = socket.socket(socket.AF_INET, socket.{kind})\n"
            f"s.bind(({host!r}, {port}))\n"
            "s.listen() if s.type == socket.SOCK_STREAM else None\n"
            "print('bound', flush=True)\ntime.sleep(600)\n")
    holder = seg.start(ns, sys.executable, "-c", code, log=log)
    deadline = time.monotonic() + 10
    while "bound" not in (log.read_text() if log.exists() else ""):
        if holder.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"port holder did not start:\n{log.read_text()}")
        time.sleep(0.05)


def test_probe_finds_a_fresh_rogue_dnsmasq_and_close_removes_it(
        segment: Segment, admin: str, tmp_path: Path) -> None:
    # dnsmasq pings an address for 3 s before its first offer: the default timeout waits longer
    daemon = start_rogue(segment, tmp_path)
    offers = inside(segment, admin, "p.probe_dhcp('eth0')")
    assert [offer["server"] for offer in offers] == [ROGUE]
    assert ip_address("192.168.124.100") <= ip_address(offers[0]["address"]) \
        <= ip_address("192.168.124.150")

    segment.close()
    assert daemon.wait(5) is not None
    assert leftovers(segment.prefix) == []


def test_preflight_refuses_a_foreign_dhcp_server_unless_allowed(
        segment: Segment, admin: str, tmp_path: Path) -> None:
    start_rogue(segment, tmp_path, "--no-ping")
    refused, allowed = inside(
        segment, admin,
        f"[p.run_preflight('eth0', {ADMIN!r}, {WEB_PORT}, timeout=1.5), "
        f"p.run_preflight('eth0', {ADMIN!r}, {WEB_PORT}, timeout=1.5, allow_foreign_dhcp=True)]")
    [problem] = refused["problems"]
    assert ROGUE in problem and "--allow-foreign-dhcp" in problem
    assert allowed["problems"] == []
    assert any(ROGUE in note for note in allowed["notes"])

    tree = tmp_path / "pxe"
    serve = segment.run(admin, sys.executable, "-m", "wizard.cli", "pxe", "serve",
                        str(Path("answers/examples/lab-small.yaml").resolve()), str(tree),
                        "--state", str(tmp_path / "state"), "--probe-timeout", "1.5",
                        check=False)
    assert serve.returncode == 1
    assert ROGUE in serve.stderr and "--allow-foreign-dhcp" in serve.stderr
    assert "not serving" in serve.stderr
    assert not tree.exists(), "a refused start writes nothing and starts no dnsmasq"


def test_without_another_dhcp_server_the_preflight_passes(segment: Segment, admin: str) -> None:
    offers, report = inside(
        segment, admin,
        f"[p.probe_dhcp('eth0', 1.5), p.run_preflight('eth0', {ADMIN!r}, {WEB_PORT}, timeout=1.5)]")
    assert offers == []
    assert report["problems"] == []
    assert any("no other DHCP server" in note for note in report["notes"])


def test_a_missing_admin_address_is_a_problem_and_skips_the_probe(
        segment: Segment, admin: str) -> None:
    report = inside(segment, admin, f"p.run_preflight('eth0', '192.168.124.20', {WEB_PORT})")
    assert report["problems"] == ["192.168.124.20 is not on eth0 (it has 192.168.124.10/24)"]
    assert any("DHCP probe on eth0 skipped" in note for note in report["notes"])
    assert "does not exist" in inside(segment, admin, f"p.check_address('eth9', {ADMIN!r})")


@pytest.mark.parametrize(("kind", "host", "port", "named"), [
    ("SOCK_DGRAM", "0.0.0.0", 67, "UDP port 67 (DHCP)"),
    ("SOCK_DGRAM", ADMIN, 69, "UDP port 69 (TFTP)"),
    ("SOCK_STREAM", ADMIN, WEB_PORT, f"TCP port {WEB_PORT} (HTTP)"),
])
def test_a_taken_port_is_named(segment: Segment, admin: str, tmp_path: Path, kind: str,
                               host: str, port: int, named: str) -> None:
    assert inside(segment, admin, f"p.check_ports({ADMIN!r}, {WEB_PORT})") == []
    start_holder(segment, admin, tmp_path / "holder.log", kind, host, port)
    [problem] = inside(segment, admin, f"p.check_ports({ADMIN!r}, {WEB_PORT})")
    assert named in problem


def probe_error(seg: Segment, ns: str, interface: str) -> str:
    """The error a short probe out of ``interface`` in ``ns`` ends with (none: "")."""
    code = f"from wizard.provisioning import preflight as p\np.probe_dhcp({interface!r}, 0.1)"
    return seg.run(ns, sys.executable, "-c", code, check=False).stderr.strip()


def test_the_probe_says_why_it_cannot_run(segment: Segment, admin: str, tmp_path: Path) -> None:
    assert probe_error(segment, admin, "eth0") == ""
    assert "PreflightError: cannot probe for DHCP servers on eth9" in probe_error(
        segment, admin, "eth9")
    start_holder(segment, admin, tmp_path / "holder.log", "SOCK_DGRAM", "0.0.0.0", 68)
    error = probe_error(segment, admin, "eth0").splitlines()[-1]
    assert error.startswith("wizard.provisioning.preflight.PreflightError: cannot probe for DHCP "
                            "servers on eth0 (UDP port 68): [Errno 98] Address already in use")


def test_preflight_refuses_a_mirror_without_chef_client(segment: Segment, admin: str,
                                                        tmp_path: Path) -> None:
    """``pxe preflight`` with a Chef server asks the mirror the nodes install from (a real
    Debian layout, served by python's http.server at another port of the admin address)
    for the chef package: without it, exit 1 naming the OS and the package; with it, 0."""
    www = tmp_path / "www"
    apt_component(www / "debian", "bookworm", "main", NEAR_MISSES)
    segment.start(admin, sys.executable, "-m", "http.server", "--bind", ADMIN, "--directory",
                  str(www), str(MIRROR_PORT), log=tmp_path / "mirror.log")
    deadline = time.monotonic() + 10
    while not segment.run(admin, "ss", "-Hltn", f"sport = :{MIRROR_PORT}").stdout.strip():
        assert time.monotonic() < deadline, (tmp_path / "mirror.log").read_text()
        time.sleep(0.05)
    mirror = f"http://{ADMIN}:{MIRROR_PORT}/debian"
    answers = tmp_path / "answers.yaml"
    text = Path("answers/examples/lab-small.yaml").read_text()
    answers.write_text(text.replace("  os: ubuntu-24.04\n  mirror: http://192.168.124.10:8091/"
                                    "ubuntu\n", f"  os: debian-12\n  mirror: {mirror}\n"))
    assert mirror in answers.read_text()

    def preflight() -> subprocess.CompletedProcess[str]:
        return segment.run(admin, sys.executable, "-m", "wizard.cli", "pxe", "preflight",
                           str(answers), "--probe-timeout", "1", check=False, cwd=Path.cwd())

    refused = preflight()
    assert refused.returncode == 1, refused.stderr
    assert (f"preflight: the mirror {mirror} has no package 'chef' (chef-client) for "
            "debian-12 in dists/bookworm/main/binary-amd64") in refused.stderr
    assert "Traceback" not in refused.stderr
    apt_component(www / "debian", "bookworm", "main", [*NEAR_MISSES, "chef"])
    passed = preflight()
    assert passed.returncode == 0, passed.stderr
    assert f"preflight: the mirror has chef-client for debian-12: {mirror}/dists/" in \
        passed.stdout
