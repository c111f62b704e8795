"""Template contexts shared by the catalog's self-check and the Chef renderer.

:func:`sample_context` is a made-up deployment of the whole catalog: the catalog renders every
template against it when it loads, so a template that cannot render fails at load, not at
deploy. :func:`networks_context` is what templates see of the networks, for the sample and
for a real deployment (:mod:`wizard.chef.objects`) alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wizard.network import default_networks

if TYPE_CHECKING:
    from wizard.catalog import Catalog

SAMPLE_SECRET = "sample-secret"


def networks_context(networks: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, net in networks.items():
        cidr = net.cidr()
        out[name] = {
            "subnet": str(cidr.network), "prefix": cidr.prefixlen, "cidr": str(cidr),
            "netmask": str(cidr.netmask), "broadcast": str(cidr.broadcast),
            "router": net.router, "vlan": net.vlan, "use_vlan": net.use_vlan,
            "add_bridge": net.add_bridge, "mtu": net.mtu, "conduit": net.conduit,
            "ranges": dict(net.ranges),
        }
    return out


def sample_context(catalog: Catalog, barclamp: str, *, minimal: bool = False) -> dict[str, Any]:
    """A made-up deployment of the whole catalog (one node per role), to try templates on.

    ``minimal`` is the leanest deployment templates must cope with too: only the admin and
    BMC networks, no node on roles that may have none, optional secrets unset.
    """
    networks = default_networks()
    if minimal:
        networks = {name: networks[name] for name in ("admin", "bmc")}
    proposals: dict[str, Any] = {}
    nodes: dict[str, Any] = {}
    for index, (name, entry) in enumerate(catalog.entries.items()):
        roles = {}
        for r, role in enumerate(entry.barclamp.roles):
            node = f"sample-{index}-{r}"
            roles[role.name] = [] if minimal and role.min_nodes == 0 else [node]
            nodes[node] = {
                "name": node, "fqdn": f"{node}.sample.test", "address": f"192.0.2.{r + 1}",
                "addresses": {net: f"198.51.{index}.{r + 1}" for net in networks}
                | {"admin": f"192.0.2.{r + 1}"},
                "bmc_address": f"203.0.113.{r + 1}", "roles": [role.name], "intended": [],
                "hardware": {"cpu_cores": 8, "memory_gb": 64, "disks": 4,
                             "virtualization": True},
            }
        values = {
            key: (None if minimal and not attr.required else SAMPLE_SECRET)
            if attr.type == "secret" else attr.default
            for key, attr in entry.barclamp.attributes.items()
        }
        proposals[name] = {"proposal": "default", "attributes": values, "roles": roles}
    return {
        "barclamp": barclamp, "proposal": "default",
        "attributes": proposals[barclamp]["attributes"], "roles": proposals[barclamp]["roles"],
        "nodes": nodes, "proposals": proposals,
        "site": {"name": "sample", "domain": "sample.test", "timezone": "UTC",
                 "ntp_servers": [] if minimal else ["192.0.2.10"],
                 "dns_forwarders": [] if minimal else ["192.0.2.1"]},
        "admin": {"hostname": "admin", "fqdn": "admin.sample.test", "address": "192.0.2.10"},
        "networks": networks_context(networks),
    }
