"""The Chef driver, ``chef push`` and node registration against a real Chef server: goiardi
on loopback with authentication on, a fresh one per test (its keys change on every start).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from wizard.answers import Answers, load
from wizard.answers.addressing import node_addresses
from wizard.catalog import default_catalog
from wizard.chef.api import ChefAuthError, ChefServer, Retry
from wizard.chef.node import first_run, public_pem, register_client
from wizard.chef.objects import ChefObjects, render
from wizard.chef.push import MARKER, PushError, PushReport, Target, push, targets
from wizard.cli.main import main
from wizard.lab.goiardi import Goiardi

pytestmark = pytest.mark.slow

EXAMPLES = sorted(Path("answers/examples").glob("*.yaml"))


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")


def objects_of(path: Path) -> tuple[Answers, ChefObjects]:
    answers = load(path)
    return answers, render(answers, default_catalog())


def admin(server: Goiardi, **options) -> ChefServer:
    return ChefServer(server.url, "admin", server.admin_key.read_text(), **options)


async def read_back(chef: ChefServer, target: Target) -> dict | None:
    if target.kind == "data":
        assert target.bag is not None
        return await chef.get_item(target.bag, target.name)
    return await chef.get(target.kind, target.name)


def holds(found: dict, wanted: dict) -> bool:
    return all(
        holds(found.get(k) or {}, v) if isinstance(v, dict) and k == "normal"
        else found.get(k) == v for k, v in wanted.items())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_push_every_example_then_read_back(goiardi: Goiardi, example: Path) -> None:
    answers, objects = objects_of(example)

    async def go() -> tuple[PushReport, PushReport, list]:
        async with admin(goiardi) as chef:
            first = await push(chef, objects, answers.site.name)
            second = await push(chef, objects, answers.site.name)
            found = [(t, await read_back(chef, t)) for t in targets(objects, answers.site.name)]
            return first, second, found
    first, second, found = asyncio.run(go())
    total = len(found)
    assert first.counts() == {"created": total}
    assert second.counts() == {"unchanged": total} and not second.changed
    for target, body in found:
        assert body is not None, target.label
        assert holds(body, target.body), target.label


def test_read_and_delete_each_kind(goiardi: Goiardi) -> None:
    answers, objects = objects_of(Path("answers/examples/lab-small.yaml"))
    node, role = next(iter(objects.nodes)), next(iter(objects.roles))
    item = next(iter(objects.data_bags["crowbar"]))

    async def go() -> list[object]:
        async with admin(goiardi) as chef:
            await push(chef, objects, answers.site.name)
            await chef.create_client("node-9")
            found = [await chef.get("nodes", node), await chef.get("roles", role),
                     await chef.get("environments", answers.site.name),
                     await chef.get("clients", "node-9"), await chef.get_item("crowbar", item)]
            deleted = [await chef.delete("nodes", node), await chef.delete("roles", role),
                       await chef.delete("clients", "node-9"),
                       await chef.delete_item("crowbar", item)]
            again = [await chef.delete("nodes", node), await chef.get("roles", role),
                     await chef.get_item("crowbar", item)]
            bag = [await chef.delete_data_bag("crowbar"), await chef.list_items("crowbar"),
                   await chef.delete_data_bag("crowbar")]
            return [found, deleted, again, bag]
    found, deleted, again, bag = asyncio.run(go())
    assert all(found) and deleted == [True] * 4
    assert again == [False, None, None]
    assert bag == [True, [], False]


def test_cli_push_twice_says_nothing_changed(goiardi: Goiardi,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    args = ["chef", "push", "answers/examples/openstack.yaml", "--server", goiardi.url,
            "--client", "admin", "--key", str(goiardi.admin_key), "--sign-version", "1.0"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    second = capsys.readouterr().out
    total = len(targets(objects_of(Path("answers/examples/openstack.yaml"))[1], "openstack"))
    assert f"{total} created, 0 updated, 0 unchanged" in first
    assert f"0 created, 0 updated, {total} unchanged" in second
    assert "nothing changed" in second


def test_a_changed_answer_updates_only_what_changed(goiardi: Goiardi) -> None:
    answers, objects = objects_of(Path("answers/examples/lab-small.yaml"))
    node = next(iter(objects.nodes))
    changed = ChefObjects(objects.environment, objects.roles, objects.data_bags,
                          dict(objects.nodes))
    changed.nodes[node] = objects.nodes[node] | {"run_list": ["role[ntp-client]"]}

    async def go() -> PushReport:
        async with admin(goiardi) as chef:
            await push(chef, objects, answers.site.name)
            return await push(chef, changed, answers.site.name)
    report = asyncio.run(go())
    assert report.outcomes[f"node {node}"] == "updated"
    assert report.counts()["updated"] == 1


def test_wrong_key_is_an_auth_error_at_once(goiardi: Goiardi) -> None:
    answers, objects = objects_of(Path("answers/examples/lab-small.yaml"))
    requests: list[str] = []
    wrong = goiardi.validator_key.read_text()  # a real key, but not admin's

    async def go() -> None:
        async with ChefServer(goiardi.url, "admin", wrong,
                              on_request=lambda m, p: requests.append(p)) as chef:
            await push(chef, objects, answers.site.name)
    with pytest.raises(PushError) as failed:
        asyncio.run(go())
    message = str(failed.value)
    assert "refused client 'admin' (401)" in message
    assert requests == ["/environments/" + answers.site.name], "never retried"
    assert len(failed.value.report.skipped) == len(targets(objects, answers.site.name))
    assert "PRIVATE KEY" not in message and wrong[40:80] not in message


def test_server_stopped_mid_push_retries_then_names_what_was_pushed(goiardi: Goiardi) -> None:
    answers, objects = objects_of(Path("answers/examples/openstack.yaml"))
    seen: list[str] = []

    def count(method: str, path: str) -> None:
        seen.append(path)
        if len(seen) == 40:
            goiardi.stop()

    async def go() -> None:
        async with admin(goiardi, retry=Retry(attempts=3, backoff=0.05), on_request=count,
                         max_connections=4) as chef:
            await push(chef, objects, answers.site.name, concurrency=4)
    with pytest.raises(PushError) as failed:
        asyncio.run(go())
    report = failed.value.report
    labels = {t.label for t in targets(objects, answers.site.name)}
    assert report.outcomes and report.failed
    assert set(report.outcomes) | set(report.failed) | set(report.skipped) == labels
    assert all("gave up after 3 tries" in reason for reason in report.failed.values())
    assert f"{len(report.failed)} of {len(labels)} objects could not be pushed" in str(
        failed.value)


def test_prune_removes_only_what_this_site_pushed(goiardi: Goiardi) -> None:
    answers, objects = objects_of(Path("answers/examples/lab-small.yaml"))
    gone_node = next(iter(objects.nodes))
    smaller = ChefObjects(objects.environment, objects.roles, objects.data_bags,
                          {k: v for k, v in objects.nodes.items() if k != gone_node})
    foreign = {"name": "handmade", "json_class": "Chef::Role", "chef_type": "role",
               "run_list": [], "default_attributes": {}, "override_attributes": {}}

    async def go() -> tuple[PushReport, list[str], list[str]]:
        async with admin(goiardi) as chef:
            await push(chef, objects, answers.site.name)
            await chef.upsert("roles", foreign)
            report = await push(chef, smaller, answers.site.name, prune=True)
            return report, await chef.list("nodes"), await chef.list("roles")
    report, nodes, roles = asyncio.run(go())
    assert report.pruned == [f"node {gone_node}"]
    assert gone_node not in nodes and "handmade" in roles


def _private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_a_node_registers_as_chef_client_would(goiardi: Goiardi) -> None:
    """The admin node registers the node's own public key; the node then reads (or makes)
    its node object as that client, as chef-client's first run does."""
    answers, objects = objects_of(Path("answers/examples/lab-small.yaml"))
    name, pushed = next(iter(objects.nodes.items()))
    own, late, reinstalled = _private_pem(), _private_pem(), _private_pem()

    async def go():
        async with admin(goiardi) as chef:
            await push(chef, objects, answers.site.name)
            await register_client(chef, name, public_pem(own))
            await register_client(chef, "late.lab.crowbar.test", public_pem(late))
        known = await first_run(goiardi.url, name, own)
        fresh = await first_run(goiardi.url, "late.lab.crowbar.test", late,
                                environment=answers.site.name)
        again = await first_run(goiardi.url, "late.lab.crowbar.test", late)
        async with admin(goiardi) as chef:  # a reinstall brings a new key
            await register_client(chef, name, public_pem(reinstalled))
        after = await first_run(goiardi.url, name, reinstalled)
        return known, fresh, again, after
    known, fresh, again, after = asyncio.run(go())
    assert known.run_list == pushed["run_list"] and not known.created_node
    assert known.environment == answers.site.name
    assert fresh.created_node and fresh.run_list == []
    assert not again.created_node and again.environment == answers.site.name
    assert after.run_list == pushed["run_list"]
    with pytest.raises(ChefAuthError):  # the old key is gone with the reinstall
        asyncio.run(first_run(goiardi.url, name, own))


