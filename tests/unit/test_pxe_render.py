"""Rendering what PXE serves: dnsmasq config, reservations, boot scripts and the tree on disk."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest

from wizard.answers import Answers, Proposal, load
from wizard.base.escaping import FILTERS, EscapeError
from wizard.catalog import default_catalog
from wizard.cli.main import main
from wizard.provisioning import render as render_module
from wizard.provisioning.dnsmasq import Dnsmasq, find_dnsmasq
from wizard.provisioning.render import boot_kind, boot_script, dnsmasq_config, reservations
from wizard.provisioning.site import ProvisionerSite
from wizard.provisioning.tree import TreeError, prepare, render_tree, token_key

EXAMPLE = Path("answers/examples/lab-small.yaml")
NEW_MAC = "52:54:00:aa:bb:01"


@pytest.fixture(scope="module")
def answers() -> Answers:
    return load(EXAMPLE)


def site_of(answers: Answers, **attributes: Any) -> ProvisionerSite:
    if attributes:
        barclamps = dict(answers.barclamps)
        for barclamp, values in attributes.items():
            old = barclamps.get(barclamp) or Proposal()
            barclamps[barclamp] = old.model_copy(update={"attributes": old.attributes | values})
        answers = answers.model_copy(update={"barclamps": barclamps})
    return ProvisionerSite(answers, default_catalog(), b"k" * 32)


def config_of(site: ProvisionerSite) -> str:
    return dnsmasq_config(site, dnsmasq_dir=Path("/srv/pxe/dnsmasq"), tftp_root=Path("/srv/tftp"))


def options(config: str) -> list[str]:
    return [line for line in config.splitlines() if line and not line.startswith("#")]


def test_dnsmasq_config_serves_the_admin_network(answers: Answers) -> None:
    lines = options(config_of(site_of(answers)))
    assert "interface=eth0" in lines
    assert "dhcp-range=set:admin,192.168.124.21,192.168.124.80,255.255.255.0,60s" in lines
    assert "dhcp-option=tag:admin,option:router,192.168.124.1" in lines
    assert "port=0" in lines, "DNS stays off unless the dns barclamp asks for it"
    assert "dhcp-boot=tag:ipxe,http://192.168.124.10:8091/boot/${mac}" in lines
    assert "dhcp-boot=tag:!ipxe,tag:efi,ipxe.efi" in lines
    assert "dhcp-boot=tag:!ipxe,tag:!efi,undionly.kpxe" in lines
    assert "tftp-root=/srv/tftp" in lines and "dhcp-hostsdir=/srv/pxe/dnsmasq/hosts" in lines


def test_dns_on_when_the_dns_barclamp_asks(answers: Answers) -> None:
    lines = options(config_of(site_of(answers, dns={"dnsmasq_dns": True,
                                                    "forwarders": ["9.9.9.9"]})))
    assert "port=53" in lines and "port=0" not in lines
    assert "local=/lab.crowbar.test/" in lines and "server=9.9.9.9" in lines
    assert "dhcp-option=tag:admin,option:dns-server,192.168.124.10" in lines


def test_pxelinux_for_bios_when_chosen(answers: Answers) -> None:
    site = site_of(answers, provisioner={"bios_boot": "pxelinux"})
    assert "dhcp-boot=tag:!ipxe,tag:!efi,lpxelinux.0" in options(config_of(site))


def test_one_reservation_per_node_from_the_host_range(answers: Answers) -> None:
    site = site_of(answers)
    lines = options(reservations(site))
    assert len(lines) == len(answers.nodes)
    first = answers.nodes[0]
    assert lines[0] == f"{','.join(first.macs)},192.168.124.81,{first.name},1h"


@pytest.mark.parametrize(("mac", "state", "kind"), [
    ("known", None, "install"), ("known", "allocated", "install"),
    ("known", "installing", "install"), ("known", "installed", "local"),
    ("known", "ready", "local"), ("known", "problem", "local"),
    (NEW_MAC, None, "discovery"),
])
def test_boot_kind_by_state(answers: Answers, mac: str, state: str | None, kind: str) -> None:
    site = site_of(answers)
    mac = answers.nodes[0].macs[0] if mac == "known" else mac
    assert boot_kind(site, mac, state) == kind


def test_boot_scripts_in_both_forms(answers: Answers) -> None:
    site = site_of(answers)
    mac = answers.nodes[0].macs[0]
    ipxe = boot_script(site, mac, None)
    assert ipxe.startswith("#!ipxe\n")
    assert "kernel http://192.168.124.10:8091/media/ubuntu-24.04/linux" in ipxe
    assert "ds=nocloud-net;s=http://192.168.124.10:8091/install/ctl-1/" in ipxe
    pxelinux = boot_script(site, mac, None, "pxelinux")
    assert "KERNEL http://192.168.124.10:8091/media/ubuntu-24.04/linux" in pxelinux
    assert "LOCALBOOT 0" in boot_script(site, mac, "ready", "pxelinux")


def test_kernel_args_per_os_family(answers: Answers) -> None:
    rocky = answers.model_copy(update={
        "provisioning": answers.provisioning.model_copy(update={"os": "rocky-9"})})
    script = boot_script(site_of(rocky), answers.nodes[0].macs[0], None)
    assert "inst.ks=http://192.168.124.10:8091/install/ctl-1/ks.cfg" in script
    debian = answers.model_copy(update={
        "provisioning": answers.provisioning.model_copy(update={"os": "debian-12"})})
    script = boot_script(site_of(debian, provisioner={"serial_console": "ttyS1,115200"}),
                         answers.nodes[0].macs[0], None)
    assert "url=http://192.168.124.10:8091/install/ctl-1/preseed.cfg" in script
    assert "console=ttyS1,115200" in script


def test_tree_on_disk(answers: Answers, tmp_path: Path) -> None:
    tree = tmp_path / "pxe"
    prepare(tree)
    site = ProvisionerSite(answers, default_catalog(), token_key(tree))
    summary = render_tree(site, tree)
    macs = [mac for node in answers.nodes for mac in node.macs]
    assert summary.nodes == len(answers.nodes)
    assert sorted(p.name for p in (tree / "http" / "boot").iterdir()) == sorted(
        [f"{mac}.ipxe" for mac in macs] + ["default.ipxe"])
    assert list((tree / "tftp" / "pxelinux.cfg").iterdir()) == [], "iPXE: no pxelinux configs"
    user_data = tree / "http" / "install" / f"{answers.nodes[0].name}.user-data"
    assert stat.S_IMODE(user_data.stat().st_mode) == 0o600
    assert stat.S_IMODE((tree / "token.key").stat().st_mode) == 0o600
    assert token_key(tree) == token_key(tree), "the key is made once and kept"


def test_pxelinux_configs_when_bios_boots_pxelinux(answers: Answers, tmp_path: Path) -> None:
    tree = tmp_path / "pxe"
    prepare(tree)
    summary = render_tree(site_of(answers, provisioner={"bios_boot": "pxelinux"}), tree)
    configs = tree / "tftp" / "pxelinux.cfg"
    first = answers.nodes[0].macs[0]
    assert "install/ctl-1/" in (configs / ("01-" + first.replace(":", "-"))).read_text()
    assert "discovery" in (configs / "default").read_text()
    assert {"lpxelinux.0", "ldlinux.c32"} <= set(summary.loaders) | {
        m.split()[0] for m in summary.missing_loaders}


def test_failed_render_keeps_the_previous_tree(answers: Answers, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "pxe"
    prepare(tree)
    site = site_of(answers)
    render_tree(site, tree)
    before = sorted(p.relative_to(tree) for p in tree.rglob("*"))

    def broken(*args: object) -> dict[str, str]:
        raise OSError("disk full")
    monkeypatch.setattr("wizard.provisioning.tree.install_files", broken)
    with pytest.raises(OSError, match="disk full"):
        render_tree(site, tree)
    assert sorted(p.relative_to(tree) for p in tree.rglob("*")) == before


def test_refuses_a_directory_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    with pytest.raises(TreeError, match="did not write"):
        prepare(tmp_path)


@pytest.mark.skipif(find_dnsmasq() is None, reason="dnsmasq is not installed")
def test_pxe_render_command_writes_a_config_dnsmasq_accepts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "pxe"
    assert main(["pxe", "render", str(EXAMPLE), str(tree)]) == 0
    out = capsys.readouterr().out
    assert "accepted by dnsmasq --test" in out
    driver = Dnsmasq(tree / "dnsmasq")
    driver.check(driver.config.read_text(), driver.hosts.read_text())
    assert main(["pxe", "render", str(EXAMPLE), str(tree)]) == 0, "re-render over itself"


def test_templates_compile() -> None:
    names = [p.relative_to(render_module.template_directory()).as_posix()
             for p in render_module.template_directory().rglob("*.j2")]
    assert len(names) >= 13
    for name in names:
        render_module._template(name)


@pytest.mark.parametrize(("flt", "value", "message"), [
    ("dnsmasq_value", "8.8.8.8\ndhcp-script=/tmp/x", "holds a line break"),
    ("dnsmasq_value", "/srv/a,b", "',' is special there"),
    ("dnsmasq_value", "a #b", "'#' is special there"),
    ("dnsmasq_value", "", "empty or space-padded"),
    ("ipxe_word", "http://x/ chain", "' ' is special there"),
    ("ipxe_word", "${net0/ip}", "'$' is special there"),
    ("ipxe_word", "||", "it separates commands"),
    ("ipxe_words", "quiet && shell", "it separates commands"),
    ("pxelinux_word", "a b", "has spaces"),
    ("pxelinux_line", "quiet\nLABEL evil", "holds a line break"),
    ("sh_word", "key\rcomment", "holds a carriage return"),
    ("debconf_word", "mirror/http x", "has spaces"),
    ("debconf_value", "host\\", "ending in '\\'"),
    ("ruby_string", "a\u2028b", "holds a control character"),
])
def test_format_filters_refuse_what_their_format_cannot_hold(flt: str, value: str,
                                                             message: str) -> None:
    with pytest.raises(EscapeError, match=re.escape(message)):
        FILTERS[flt](value)


@pytest.mark.parametrize(("flt", "value", "written"), [
    ("sh_word", "ssh-ed25519 AAAA x'; reboot; '", "'ssh-ed25519 AAAA x'\"'\"'; reboot; '\"'\"''"),
    ("sh_word", "ttyS1,115200", "ttyS1,115200"),
    ("ipxe_words", "quiet  console=ttyS1", "quiet console=ttyS1"),
    ("ruby_string", 'a"b\\c#{x}', '"a\\"b\\\\c\\#{x}"'),
])
def test_format_filters_escape(flt: str, value: str, written: str) -> None:
    assert FILTERS[flt](value) == written


def test_no_template_value_can_break_a_line() -> None:
    """Every expression of every PXE template goes through one_line (jinja's finalize), so a
    template that forgets its format's filter still cannot let a value start a line."""
    template = render_module._environment(False).from_string("kernel {{ value }}\n")
    assert template.render(value="http://x/linux") == "kernel http://x/linux\n"
    with pytest.raises(EscapeError, match="holds a line break"):
        template.render(value="http://x/linux\nshell")


def test_pxe_render_refuses_a_directory_dnsmasq_cannot_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DIR's paths go into dnsmasq's config: one it cannot hold is bad input (exit 2), and
    nothing is written."""
    tree = tmp_path / "pxe\ndhcp-script=x"
    assert main(["pxe", "render", str(EXAMPLE), str(tree)]) == 2
    assert "cannot render: DIR:" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
