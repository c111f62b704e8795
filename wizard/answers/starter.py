"""A valid starting answers file for a site, carved from one supernet (``crowbar-wizard new``)."""

from __future__ import annotations

from wizard.answers import Admin, Answers, Bmc, Chef, Discovery, Provisioning, Site
from wizard.base.secrets import Secret
from wizard.network import auto_plan, default_conduits

BMC_PASSWORD_REF = "env:CROWBAR_BMC_PASSWORD"
CHEF_DIR = "/etc/crowbar/chef"
PROVISIONER_PORT = 8091
CHEF_PORT = 4545


def starter_answers(
    supernet: str, node_count: int, *, name: str = "crowbar", domain: str = "crowbar.test"
) -> Answers:
    """Answers for ``node_count`` nodes with networks from :func:`auto_plan` and no nodes yet.

    Secrets are references (``env:``/``file:``), so the file holds no secret itself.
    Raises :class:`wizard.network.PlanError` when the supernet is too small.
    """
    networks = auto_plan(supernet, node_count)
    admin_net = networks["admin"]
    admin_ip = admin_net.ranges["admin"].split("-")[0]
    return Answers(
        schema_version=1,
        site=Site(name=name, domain=domain, timezone="UTC", ntp_servers=[admin_ip],
                  dns_forwarders=[]),
        admin=Admin(hostname="admin", address=admin_ip, interface="eth0"),
        conduits=default_conduits(),
        networks=networks,
        bmc=Bmc(network="bmc", username="root", password=Secret(BMC_PASSWORD_REF)),
        discovery=Discovery(methods=["ipmi", "pxe"], bmc_ranges=[networks["bmc"].ranges["host"]]),
        provisioning=Provisioning(
            os="ubuntu-24.04", mirror=f"http://{admin_ip}:{PROVISIONER_PORT}/ubuntu"
        ),
        chef=Chef(
            server_url=f"http://{admin_ip}:{CHEF_PORT}",
            client_name="crowbar",
            key=Secret(f"file:{CHEF_DIR}/crowbar.pem"),
        ),
        barclamps={},
        nodes=[],
    )