def test_clients_are_made_reused_or_rotated(goiardi: Goiardi) -> None:
    async def go() -> tuple[str | None, str | None, str | None, dict | None]:
        async with admin(goiardi) as chef:
            made = await chef.create_client("node-7")
            reused = await chef.create_client("node-7")
            rotated = await chef.create_client("node-7", rotate=True)
        assert rotated is not None
        async with ChefServer(goiardi.url, "node-7", rotated) as me:
            return made, reused, rotated, await me.get("clients", "node-7")
    made, reused, rotated, seen = asyncio.run(go())
    assert made and "PRIVATE KEY" in made and reused is None and rotated != made
    assert seen is not None and seen["name"] == "node-7"
    with pytest.raises(ChefAuthError):
        asyncio.run(_get_as(goiardi, "node-7", made))


async def _get_as(goiardi: Goiardi, client: str, key: str) -> None:
    async with ChefServer(goiardi.url, client, key) as chef:
        await chef.get("nodes", "x")


def test_organization_prefix_on_every_path(goiardi: Goiardi) -> None:
    paths: list[str] = []

    async def go() -> dict | None:
        async with admin(goiardi, organization="acme",
                         on_request=lambda m, p: paths.append(p)) as chef:
            return await chef.get("roles", "x")
    asyncio.run(go())  # goiardi (Chef 11) has no organizations: only the path is checked
    assert paths == ["/organizations/acme/roles/x"]


