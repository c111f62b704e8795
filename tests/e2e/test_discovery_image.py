"""The discovery image, built by ``crowbar-wizard media build`` from Debian's packages, boots
a real Linux kernel in qemu VMs that PXE-booted from ``crowbar-wizard pxe serve``.

Two VMs (SeaBIOS with Debian's iPXE NIC ROM, TCG) the answers file does not know, on a
bridge in a network namespace: one with three virtio NICs, a disk with a serial number, a
serial number of its own (SMBIOS) and qemu's in-band BMC (``ipmi-bmc-sim`` on KCS); one with
a single NIC. iPXE gets the discovery script, each image posts what its kernel found, and
the machines wait. A draft that bonds the first VM's 2nd and 3rd NIC (802.3ad) under the
tagged storage VLAN is checked on its real kernel with ``crowbar-wizard network check``;
the same draft for the one-NIC VM is refused by validation, naming the node and conduit,
and that VM is powered off through its image.
Added to the served answers (``pxe serve`` reloaded), the first VM is told to reboot, and
PXE-boots its installer.

The image is built into the user's cache (``~/.cache/crowbar-wizard``): a second run on one
machine copies it. The VMs, namespaces and taps go away at the end, also when the test fails.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import need
from tests.netns import Segment, ip, leftovers, need_root_netns, wait_for_log
from tests.network_drafts import EXAMPLE, bonded_draft
from wizard.engine.journal import Journal
from wizard.hardware.inventory import Inventory, InventoryReport
from wizard.provisioning.media.build import default_cache

pytestmark = pytest.mark.slow

MACS = ["52:54:00:d1:5c:01", "52:54:00:d1:5c:02", "52:54:00:d1:5c:03"]
LONE = "52:54:00:d1:5c:11"
SERIAL = "CW-VM-0001"
DISK_SERIAL = "CWDISK01"
MEMORY_MB = 384
DISK_BYTES = 2 << 30


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_unknown_vms_are_discovered_checked_and_installed_once_added() -> None:
    need_root_netns()
    need("qemu-system-x86_64")
    need("apt-get")
    if not Path("/dev/net/tun").exists():
        pytest.skip("no /dev/net/tun for the VMs' tap devices")
    work = Path(tempfile.mkdtemp(prefix="cw-disc-"))
    work.chmod(0o755)
    pxe, state = work / "pxe", work / "state"
    built = _cli("media", "build", str(pxe))
    assert built.returncode == 0, built.stderr
    info = json.loads((pxe / "media" / "discovery" / "image.json").read_text())
    assert info["kernel"] and "busybox-static" in info["packages"]
    served = EXAMPLE.read_text().replace(  # the kernel's console on the VMs' serial port
        "\n  provisioner:\n", "\n  provisioner:\n    attributes:\n"
        "      serial_console: ttyS0,115200\n", 1)
    answers = work / "answers.yaml"
    answers.write_text(served)
    segment = Segment("dv")
    try:
        server = segment.host("srv", "192.168.124.10/24")
        log = work / "serve.log"
        serve = segment.start(server, sys.executable, "-m", "wizard.cli", "pxe", "serve",
                              str(answers), str(pxe), "--probe-timeout", "1",
                              "--state", str(state), log=log)
        wait_for_log(log, "serving http://", serve)
        started = time.monotonic()
        _start_vm(segment, work, "vm", MACS, extras=[
            "-smbios", f"type=1,serial={SERIAL}",
            "-device", "ipmi-bmc-sim,id=bmc0", "-device", "isa-ipmi-kcs,bmc=bmc0"])
        lone_vm = _start_vm(segment, work, "lone", [LONE])
        name = "d" + MACS[0].replace(":", "-")
        wait_for_log(log, f"inventory from {MACS[0]}: new node {name}", serve, timeout=400)
        booted = time.monotonic() - started
        console = (work / "vm.console").read_text(errors="replace")
        assert f"crowbar-discovery: image {info['key']}" in console
        report = _reports(state)[name]
        assert report["macs"] == MACS
        assert [nic["mac"] for nic in report["nics"]] == MACS  # bus order
        assert report["serial"] == SERIAL and report["manufacturer"] == "QEMU"
        assert report["cpu_cores"] == 2
        assert MEMORY_MB * 0.7 < report["memory_mb"] <= MEMORY_MB
        assert [(d["size_bytes"], d["serial"]) for d in report["drives"]] == [
            (DISK_BYTES, DISK_SERIAL)]
        assert report["bmc_present"] is True
        status = _cli("status", str(answers), "--state", str(state))
        assert f"{name:24s} discovered" in status.stdout, status

        # the planned network on the real kernel: a bond of the 2nd and 3rd NIC, VLAN 200
        draft = work / "draft.yaml"
        draft.write_text(bonded_draft(MACS, text=served))
        checked = _cli("network", "check", str(draft), "new-1", "--state", str(state),
                       "--timeout", "300", "--json")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        findings = {(f["subject"], f["planned"]): f for f in json.loads(checked.stdout)["findings"]}
        assert findings[("bond0", "mode 802.3ad")]["found"] == "mode 802.3ad"
        assert findings[("bond0", f"slaves {MACS[1]}, {MACS[2]}")]["ok"] is True
        assert findings[("bond0.200", "VLAN 200 on bond0")]["ok"] is True
        storage = [f for (subject, planned), f in findings.items()
                   if subject == "bond0.200" and planned.startswith("address 192.168.125.")]
        assert len(storage) == 1 and storage[0]["ok"] is True
        assert findings[("default route", "via 192.168.124.1 dev nic0")]["ok"] is True

        # the one-NIC machine cannot carry that plan: validation names node and conduit
        lone = "d" + LONE.replace(":", "-")
        wait_for_log(log, f"inventory from {LONE}: new node {lone}", serve, timeout=400)
        inventory = Inventory()
        inventory.add_report(InventoryReport.model_validate(_reports(state)[lone]))
        node = inventory.nodes[0].to_answers_node()
        assert node is not None and node.hardware and node.hardware.nics
        refused = work / "refused.yaml"
        refused.write_text(bonded_draft(MACS, text=served) + textwrap.indent(yaml.safe_dump(
            [node.model_dump(mode="json", exclude_none=True)]), "  "))
        validated = _cli("validate", str(refused))
        assert validated.returncode == 2
        assert f"node {lone}: conduit intf1 needs ?1g2, and {lone} has only 1 NIC" in (
            validated.stderr), validated.stderr

        # a machine with no BMC the admin node knows powers off through its image
        off = _cli("discovered", "poweroff", str(answers), lone, "--state", str(state))
        assert off.returncode == 0 and f"told to power off (through {LONE})" in off.stdout, off
        assert lone_vm.wait(120) == 0, "qemu ends when its machine powers off"
        assert "the admin node asks to power off" in (work / "lone.console").read_text(
            errors="replace")

        # once it is a node of the served answers, the image reboots it into its installer
        answers.write_text(bonded_draft(MACS, text=served))
        serve.send_signal(signal.SIGHUP)
        wait_for_log(log, f"boot script install for {MACS[0]} (new-1)", serve, timeout=300)
        assert "this machine is a node of the deployment now: rebooting" in (
            work / "vm.console").read_text(errors="replace")
        print(f"boot to inventory: {booted:.0f} s")
    finally:
        segment.close()
        shutil.rmtree(work, ignore_errors=True)
    assert leftovers(segment.prefix) == []


def test_the_image_is_the_same_bytes_when_built_again(tmp_path: Path) -> None:
    """Reproducible: a build from scratch (another cache, the same package files) makes
    the image the user's cache holds, byte for byte."""
    need("apt-get")
    first = _cli("media", "build")
    assert first.returncode == 0, first.stderr
    key = first.stdout.split()[2].rstrip(":")
    cached = default_cache()
    (tmp_path / "cache" / "debs").mkdir(parents=True)
    for deb in (cached / "debs").glob("*.deb"):  # the same files, not another download
        shutil.copyfile(deb, tmp_path / "cache" / "debs" / deb.name)
    again = _cli("media", "build", "--cache", str(tmp_path / "cache"))
    assert again.returncode == 0, again.stderr
    assert "downloading" not in again.stderr and "writing the initramfs" in again.stderr
    assert again.stdout.split()[2].rstrip(":") == key
    for name in ("linux", "initrd"):
        assert (tmp_path / "cache" / "images" / key / name).read_bytes() == (
            cached / "images" / key / name).read_bytes()


