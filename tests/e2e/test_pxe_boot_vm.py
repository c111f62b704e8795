"""Real firmware PXE-boots from ``crowbar-wizard pxe serve``: two qemu VMs (SeaBIOS with
Debian's iPXE NIC ROM, plain TCG) on a bridged segment in network namespaces.

Proves the chain a real server follows: DHCP (the reserved address for a known MAC, the
dhcp range for an unknown one), iPXE recognised by its user class, the DHCP boot file
``http://ADMIN:8091/boot/${mac}`` expanded by iPXE itself, and the HTTP service answering
each machine by what it is: the installer for the node, discovery for the stranger.
The VMs, namespaces and taps go away at the end, also when the test fails.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tests.integration.conftest import need
from tests.netns import Segment, ip, leftovers, need_root_netns, wait_for_log
from wizard.answers import load

pytestmark = pytest.mark.slow

EXAMPLE = Path("answers/examples/lab-small.yaml")
STRANGER = "52:54:00:aa:bb:07"


def test_vms_pxe_boot_into_install_and_discovery() -> None:
    need_root_netns()
    need("qemu-system-x86_64")
    if not Path("/dev/net/tun").exists():
        pytest.skip("no /dev/net/tun for the VMs' tap devices")
    known = load(EXAMPLE).nodes[0]
    work = Path(tempfile.mkdtemp(prefix="cw-vm-"))
    work.chmod(0o755)
    segment = Segment("vm")
    try:
        server = segment.host("srv", "192.168.124.10/24")
        answers = work / "answers.yaml"
        shutil.copyfile(EXAMPLE, answers)
        log = work / "serve.log"
        serve = segment.start(server, sys.executable, "-m", "wizard.cli", "pxe", "serve",
                              str(answers), str(work / "pxe"), "--state", str(work / "state"),
                              "--probe-timeout", "1", log=log)
        wait_for_log(log, "serving http://", serve)
        for index, mac in enumerate([known.macs[0], STRANGER]):
            tap = f"cwtap{index}"
            ip("-n", segment.hub, "tuntap", "add", "dev", tap, "mode", "tap")
            ip("-n", segment.hub, "link", "set", tap, "master", "br0", "up")
            segment.start(
                segment.hub, "qemu-system-x86_64", "-machine", "pc", "-m", "128",
                "-display", "none", "-monitor", "none", "-serial", "none", "-no-reboot",
                "-boot", "n", "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=n0,mac={mac}", log=work / f"vm{index}.log")
        wait_for_log(log, f"boot script install for {known.macs[0]} ({known.name})", serve)
        wait_for_log(log, f"boot script discovery for {STRANGER}", serve)
        dhcp = (work / "pxe" / "dnsmasq" / "dnsmasq.log").read_text()
        assert f"DHCPACK(eth0) 192.168.124.81 {known.macs[0]} {known.name}" in dhcp
        assert "user class: iPXE" in dhcp
        assert "bootfile-name  http://192.168.124.10:8091/boot/${mac}" in dhcp
    finally:
        segment.close()
        shutil.rmtree(work, ignore_errors=True)
    assert leftovers(segment.prefix) == []