def test_marker_is_on_every_pushed_object() -> None:
    answers, objects = objects_of(Path("answers/examples/hadoop.yaml"))
    for target in targets(objects, answers.site.name):
        holder = {"environments": "default_attributes", "roles": "default_attributes",
                  "nodes": "normal"}.get(target.kind)
        body = target.body[holder] if holder else target.body
        assert body[MARKER] == {"managed_by": "crowbar-wizard", "site": answers.site.name}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_what_chef_serves_holds_every_network_conduit_and_address(
        goiardi: Goiardi, example: Path) -> None:
    """Cookbooks (neutron's bridges, swift's storage network, ntp's and dns's allowed
    subnets) read the site's networks and each node's devices from what the server serves:
    the environment and the node objects, read back after a push."""
    answers, objects = objects_of(example)
    fqdn = {node.name: f"{node.name}.{answers.site.domain}" for node in answers.nodes}

    async def go() -> tuple[dict, dict[str, dict]]:
        async with admin(goiardi) as chef:
            await push(chef, objects, answers.site.name)
            env = await chef.get("environments", answers.site.name)
            nodes = {name: await chef.get("nodes", fqdn[name]) for name in fqdn
                     if fqdn[name] in objects.nodes}
            assert env is not None and all(nodes.values())
            return env, nodes  # type: ignore[return-value]
    env, nodes = asyncio.run(go())
    site = env["default_attributes"]["crowbar"]
    assert site["site"]["domain"] == answers.site.domain
    assert "web_port" in site, "the crowbar barclamp's own attributes sit beside the site's"
    for name, net in answers.networks.items():
        served = site["networks"][name]
        assert (served["cidr"], served["vlan"], served["router"], served["conduit"]) == \
            (str(net.cidr()), net.vlan, net.router, net.conduit)
    assert {name: [str(i) for i in c.interfaces] for name, c in answers.conduits.items()} == \
        {name: c["interfaces"] for name, c in site["conduits"].items()}
    assert nodes, "the example places roles on nodes"
    for name, node in nodes.items():
        crowbar = node["normal"]["crowbar"]
        wanted = node_addresses(answers)[name]
        assert crowbar["network"] == wanted
        planned = next(n for n in answers.nodes if n.name == name)
        inventory = planned.hardware.nics if planned.hardware else None
        macs = {mac.lower() for mac in planned.macs} | {
            nic.mac.lower() for nic in inventory or []}
        for network, ip in wanted.items():
            net = answers.networks[network]
            if net.conduit == "bmc" or network in crowbar["unconfigured"]:
                continue
            interface = crowbar["interfaces"][network]
            conduit = crowbar["conduits"][net.conduit]
            assert interface["address"] == ip and interface["conduit"] == net.conduit
            assert interface["device"] == (f"{conduit['device']}.{net.tag()}" if net.tag()
                                           else conduit["device"])
            assert {nic["mac"].lower() for nic in conduit["nics"]} <= macs
            assert len(conduit["nics"]) == len(answers.conduits[net.conduit].interfaces)
