"""The node's planned network and OS disk as each installer renders them, read by the real tools.

netplan's own generator turns the autoinstall ``network:`` section into systemd-networkd
files; ifupdown's parser (``ifquery``) reads the Debian interfaces file as written by the
preseed's shell; pykickstart parses the kickstart's network lines. Each has a negative
control. The os_disk pipelines run in a real shell against a stand-in ``lsblk``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pykickstart.parser import KickstartParser
from pykickstart.version import RHEL9, makeVersion

from tests.unit.test_install_templates import _answers, _render
from wizard.answers import Answers, Hardware, Nic
from wizard.network import Conduit

MACS = ["52:54:00:00:10:00", "52:54:00:00:10:01", "52:54:00:00:10:02"]


def need(binary: str) -> str:
    """A Debian-packaged tool (./dev deps installs it): CI must have it, a laptop may skip."""
    path = shutil.which(binary) or next(
        (f"{d}/{binary}" for d in ("/usr/sbin", "/sbin") if Path(f"{d}/{binary}").exists()),
        None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed (./dev deps installs it)")
        pytest.skip(f"{binary} is not installed (./dev deps installs it)")
    return path


def bonded(os_id: str, os_disk: str | None = None) -> Answers:
    """lab-small, its controller ctl-1 with three 1 GbE NICs: admin on the first, the 2nd and
    3rd bonded (802.3ad) for storage (VLAN 200) and public (VLAN 300, the default route)."""
    answers = _answers(os_id)
    ctl = answers.nodes[0]
    hardware = (ctl.hardware or Hardware(cpu_cores=1, memory_gb=1)).model_copy(
        update={"nics": [Nic(mac=mac, speed_mbps=1000) for mac in MACS]})
    update: dict[str, Any] = {
        "conduits": answers.conduits | {"intf1": Conduit(interfaces=["1g2", "1g3"],
                                                         teaming_mode=4)},
        "nodes": [ctl.model_copy(update={"macs": MACS, "hardware": hardware}),
                  *answers.nodes[1:]]}
    if os_disk:
        deployer = answers.barclamps.get("deployer")
        assert deployer is not None
        update["barclamps"] = answers.barclamps | {"deployer": deployer.model_copy(
            update={"attributes": deployer.attributes | {"os_disk": os_disk}})}
    return answers.model_copy(update=update)


def _netplan(tmp_path: Path, network: dict[str, Any]) -> dict[str, str]:
    """``netplan generate`` on ``network`` in a root of its own: {generated file: text}."""
    root = tmp_path / "root"
    config = root / "etc" / "netplan" / "50-crowbar.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(yaml.safe_dump({"network": network}))
    config.chmod(0o600)
    result = subprocess.run([need("netplan"), "generate", "--root-dir", str(root)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    out = root / "run" / "systemd" / "network"
    return {path.name: path.read_text() for path in out.iterdir()}


def test_netplan_generates_the_bond_vlans_addresses_and_route(tmp_path: Path) -> None:
    files, _ = _render(bonded("ubuntu-24.04"))
    network = yaml.safe_load(files["user-data"])["autoinstall"]["network"]
    out = _netplan(tmp_path, network)
    assert "Kind=bond" in out["10-netplan-bond0.netdev"]
    assert "Mode=802.3ad" in out["10-netplan-bond0.netdev"]
    assert "MIIMonitorSec=100ms" in out["10-netplan-bond0.netdev"]
    for nic, mac in (("nic1", MACS[1]), ("nic2", MACS[2])):
        assert f"PermanentMACAddress={mac}" in out[f"10-netplan-{nic}.network"]
        assert "Bond=bond0" in out[f"10-netplan-{nic}.network"]
        assert f"Name={nic}" in out[f"10-netplan-{nic}.link"]
    assert "Id=200" in out["10-netplan-bond0.200.netdev"]
    assert "VLAN=bond0.200" in out["10-netplan-bond0.network"]
    assert "Address=192.168.125.10/24" in out["10-netplan-bond0.200.network"]
    public = out["10-netplan-bond0.300.network"]
    assert "Address=192.168.126.2/24" in public
    assert "Destination=0.0.0.0/0\nGateway=192.168.126.1" in public
    admin = out["10-netplan-nic0.network"]
    assert f"PermanentMACAddress={MACS[0]}" in admin
    assert "Address=192.168.124.81/24" in admin and "Gateway" not in admin
    assert "DNS=192.168.124.10" in admin and "Domains=lab.crowbar.test" in admin


def test_netplan_rejects_a_broken_network(tmp_path: Path) -> None:
    """Negative control: a VLAN on a link netplan does not know fails generate."""
    files, _ = _render(bonded("ubuntu-24.04"))
    network = yaml.safe_load(files["user-data"])["autoinstall"]["network"]
    network["vlans"]["bond0.200"]["link"] = "bond9"
    with pytest.raises(AssertionError, match="bond9"):
        _netplan(tmp_path, network)


def _interfaces(tmp_path: Path, preseed: str) -> Path:
    """The interfaces file the preseed's late_command writes, written by a real shell."""
    late = preseed.split("d-i preseed/late_command string \\\n", 1)[1].replace("\\\n", "")
    [command] = [part.strip() for part in late.split(" && ")
                 if part.strip().endswith("> /target/etc/network/interfaces")]
    target = tmp_path / "interfaces"
    subprocess.run(["sh", "-c", command.replace("/target/etc/network/interfaces", str(target))],
                   check=True)
    return target


def _ifquery(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need("ifquery"), "-i", str(path), "--state-dir", str(path.parent),
                           *args], capture_output=True, text=True, check=False)


