"""Render what PXE serves: dnsmasq config, DHCP reservations, boot scripts and install files.

The templates are the provisioner barclamp's, in ``barclamps/provisioner/pxe/``: ``boot/`` holds
one iPXE and one pxelinux form per boot kind, ``install/`` one answer-file template per OS
family, ``dnsmasq.conf.j2`` the DHCP/TFTP server. All are compiled once per process, with
a filter per format (``wizard.base.escaping``) and no value able to hold a line break.
"""

from __future__ import annotations

import functools
import json
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import jinja2
import netaddr

from wizard.base.escaping import FILTERS, dnsmasq_value, one_line
from wizard.provisioning.site import INSTALL_FILES, INSTALL_STATES, ProvisionerSite, PxeNode

BootKind = Literal["discovery", "install", "local", "unknown"]
BootForm = Literal["ipxe", "pxelinux"]
RESERVED_LEASE = "1h"
"""Lease time of a node's reserved address (unknown machines get the provisioner's)."""


def template_directory() -> Path:
    return Path(str(files("wizard.barclamps"))) / "provisioner" / "pxe"


@functools.cache
def _environment(trim: bool) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_directory()),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,
        auto_reload=False, trim_blocks=trim, lstrip_blocks=trim, finalize=one_line,
    )
    # plain JSON (valid YAML): no HTML escaping of ' < > &
    environment.filters["tojson"] = json.dumps
    environment.filters.update(FILTERS)
    return environment


@functools.cache
def _template(name: str) -> jinja2.Template:
    return _environment(name == "dnsmasq.conf.j2").get_template(name)


def dnsmasq_config(site: ProvisionerSite, *, dnsmasq_dir: Path, tftp_root: Path) -> str:
    """dnsmasq's config: DHCP on the admin network, TFTP, boot files, DNS if asked for."""
    net = site.admin_net
    dhcp = net.block("dhcp")
    if dhcp is None:
        raise ValueError("the admin network has no dhcp range for unknown machines")
    answers = site.answers
    dns = bool(site.dns_attributes["dnsmasq_dns"])
    return _template("dnsmasq.conf.j2").render(
        interface=answers.admin.interface, subnet=str(net.cidr()),
        dhcp_start=str(dhcp[0]), dhcp_end=str(dhcp[-1]), netmask=str(net.cidr().netmask),
        lease_time=site.attributes["dhcp_lease_time"], router=net.router,
        domain=site.domain, dns=dns,
        forwarders=site.dns_attributes["forwarders"] or answers.site.dns_forwarders,
        dns_servers=[answers.admin.address] if dns else site.dns_servers or
        [answers.admin.address],
        ntp_servers=[s for s in answers.site.ntp_servers if netaddr.valid_ipv4(s)],
        lease_file=dnsmasq_dir / "leases", hosts_dir=dnsmasq_dir / "hosts",
        tftp_root=tftp_root, http_url=site.http_url, loaders=boot_loaders(site),
    )


def boot_loaders(site: ProvisionerSite) -> dict[str, str]:
    """TFTP boot file by firmware: UEFI gets iPXE, BIOS iPXE or (by choice) pxelinux."""
    bios = "lpxelinux.0" if site.attributes["bios_boot"] == "pxelinux" else "undionly.kpxe"
    return {"bios": bios, "uefi": "ipxe.efi"}


def reservations(site: ProvisionerSite) -> str:
    """The ``dhcp-hostsdir`` file: one reservation (MACs, address, name) per node."""
    lines = ["# Crowbar Wizard: DHCP reservations, one node a line (MACs,address,name,lease)"]
    lines += [",".join(map(dnsmasq_value, [*node.macs, node.address, node.name, RESERVED_LEASE]))
              for node in site.nodes.values()]
    return "\n".join(lines) + "\n"


def pxelinux_name(mac: str) -> str:
    """pxelinux's per-MAC config name: ``01-`` (Ethernet) + the MAC with dashes."""
    return "01-" + mac.replace(":", "-")


def boot_kind(site: ProvisionerSite, mac: str, state: str | None) -> BootKind:
    """Which script a booting MAC gets: a known node by its state, a new machine discovery
    (or, with PXE discovery off, the unknown-node script)."""
    if mac not in site.by_mac:
        return "discovery" if site.discovery else "unknown"
    if state is None or state in INSTALL_STATES:
        return "install"
    return "local"


def boot_script(site: ProvisionerSite, mac: str, state: str | None,
                form: BootForm = "ipxe", *, peer: str = "") -> str:
    """The boot script (iPXE, or a pxelinux config) for ``mac`` in node state ``state``,
    asked for from address ``peer`` (a discovery token is good from there only)."""
    kind = boot_kind(site, mac, state)
    node = site.by_mac.get(mac)
    context: dict[str, Any] = {"mac": mac, "http_url": site.http_url, "node": None}
    if kind == "install":
        assert node is not None
        context |= {
            "node": {"name": node.name, "fqdn": node.fqdn},
            "os": site.answers.provisioning.os,
            "kernel": site.kernel_url(), "initrd": site.initrd_url(),
            "args": site.kernel_args(node),
        }
    elif kind == "discovery":
        context |= {
            "kernel": f"{site.http_url}/media/discovery/linux",
            "initrd": f"{site.http_url}/media/discovery/initrd",
            "args": site.discovery_args(mac, peer),
        }
    elif kind == "local" and node is not None:
        context["node"] = {"name": node.name, "fqdn": node.fqdn}
    return _template(f"boot/{kind}.{form}.j2").render(context)


def install_files(site: ProvisionerSite, node: PxeNode, epoch: int = 0) -> dict[str, str]:
    """``{file name: text}``: the answer files of ``node``'s install number ``epoch``."""
    context = site.install_context(node, epoch)
    return {
        name: _template(f"install/{site.os_family}/{name}.j2").render(context)
        for name in INSTALL_FILES[site.os_family]
    }