def _start_vm(segment: Segment, work: Path, name: str, macs: list[str],
              extras: list[str] | None = None) -> subprocess.Popen[bytes]:
    disk = work / f"{name}.img"
    with open(disk, "wb") as file:
        file.truncate(DISK_BYTES)
    nics = []
    for index, mac in enumerate(macs):
        tap = f"cw{name[:4]}{index}"
        ip("-n", segment.hub, "tuntap", "add", "dev", tap, "mode", "tap")
        ip("-n", segment.hub, "link", "set", tap, "master", "br0", "up")
        boot = ",bootindex=1" if index == 0 else ",romfile="
        nics += ["-netdev", f"tap,id=n{index},ifname={tap},script=no,downscript=no",
                 "-device", f"virtio-net-pci,netdev=n{index},mac={mac}{boot}"]
    return segment.start(
        segment.hub, "qemu-system-x86_64", "-machine", "pc", "-m", str(MEMORY_MB),
        "-smp", "2", "-display", "none", "-monitor", "none",
        "-serial", f"file:{work / f'{name}.console'}", *nics,
        "-drive", f"file={disk},format=raw,if=none,id=d0",
        "-device", f"virtio-blk-pci,drive=d0,serial={DISK_SERIAL}", *(extras or []),
        log=work / f"{name}.log")


def _reports(state: Path) -> dict[str, dict[str, Any]]:
    """The inventory reports the provisioner recorded in the journal, by node."""
    with Journal.open(state / "journal.db", lock=False) as journal:
        return {str(event.node): event.data for event in journal.events(kind="inventory")}