def test_ifupdown_reads_the_bond_vlans_and_route(tmp_path: Path) -> None:
    files, _ = _render(bonded("debian-12"))
    path = _interfaces(tmp_path, files["preseed.cfg"])
    listed = _ifquery(path, "-l", "-a")
    assert listed.stdout.split() == ["lo", "nic0", "bond0", "bond0.200", "bond0.300"]
    bond = _ifquery(path, "bond0").stdout.splitlines()
    assert "bond-slaves: nic1 nic2" in bond and "bond-mode: 802.3ad" in bond
    storage = _ifquery(path, "bond0.200").stdout.splitlines()
    assert {"vlan-raw-device: bond0", "address: 192.168.125.10",
            "netmask: 255.255.255.0"} <= set(storage)
    public = _ifquery(path, "bond0.300").stdout.splitlines()
    assert "gateway: 192.168.126.1" in public
    assert "address: 192.168.124.81" in _ifquery(path, "nic0").stdout.splitlines()
    assert "ifenslave vlan" in files["preseed.cfg"]
    for nic, mac in zip(("nic0", "nic1", "nic2"), MACS, strict=True):
        assert (f"'[Match]' PermanentMACAddress={mac} '' '[Link]' Name={nic} > "
                f"/target/etc/systemd/network/10-crowbar-{nic}.link") in files["preseed.cfg"]


def test_ifquery_rejects_a_broken_interfaces_file(tmp_path: Path) -> None:
    """Negative control: an option outside any stanza makes ifquery fail."""
    path = tmp_path / "interfaces"
    path.write_text("address 10.0.0.1/24\nauto lo\niface lo inet loopback\n")
    assert _ifquery(path, "-l", "-a").returncode != 0


def test_kickstart_network_lines_parse_as_planned() -> None:
    files, _ = _render(bonded("rocky-9"))
    parser = KickstartParser(makeVersion(RHEL9), followIncludes=False)
    parser.readKickstartFromString(files["ks.cfg"])
    lines = {(n.device, n.vlanid): n for n in parser.handler.network.network}
    assert set(lines) == {("nic0", ""), ("bond0", "")}
    admin = lines["nic0", ""]
    assert (admin.bootProto, admin.ip, admin.netmask, admin.activate) == (
        "static", "192.168.124.81", "255.255.255.0", True)
    assert admin.nameserver == "192.168.124.10" and not admin.gateway
    bond = lines["bond0", ""]
    assert (bond.bondslaves, bond.bondopts) == ("nic1,nic2", "mode=802.3ad,miimon=100")
    assert bond.noipv4
    # pykickstart takes one line a --device: the VLANs on bond0 are NetworkManager keyfiles
    assert "interface-name=bond0.200\n" in files["ks.cfg"]
    assert "address1=192.168.125.10/24\n" in files["ks.cfg"]
    assert "interface-name=bond0.300\n" in files["ks.cfg"]
    assert "address1=192.168.126.2/24,192.168.126.1\n" in files["ks.cfg"]


def test_kickstart_boot_line_pins_nic_names() -> None:
    from wizard.catalog import default_catalog
    from wizard.provisioning.site import ProvisionerSite

    site = ProvisionerSite(bonded("rocky-9"), default_catalog(), b"k" * 32)
    args = site.kernel_args(site.nodes["ctl-1"]).split()
    assert [a for a in args if a.startswith("ifname=")] == [
        f"ifname=nic{i}:{mac}" for i, mac in enumerate(MACS)]


LSBLK = """\
sda disk 0 500107862016
sdb disk 1 16008609792
zram0 disk 0 8589934592
nvme0n1 disk 0 250059350016
sdc disk 0 2000398934016
"""
"""A stand-in lsblk -dnbo NAME,TYPE,RM,SIZE: a USB stick (sdb) and zram are never chosen."""


@pytest.mark.parametrize(("os_disk", "disk"), [
    ("first", "/dev/sda"), ("smallest", "/dev/nvme0n1"), ("largest", "/dev/sdc")])
def test_os_disk_is_the_disk_the_deployer_names(os_disk: str, disk: str, tmp_path: Path) -> None:
    """ks.cfg's %pre and Ubuntu's early-command pick the disk os_disk names; Ubuntu's
    smallest/largest are subiquity's own size match."""
    fake = tmp_path / "lsblk"
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{LSBLK}EOF\n")
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    ks = _render(bonded("rocky-9", os_disk))[0]["ks.cfg"]
    pre = ks.split("\n%pre --erroronfail\n", 1)[1].split("\n%end", 1)[0]
    command = next(line for line in pre.splitlines() if line.startswith("disk="))
    picked = subprocess.run(["sh", "-c", f"{command}; echo $disk"], env=env, capture_output=True,
                            text=True, check=True).stdout.strip()
    assert picked == disk
    autoinstall = yaml.safe_load(_render(bonded("ubuntu-24.04", os_disk))[0]["user-data"])[
        "autoinstall"]
    match = autoinstall["storage"]["layout"]["match"]
    if os_disk == "first":
        config = tmp_path / "autoinstall.yaml"
        config.write_text(yaml.safe_dump({"storage": autoinstall["storage"]}))
        [early] = autoinstall["early-commands"]
        subprocess.run(["sh", "-c", early.replace("/autoinstall.yaml", str(config))], env=env,
                       check=True)
        assert yaml.safe_load(config.read_text())["storage"]["layout"]["match"] == {"path": disk}
    else:
        assert match == {"size": os_disk} and "early-commands" not in autoinstall
