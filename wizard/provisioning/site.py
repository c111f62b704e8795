"""The PXE view of a deployment: nodes by MAC, their admin addresses, tokens and install media.

Built once from a valid answers file; the dnsmasq config, boot scripts and install files
are all rendered from it (``wizard.provisioning.render``), so they always agree.

Callback tokens are HMAC-SHA256 under a key kept beside the rendered tree, unguessable
without it: a node's of its name and install epoch (so each install has its own, useless
once that install is over: :mod:`wizard.provisioning.state`), a discovery image's of the
booting MAC and the address that asked for its boot script (so a token given to one
machine is no good from another).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from wizard.answers import OS_FAMILIES, Answers
from wizard.answers.addressing import node_addresses
from wizard.answers.node_network import NodeNetwork, node_network
from wizard.answers.proposals import assignments, attribute_values
from wizard.base.fields import ssh_public_key
from wizard.base.secrets import Secret, SecretError
from wizard.catalog import Catalog

_CRYPT_HASH = re.compile(r"\$[0-9a-z]{1,3}(\$[A-Za-z0-9./=,+-]+)+")
"""A modular crypt(3) hash ($id$[params$]salt$hash): it goes into preseeds and kickstarts."""
ADMIN_NETWORK = "admin"
INSTALL_STATES = frozenset({"discovered", "allocated", "hardware-installing", "installing"})
"""Node states that boot the OS installer; every later state boots from local disk. A
machine PXE discovery found is ``discovered`` until it is deployed: once it is a node of the
answers file, it installs."""

INSTALL_FILES = {
    "ubuntu": ("user-data", "meta-data"), "debian": ("preseed.cfg",), "rhel": ("ks.cfg",),
}
"""The answer files each OS family's installer fetches from ``/install/<node>/``."""


@dataclass(frozen=True)
class PxeNode:
    """A node as PXE sees it."""

    name: str
    fqdn: str
    macs: tuple[str, ...]
    address: str


