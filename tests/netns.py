"""Test hosts in network namespaces: an L2 segment (a bridge) that namespaces plug into.

Everything made here is named with a per-run prefix and removed by :meth:`Segment.close`
(processes in each namespace killed, namespaces and their veths deleted, the namespace's
``/etc/netns`` directory removed), also when a test fails. Each namespace gets its own
``resolv.conf``, which ``ip netns exec`` mounts over ``/etc/resolv.conf``, so nothing run
inside can touch the machine's own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

NETNS_ETC = Path("/etc/netns")


def need_root_netns() -> None:
    """Skip (or fail in CI) where namespaces cannot be made."""
    problem = None
    if os.geteuid() != 0:
        problem = "network namespace tests need root"
    elif shutil.which("ip") is None:
        problem = "iproute2 (ip) is not installed"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


def ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


class Segment:
    """A bridge in a hub namespace; :meth:`host` adds a namespace with a veth on it."""

    def __init__(self, tag: str):
        self.prefix = f"cw{os.getpid() % 100000}{tag}"
        self.hub = f"{self.prefix}-hub"
        self.namespaces: list[str] = []
        try:
            self._add_namespace(self.hub)
            ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            ip("-n", self.hub, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _add_namespace(self, name: str) -> None:
        (NETNS_ETC / name).mkdir(parents=True, exist_ok=True)
        (NETNS_ETC / name / "resolv.conf").write_text("# test namespace: no resolver\n")
        self.namespaces.append(name)
        ip("netns", "add", name)
        ip("-n", name, "link", "set", "lo", "up")

    def host(self, name: str, address: str | None = None, mac: str | None = None,
             interface: str = "eth0") -> str:
        """A namespace ``<prefix>-<name>`` whose ``interface`` is on the bridge."""
        ns = f"{self.prefix}-{name}"
        self._add_namespace(ns)
        port = f"v-{name}"[:15]  # made inside the hub: nothing ever sits in the host's namespace
        ip("-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "cwtmp0",
           "netns", ns)
        ip("-n", self.hub, "link", "set", port, "master", "br0", "up")
        ip("-n", ns, "link", "set", "cwtmp0", "name", interface)
        if mac:
            ip("-n", ns, "link", "set", interface, "address", mac)
        if address:
            ip("-n", ns, "addr", "add", address, "dev", interface)
        ip("-n", ns, "link", "set", interface, "up")
        return ns

    def run(self, ns: str, *argv: str, timeout: float = 30, check: bool = True,
            **kwargs) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True,
                              text=True, timeout=timeout, check=check, **kwargs)

    def start(self, ns: str, *argv: str, log: Path,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """A daemon inside ``ns`` (``$!`` is the daemon: no shell in between)."""
        with open(log, "ab") as out:
            return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=cwd)

    def close(self) -> None:
        """Kill everything in the namespaces, then delete them (veths go with them)."""
        for ns in reversed(self.namespaces):
            for _ in range(50):
                pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                      text=True).stdout.split()
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.05)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
        self.namespaces.clear()
        with contextlib.suppress(OSError):
            NETNS_ETC.rmdir()  # only when empty: another user's namespaces keep it


def leftovers(prefix: str) -> list[str]:
    """Namespaces or links still named with ``prefix`` (an empty list after close)."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [line for line in (names + links).splitlines() if prefix in line]


def wait_for_log(log: Path, text: str, process: subprocess.Popen[bytes],
                 timeout: float = 180) -> None:
    """Until ``text`` is in ``log``; fail (with the log) when ``process`` exits first or
    ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        if process.poll() is not None:
            pytest.fail(f"the process exited {process.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {text!r} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
