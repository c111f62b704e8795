"""The lab's chef-client against a real Chef server (goiardi): what a lab server does when the
engine asks it to converge.

What stands in: chef-client itself, which no registry these machines reach packages; the
lab's client (``wizard.lab.chef_client``) makes the requests chef-client makes, as the
node's own API client, and records its run as the deployer cookbook's handler does. It does
not run the recipes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from wizard.catalog import default_catalog
from wizard.chef.api import ChefServer
from wizard.chef.converge import read_run, with_request
from wizard.chef.cookbooks import read_cookbook
from wizard.chef.node import public_pem, register_client
from wizard.chef.upload import upload_cookbook
from wizard.lab.agent import node_keys
from wizard.lab.bmc import Faults
from wizard.lab.chef_client import Facts, LabChefClient, LabChefPool, LabClients
from wizard.lab.fleet import plan_fleet
from wizard.lab.goiardi import Goiardi

pytestmark = pytest.mark.slow
NODE = "n1.lab.test"


def ntp_cookbook() -> Path:
    entry = default_catalog().entries["ntp"]
    return next(c.directory for c in entry.cookbooks if c.metadata.name == "ntp")


async def site(goiardi: Goiardi, key: str, roles: dict[str, list[str]]) -> ChefServer:
    admin = ChefServer(goiardi.url, "admin", goiardi.admin_key.read_text())
    await upload_cookbook(admin, read_cookbook(ntp_cookbook()))
    await admin.upsert("environments", {
        "name": "lab", "description": "", "json_class": "Chef::Environment",
        "chef_type": "environment", "default_attributes": {}, "override_attributes": {},
        "cookbook_versions": {"ntp": "= 1.0.0"}})
    for name, run_list in roles.items():
        await admin.upsert("roles", {"name": name, "description": "", "run_list": run_list,
                                     "json_class": "Chef::Role", "chef_type": "role",
                                     "default_attributes": {}, "override_attributes": {},
                                     "env_run_lists": {}})
    await register_client(admin, NODE, public_pem(key))
    await admin.upsert("nodes", {"name": NODE, "chef_environment": "lab",
                                 "json_class": "Chef::Node", "chef_type": "node",
                                 "run_list": [], "normal": {
                                     "crowbar": {"network": {"admin": "10.0.0.5"}}}})
    return admin


def node_key() -> str:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def client(goiardi: Goiardi, key: str) -> LabChefClient:
    facts = {NODE: Facts(NODE, "52:54:00:00:00:01", "ubuntu", "ubuntu", "24.04")}
    return LabChefClient(goiardi.url, lambda node: key, facts)


def test_a_run_fetches_and_checks_every_file_then_saves_its_record(goiardi: Goiardi
                                                                   ) -> None:
    key = node_key()
    files = read_cookbook(ntp_cookbook()).files

    async def go() -> None:
        admin = await site(goiardi, key, {"ntp-client": ["recipe[ntp::client]"]})
        lab = client(goiardi, key)
        node = await admin.get("nodes", NODE)
        assert node is not None
        await admin.upsert("nodes", with_request(node, ["role[ntp-client]"], "req-1"),
                           merge=True)
        said = await lab.run(NODE, set())
        assert "Chef Client finished" in said
        assert lab.downloads == len(files), "every file of the cookbook, once"
        record = read_run(await admin.get("nodes", NODE), "req-1")
        assert not isinstance(record, str), record
        assert record.ok and record.run_list == ("role[ntp-client]",)
        saved = await admin.get("nodes", NODE)
        assert saved is not None
        automatic = saved["automatic"]
        assert (automatic["ipaddress"], automatic["macaddress"], automatic["platform"]) == (
            "10.0.0.5", "52:54:00:00:00:01", "ubuntu")
        assert saved["normal"]["crowbar"]["network"] == {"admin": "10.0.0.5"}, \
            "the node's own attributes stay"
        await admin.upsert("nodes", with_request(saved, ["role[ntp-client]"], "req-2"),
                           merge=True)
        await lab.run(NODE, set())
        assert lab.downloads == len(files), "a second run finds every file in its cache"
        assert not isinstance(read_run(await admin.get("nodes", NODE), "req-2"), str)
        await admin.close()
    asyncio.run(go())


@pytest.mark.parametrize(("roles", "faults", "error"), [
    ({"ntp-client": ["recipe[ntp::client]"]}, {"converge_fail"},
     "lab fault converge_fail: recipe[ntp::client] raised RuntimeError"),
    ({"ntp-client": ["recipe[chrony::client]"]}, set(),
     "could not solve the run list's cookbooks: POST /environments/lab/cookbook_versions: "
     "412"),
])
def test_a_failed_run_is_recorded_with_its_error(goiardi: Goiardi, roles: dict[str, list[str]],
                                                 faults: set[str], error: str) -> None:
    key = node_key()

    async def go() -> None:
        admin = await site(goiardi, key, roles)
        node = await admin.get("nodes", NODE)
        assert node is not None
        await admin.upsert("nodes", with_request(node, ["role[ntp-client]"], "req"),
                           merge=True)
        said = await client(goiardi, key).run(NODE, faults)
        assert said.startswith("Chef Client failed")
        record = read_run(await admin.get("nodes", NODE), "req")
        assert not isinstance(record, str)
        assert not record.ok and record.error is not None and error in record.error
        await admin.close()
    asyncio.run(go())


def test_the_pool_plays_a_hang_and_runs_the_others_in_its_workers(goiardi: Goiardi,
                                                                    tmp_path: Path) -> None:
    """``apply --lab``'s starter: a server whose fault is ``converge_hang`` never reports
    (and takes no worker); ``lab fault --clear`` (the spec rewritten) lets its next run
    through a worker, which records it."""
    key = node_key()
    (keys := node_keys(tmp_path)).mkdir()
    (keys / "0.pem").write_text(key)
    (keys / NODE).write_text("0\n")  # as the node's install left it
    spec = plan_fleet(1, network="127.0.0.0/30", faults={0: Faults(converge_hang=True)})
    (tmp_path / "fleet.json").write_text(spec.to_json())
    facts = {NODE: Facts(NODE, "52:54:00:00:00:01", "ubuntu", "ubuntu", "24.04")}
    pool = LabChefPool(LabClients(goiardi.url, None, facts,
                                  "admin.lab.test", tmp_path / "admin.pem", tmp_path,
                                  {NODE: spec.bmcs[0].address}), workers=1)

    async def go() -> None:
        admin = await site(goiardi, key, {"ntp-client": ["recipe[ntp::client]"]})
        node = await admin.get("nodes", NODE)
        assert node is not None
        await admin.upsert("nodes", with_request(node, ["role[ntp-client]"], "hung"),
                           merge=True)
        hung = asyncio.ensure_future(pool.start(NODE))
        done, _ = await asyncio.wait([hung], timeout=1)
        assert not done, "a hung run does not end by itself"
        hung.cancel()
        assert isinstance(read_run(await admin.get("nodes", NODE), "hung"), str)
        spec.bmcs[0].faults.converge_hang = False
        (tmp_path / "fleet.json").write_text(spec.to_json() + "\n")  # size differs: re-read
        node = await admin.get("nodes", NODE)
        assert node is not None
        await admin.upsert("nodes", with_request(node, ["role[ntp-client]"], "later"),
                           merge=True)
        assert "Chef Client finished" in await pool.start(NODE)
        record = read_run(await admin.get("nodes", NODE), "later")
        assert not isinstance(record, str) and record.ok
        await admin.close()
    try:
        asyncio.run(go())
    finally:
        pool.close()