class ProvisionerSite:
    """Everything PXE serves for one answers file."""

    def __init__(self, answers: Answers, catalog: Catalog, token_key: bytes,
                 peers: dict[str, str] | None = None, *, admin_ssh_key: str | None = None):
        """``peers`` overrides where a node's requests come from (by node name); by
        default its reserved admin address. The lab, which has no DHCP, gives each node its
        simulated server's loopback address.

        ``admin_ssh_key``, the admin node's own public key line
        (:func:`wizard.chef.starters.admin_ssh_key`), goes into every installed node's root
        ``authorized_keys`` beside the operator's keys, so the admin node can run
        chef-client there over SSH. Raises :class:`ValueError` when it is no OpenSSH public
        key line."""
        self.answers = answers
        self.admin_ssh_key = ssh_public_key(admin_ssh_key) if admin_ssh_key else None
        self._key = token_key
        self._peers = peers or {}
        proposal = answers.barclamps.get("provisioner")
        self.attributes = attribute_values(
            catalog["provisioner"], proposal.attributes if proposal else {}
        )
        dns_proposal = answers.barclamps.get("dns")
        self.dns_attributes = attribute_values(
            catalog["dns"], dns_proposal.attributes if dns_proposal else {}
        )
        admin = answers.admin
        self.domain = answers.site.domain
        self.http_url = f"http://{admin.address}:{self.attributes['web_port']}"
        self.admin_net = answers.networks[ADMIN_NETWORK]
        addresses = node_addresses(answers)
        self._addresses = addresses
        self.nodes: dict[str, PxeNode] = {}
        self.by_mac: dict[str, PxeNode] = {}
        for node in answers.nodes:
            address = addresses[node.name].get(ADMIN_NETWORK)
            if address is None:
                continue
            pxe = PxeNode(node.name, f"{node.name}.{self.domain}", tuple(node.macs), address)
            self.nodes[node.name] = pxe
            for mac in node.macs:
                self.by_mac[mac] = pxe
        placed = assignments(answers, catalog).get("dns", {})
        self.dns_servers = [
            admin.address if name == admin.hostname else addresses[name].get(ADMIN_NETWORK)
            for name in placed.get("dns-server", [])
        ]
        self.discovery = "pxe" in answers.discovery.methods
        deployer = answers.barclamps.get("deployer")
        self.os_disk = attribute_values(
            catalog["deployer"], deployer.attributes if deployer else {}
        )["os_disk"]
        family, release = OS_FAMILIES[answers.provisioning.os]
        self.os_family, self.os_release = family, release

    # --- tokens ------------------------------------------------------------------------

    def token(self, node: str, epoch: int = 0) -> str:
        """The token the install files of ``node``'s install number ``epoch`` carry."""
        return self._mac_of(f"node:{node}:{epoch}".encode())

    def discovery_token(self, mac: str, peer: str) -> str:
        """The token the discovery script given to ``mac``, asked for from ``peer``, posts
        its inventory with (from that same address)."""
        return self._mac_of(f"discover:{mac}:{peer}".encode())

    def peer(self, node: PxeNode) -> str:
        """The address ``node``'s requests must come from."""
        return self._peers.get(node.name, node.address)

    def _mac_of(self, message: bytes) -> str:
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    # --- install media -----------------------------------------------------------------

    def media_url(self) -> str:
        return f"{self.http_url}/media/{self.answers.provisioning.os}"

    def kernel_url(self) -> str:
        return self.answers.provisioning.kernel_url or f"{self.media_url()}/linux"

    def initrd_url(self) -> str:
        return self.answers.provisioning.initrd_url or f"{self.media_url()}/initrd"

    def install_url(self, node: str) -> str:
        return f"{self.http_url}/install/{node}"

    def kernel_args(self, node: PxeNode) -> str:
        """The installer's kernel command line: where its answers are, console, extras."""
        url = self.install_url(node.name)
        mirror = self.answers.provisioning.mirror.rstrip("/")
        if self.os_family == "ubuntu":
            args = [f"url={self.media_url()}/live-server.iso", "ip=dhcp", "autoinstall",
                    f"ds=nocloud-net;s={url}/"]
        elif self.os_family == "debian":
            args = ["auto=true", "priority=critical", f"url={url}/preseed.cfg",
                    f"hostname={node.name}", f"domain={self.domain}", "interface=auto"]
        else:
            # dracut names each NIC as the kickstart's network lines (and the installed
            # system, which anaconda gives the same ifname= arguments) expect it
            pinned = [f"ifname={nic.name}:{nic.mac}" for nic in self.network(node).nics]
            args = [f"inst.ks={url}/ks.cfg", f"inst.repo={mirror}/BaseOS/x86_64/os", "ip=dhcp",
                    *pinned]
        return " ".join([*args, *self._console_args()])

    def _console_args(self) -> list[str]:
        args = []
        if self.attributes["serial_console"]:
            args.append(f"console={self.attributes['serial_console']}")
        if self.attributes["kernel_params"]:
            args.append(self.attributes["kernel_params"])
        return args

    def discovery_args(self, mac: str, peer: str) -> str:
        """The discovery image's kernel command line: the provisioner it posts its inventory
        to and asks for orders, the MAC it booted from, its token."""
        return " ".join([
            f"crowbar.url={self.http_url}", f"crowbar.mac={mac}",
            f"crowbar.token={self.discovery_token(mac, peer)}", *self._console_args(),
        ])

    # --- template contexts -------------------------------------------------------------

    def network(self, node: PxeNode) -> NodeNetwork:
        """``node``'s planned network, as every installer configures it."""
        planned = next(n for n in self.answers.nodes if n.name == node.name)
        servers = [server for server in self.dns_servers if server is not None]
        return node_network(self.answers, planned, self._addresses[node.name],
                            servers or [self.answers.admin.address])

    def install_context(self, node: PxeNode, epoch: int = 0) -> dict[str, Any]:
        """What a node's install templates see (secrets revealed: render to 0600 files).

        Raises :class:`SecretError` when ``root_password_hash`` cannot be resolved.
        """
        url = self.http_url
        network = self.network(node)
        crowded = [d for d in network.devices if len(d.addresses) > 1 and d.kind != "vlan"]
        if self.os_family == "rhel" and crowded:
            nets = " and ".join(address.network for address in crowded[0].addresses)
            raise ValueError(f"node {node.name}: a kickstart network line holds one address, "
                             f"and {nets} are all untagged on {crowded[0].name}: tag them")
        return self._install_shared | {
            "node": self._node_fields | {
                "name": node.name, "fqdn": node.fqdn, "mac": node.macs[0],
                "macs": list(node.macs), "address": node.address,
                "token": self.token(node.name, epoch),
            },
            "network": network,
            "callbacks": {
                "installed": f"{url}/nodes/{node.name}/installed",
                "client_key": f"{url}/nodes/{node.name}/client-key",
                "problem": f"{url}/nodes/{node.name}/problem",
                "token_header": "X-Crowbar-Token",
            },
        }

    @functools.cached_property
    def _node_fields(self) -> dict[str, Any]:
        net = self.admin_net.cidr()
        return {"prefix": net.prefixlen, "netmask": str(net.netmask),
                "gateway": self.admin_net.router}

    @functools.cached_property
    def _install_shared(self) -> dict[str, Any]:
        answers = self.answers
        chef = answers.chef
        return {
            "site": {"domain": self.domain, "timezone": answers.site.timezone,
                     "ntp_servers": list(answers.site.ntp_servers)},
            "admin": {"hostname": answers.admin.hostname, "address": answers.admin.address,
                      "url": self.http_url},
            "os": {"id": answers.provisioning.os, "family": self.os_family,
                   "release": self.os_release},
            "mirror": answers.provisioning.mirror.rstrip("/"),
            "dns_servers": self.dns_servers or [answers.admin.address],
            "ssh_keys": [*answers.provisioning.ssh_authorized_keys,
                         *self.attributes["access_keys"],
                         *([self.admin_ssh_key] if self.admin_ssh_key else [])],
            "root_password_hash": self._root_password_hash(),
            "chef": {
                "server_url": chef.server_url, "organization": chef.organization,
            },
            "serial_console": self.attributes["serial_console"],
            "os_disk": self.os_disk,
        }

    def _root_password_hash(self) -> str | None:
        value = self.attributes["root_password_hash"]
        if value is None:
            return None
        try:
            hashed = Secret(value).reveal()
        except SecretError as exc:
            raise SecretError(f"provisioner attribute root_password_hash: {exc}") from None
        if not _CRYPT_HASH.fullmatch(hashed):
            raise SecretError("provisioner attribute root_password_hash: what it names is not a "
                              "crypt(3) hash such as $6$SALT$HASH or $y$j9T$SALT$HASH (one line)")
        return hashed
