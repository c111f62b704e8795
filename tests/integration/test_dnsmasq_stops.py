"""``pxe serve`` leaves nothing running, however it ends: Ctrl-C, SIGTERM, SIGKILL, or its
dnsmasq failing at start or dying under it; nor does ``apply`` (without ``--lab``), which
runs dnsmasq too.

Each test runs a real ``pxe serve`` or ``apply`` (real dnsmasq) in a network namespace of
its own, kills it one way, and then looks for any process whose command line names the
run's directory and for sockets still bound in the namespace. Namespaces, veths and daemons
go away at the end, also when a test fails (``tests/netns.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.netns import Segment, leftovers, need_root_netns
from wizard.provisioning.dnsmasq import find_dnsmasq

pytestmark = pytest.mark.slow

EXAMPLE = Path("answers/examples/lab-small.yaml")
ADMIN = "192.168.124.10"


@dataclass
class Run:
    segment: Segment
    server: str
    work: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def serve(self) -> subprocess.Popen[bytes]:
        shutil.copyfile(EXAMPLE, self.work / "answers.yaml")
        self.process = self.segment.start(
            self.server, sys.executable, "-m", "wizard.cli", "pxe", "serve",
            str(self.work / "answers.yaml"), str(self.work / "pxe"), "--state",
            str(self.work / "state"), "--probe-timeout", "1", log=self.log)
        return self.process

    def serving(self) -> None:
        assert self.process is not None
        _wait(lambda: "serving http://" in self.log.read_text()
              or self.process.poll() is not None, "pxe serve to come up", 60)
        assert self.process.poll() is None, self.log.read_text()

    def apply(self) -> subprocess.Popen[bytes]:
        """``apply`` with a Chef server that never answers: it serves DHCP, then retries."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.work / "chef.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        (self.work / "answers.yaml").write_text(EXAMPLE.read_text().replace(
            "file:/etc/crowbar/chef/crowbar.pem", f"file:{self.work / 'chef.pem'}"))
        env = {**os.environ, "CROWBAR_BMC_PASSWORD": "unused",
               "CROWBAR_KEYSTONE_PASSWORD": "unused"}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.server, sys.executable, "-m", "wizard.cli",
                 "apply", str(self.work / "answers.yaml"), "--state", str(self.work),
                 "--probe-timeout", "1"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        return self.process

    def dnsmasq_pid(self) -> int:
        return int((self.work / "pxe" / "dnsmasq" / "dnsmasq.pid").read_text())

    def dnsmasq_running(self) -> bool:
        return any(line.split(": ", 1)[1].startswith(find_dnsmasq() or "dnsmasq")
                   for line in self.left_running())

    def left_running(self) -> list[str]:
        """Live processes whose command line names this run's directory (serve, dnsmasq,
        dnsmasq's tether)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if str(self.work) in command and state != "Z":
                found.append(f"{entry.name}: {command}")
        return found

    def bound(self) -> str:
        """Sockets still listening or bound in the server's namespace (there is nothing
        else in it)."""
        return self.segment.run(self.server, "ss", "-Hlntu").stdout.strip()

    def nothing_left(self) -> None:
        _wait(lambda: not self.left_running(), "no process of the run left")
        _wait(lambda: not self.bound(), "ports 67, 69 and 8091 free")


@pytest.fixture
def run() -> Iterator[Run]:
    need_root_netns()
    if find_dnsmasq() is None or shutil.which("ss") is None:
        pytest.skip("dnsmasq and ss are needed (./dev deps installs them)")
    work = Path(tempfile.mkdtemp(prefix="cw-serve-stop-"))
    work.chmod(0o755)  # dnsmasq drops to an unprivileged user that must read the TFTP root
    segment = Segment("ss")
    the_run = None
    try:
        server = segment.host("srv", f"{ADMIN}/24")
        the_run = Run(segment, server, work, work / "serve.log")
        yield the_run
    finally:
        if the_run is not None and the_run.process is not None \
                and the_run.process.poll() is None:
            the_run.process.kill()
            the_run.process.wait(10)
        segment.close()
        shutil.rmtree(work, ignore_errors=True)
        assert leftovers(segment.prefix) == []


@pytest.mark.parametrize(("sig", "status"), [
    (signal.SIGINT, 130), (signal.SIGTERM, 0), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_stopping_serve_stops_dnsmasq(run: Run, sig: int, status: int) -> None:
    process = run.serve()
    run.serving()
    dnsmasq = run.dnsmasq_pid()
    assert any(line.startswith(f"{dnsmasq}:") for line in run.left_running())
    process.send_signal(sig)
    assert process.wait(30) == status, run.log.read_text()
    run.nothing_left()
    if sig != signal.SIGKILL:  # stopped in order, and said so
        assert "exiting on receipt of SIGTERM" in \
            (run.work / "pxe" / "dnsmasq" / "dnsmasq.log").read_text()


@pytest.mark.parametrize(("sig", "status"), [
    (signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM), (signal.SIGKILL, -signal.SIGKILL),
    (signal.SIGHUP, -signal.SIGHUP)], ids=["SIGINT", "SIGTERM", "SIGKILL", "SIGHUP"])
def test_stopping_apply_stops_its_dnsmasq(run: Run, sig: int, status: int) -> None:
    """apply's dnsmasq goes with apply, also when apply's own clean-up never runs."""
    process = run.apply()
    _wait(lambda: run.dnsmasq_running() or process.poll() is not None,
          "apply to start dnsmasq", 60)
    assert process.poll() is None, run.log.read_text()
    process.send_signal(sig)
    assert process.wait(30) == status, run.log.read_text()
    run.nothing_left()


def test_dnsmasq_that_cannot_start_stops_serve(run: Run) -> None:
    """Its unprivileged user cannot enter a directory made mode 0700: dnsmasq's reason, exit
    1, and no 'serving' line."""
    run.work.chmod(0o700)
    process = run.serve()
    assert process.wait(60) == 1
    out = run.log.read_text()
    assert "serving" not in out
    assert f"cannot serve: dnsmasq exited at start: TFTP directory {run.work}/pxe/tftp " \
        "inaccessible: Permission denied" in out
    assert "chmod o+x" in out
    run.nothing_left()


def test_dnsmasq_dying_under_serve_stops_it(run: Run) -> None:
    process = run.serve()
    run.serving()
    os.kill(run.dnsmasq_pid(), signal.SIGKILL)
    assert process.wait(30) == 1
    assert "dnsmasq exited: killed by SIGKILL; stopped serving" in run.log.read_text()
    run.nothing_left()


def test_dnsmasq_failing_to_restart_on_reload_stops_serve(run: Run) -> None:
    """A changed config (SIGHUP) passes dnsmasq --test but the restarted dnsmasq cannot
    enter its TFTP root: serve says why and exits 1 rather than serve HTTP alone."""
    process = run.serve()
    run.serving()
    (run.work / "pxe" / "tftp").chmod(0o700)
    answers = run.work / "answers.yaml"
    answers.write_text(answers.read_text().replace("192.168.124.21-192.168.124.80",
                                                   "192.168.124.21-192.168.124.79"))
    process.send_signal(signal.SIGHUP)
    assert process.wait(30) == 1
    out = run.log.read_text()
    assert f"dnsmasq exited: TFTP directory {run.work}/pxe/tftp inaccessible: Permission " \
        "denied; stopped serving" in out
    assert "still serving the previous config" not in out
    run.nothing_left()


def _wait(condition: Callable[[], object], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for: {what}")
        time.sleep(0.1)
