"""The discovery image, built by ``crowbar-wizard media build`` from Debian's packages, boots
a real Linux kernel in a qemu VM that PXE-booted from ``crowbar-wizard pxe serve``.

The VM (SeaBIOS with Debian's iPXE NIC ROM, TCG) has three virtio NICs on a bridge in a
network namespace, a disk with a serial number, a serial number of its own (SMBIOS) and
qemu's in-band BMC (``ipmi-bmc-sim`` on a KCS interface). It is a machine the answers file
does not know: iPXE gets the discovery script, the image posts what the kernel found, and
the machine waits; added to the answers file (and ``pxe serve`` reloaded), it is told to
reboot, and PXE-boots its installer. The image is built into the user's cache
(``~/.cache/crowbar-wizard``), so a second run on one machine copies it. The VM, namespaces
and taps go away at the end, also when the test fails.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import need
from tests.netns import Segment, ip, leftovers, need_root_netns

pytestmark = pytest.mark.slow

EXAMPLE = Path("answers/examples/lab-small.yaml")
MACS = ["52:54:00:d1:5c:01", "52:54:00:d1:5c:02", "52:54:00:d1:5c:03"]
SERIAL = "CW-VM-0001"
DISK_SERIAL = "CWDISK01"
MEMORY_MB = 384
DISK_BYTES = 2 << 30


def _cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard.cli", *args], capture_output=True,
                          text=True, **kwargs)


def test_unknown_vm_boots_the_image_posts_inventory_and_installs_once_added() -> None:
    need_root_netns()
    need("qemu-system-x86_64")
    need("apt-get")
    if not Path("/dev/net/tun").exists():
        pytest.skip("no /dev/net/tun for the VM's tap devices")
    work = Path(tempfile.mkdtemp(prefix="cw-disc-"))
    work.chmod(0o755)
    pxe = work / "pxe"
    built = _cli("media", "build", str(pxe))
    assert built.returncode == 0, built.stderr
    info = json.loads((pxe / "media" / "discovery" / "image.json").read_text())
    assert info["kernel"] and "busybox-static" in info["packages"]
    answers = work / "answers.yaml"
    text = EXAMPLE.read_text().replace(  # the kernel's console on the VM's serial port
        "\n  provisioner:\n", "\n  provisioner:\n    attributes:\n"
        "      serial_console: ttyS0,115200\n", 1)
    answers.write_text(text)
    segment = Segment("dv")
    try:
        server = segment.host("srv", "192.168.124.10/24")
        log = work / "serve.log"
        serve = segment.start(server, sys.executable, "-m", "wizard.cli", "pxe", "serve",
                              str(answers), str(pxe), "--probe-timeout", "1", log=log)
        _wait_for(log, "serving http://", serve)
        started = time.monotonic()
        _start_vm(segment, work)
        name = "d" + MACS[0].replace(":", "-")
        _wait_for(log, f"inventory from {MACS[0]}: new node {name}", serve, timeout=300)
        booted = time.monotonic() - started
        console = (work / "console.log").read_text(errors="replace")
        assert f"crowbar-discovery: image {info['key']}" in console
        report = _report(pxe, name)
        assert report["macs"] == MACS
        assert [nic["mac"] for nic in report["nics"]] == MACS  # bus order
        assert report["serial"] == SERIAL and report["manufacturer"] == "QEMU"
        assert report["cpu_cores"] == 2
        assert MEMORY_MB * 0.7 < report["memory_mb"] <= MEMORY_MB
        assert [(d["size_bytes"], d["serial"]) for d in report["drives"]] == [
            (DISK_BYTES, DISK_SERIAL)]
        assert report["bmc_present"] is True
        # the machine waits; once it is a node of the answers file, it reboots to install
        assert "reboot" not in console.split(f"image {info['key']}")[-1]
        answers.write_text(text + "  - name: new-1\n    macs: [" + ", ".join(
            f'"{mac}"' for mac in MACS) + "]\n    roles: [compute]\n")
        serve.send_signal(signal.SIGHUP)
        _wait_for(log, f"boot script install for {MACS[0]} (new-1)", serve, timeout=180)
        assert "this machine is a node of the deployment now: rebooting" in (
            work / "console.log").read_text(errors="replace")
        print(f"boot to inventory: {booted:.0f} s")
    finally:
        segment.close()
        shutil.rmtree(work, ignore_errors=True)
    assert leftovers(segment.prefix) == []


def _start_vm(segment: Segment, work: Path) -> None:
    disk = work / "disk.img"
    with open(disk, "wb") as file:
        file.truncate(DISK_BYTES)
    nics = []
    for index, mac in enumerate(MACS):
        tap = f"cwdtap{index}"
        ip("-n", segment.hub, "tuntap", "add", "dev", tap, "mode", "tap")
        ip("-n", segment.hub, "link", "set", tap, "master", "br0", "up")
        boot = ",bootindex=1" if index == 0 else ",romfile="
        nics += ["-netdev", f"tap,id=n{index},ifname={tap},script=no,downscript=no",
                 "-device", f"virtio-net-pci,netdev=n{index},mac={mac}{boot}"]
    segment.start(
        segment.hub, "qemu-system-x86_64", "-machine", "pc", "-m", str(MEMORY_MB),
        "-smp", "2", "-display", "none", "-monitor", "none",
        "-serial", f"file:{work / 'console.log'}",
        "-smbios", f"type=1,serial={SERIAL}", *nics,
        "-drive", f"file={disk},format=raw,if=none,id=d0",
        "-device", f"virtio-blk-pci,drive=d0,serial={DISK_SERIAL}",
        "-device", "ipmi-bmc-sim,id=bmc0", "-device", "isa-ipmi-kcs,bmc=bmc0",
        log=work / "vm.log")


def _report(pxe: Path, name: str) -> dict[str, Any]:
    """The inventory the provisioner recorded of ``name``."""
    import sqlite3
    with sqlite3.connect(pxe / "state.db") as db:
        for (data,) in db.execute("SELECT data FROM reports ORDER BY seq"):
            report = json.loads(data)
            if "d" + report["mac"].replace(":", "-") == name:
                return dict(report)
    raise AssertionError(f"no report of {name}")


def _wait_for(log: Path, text: str, serve: subprocess.Popen[bytes],
              timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        if serve.poll() is not None:
            pytest.fail(f"pxe serve exited {serve.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {text!r} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


