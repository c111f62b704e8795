"""The provisioner's HTTP service, driven through its ASGI app in-process (httpx's ASGI transport).

The real-network path (uvicorn in a namespace, curl from a PXE client's namespace) is in
``tests/integration/test_pxe_namespaces.py``; here every status and side effect is checked,
in the store ``pxe serve`` and ``apply`` give it: the site's journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.tmpfs import small_disk
from wizard.answers import Answers, load
from wizard.catalog import default_catalog
from wizard.engine.journal import Journal
from wizard.engine.journal_states import JournalStates
from wizard.provisioning.http import (
    MAX_INVENTORY_BYTES,
    MAX_REASON_BYTES,
    MAX_REASON_CHARS,
    REPORTS_PER_MINUTE,
    TOKEN_HEADER,
    create_app,
)
from wizard.provisioning.site import ProvisionerSite

EXAMPLE = Path("answers/examples/lab-small.yaml")
NEW_MAC = "52:54:00:aa:bb:01"


@pytest.fixture(scope="module")
def answers() -> Answers:
    return load(EXAMPLE)


@pytest.fixture
def site(answers: Answers) -> ProvisionerSite:
    return ProvisionerSite(answers, default_catalog(), b"test-key" * 4)


STRANGER = "192.168.124.30"
"""An address of the admin segment that no node holds."""


@pytest.fixture
def state(tmp_path: Path) -> Iterator[JournalStates]:
    with Journal.open(tmp_path / "journal.db", command="pxe serve") as journal:
        yield JournalStates(journal)


@contextlib.contextmanager
def reopened(state: JournalStates) -> Iterator[JournalStates]:
    """The store as the next start finds it: its journal closed, then opened again."""
    state.journal.close()
    with Journal.open(state.journal.path, command="pxe serve") as journal:
        yield JournalStates(journal)


def call(site: ProvisionerSite, state: JournalStates, method: str, url: str, *,
         peer: str = STRANGER, register: Any = None, leases: Path | None = None,
         app: Any = None, **kwargs: Any) -> httpx.Response:
    """One request from ``peer`` (the address the service sees), to ``app`` or a new one."""
    async def go() -> httpx.Response:
        nonlocal app
        app = app or create_app(site, state, register_client=register, leases=leases)
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, url, **kwargs)
    return asyncio.run(go())


def discovery_token(site: ProvisionerSite, state: JournalStates, mac: str = NEW_MAC,
                    peer: str = STRANGER) -> str:
    """The token the boot script given to ``mac`` at ``peer`` carries."""
    script = call(site, state, "GET", f"/boot/{mac}", peer=peer).text
    found = re.search(r"crowbar\.token=([0-9a-f]+)", script)
    assert found, script
    return found[1]


def report(mac: str = NEW_MAC, **extra: Any) -> dict[str, Any]:
    return {"mac": mac, "macs": [mac, "52:54:00:aa:bb:02"], "serial": "SN-1",
            "cpu_cores": 16, "memory_gb": 64, "disks": 4} | extra


def test_boot_script_follows_node_state(site: ProvisionerSite, state: JournalStates) -> None:
    """A node boots its installer until it reports installed, then its local disk."""
    node = site.nodes["ctl-1"]
    first = call(site, state, "GET", f"/boot/{node.macs[0]}")
    assert first.status_code == 200
    assert first.text.startswith("#!ipxe")
    assert f"{site.http_url}/install/ctl-1/" in first.text
    state.set_state("ctl-1", "installed")
    after = call(site, state, "GET", f"/boot/{node.macs[1].upper().replace(':', '-')}")
    assert "sanboot" in after.text and "install/ctl-1" not in after.text


def test_unknown_machine_gets_discovery_with_a_token_for_its_address(
        site: ProvisionerSite, state: JournalStates) -> None:
    script = call(site, state, "GET", f"/boot/{NEW_MAC}").text
    assert "media/discovery/linux" in script
    assert f"crowbar.token={site.discovery_token(NEW_MAC, STRANGER)}" in script
    elsewhere = discovery_token(site, state, peer="192.168.124.31")
    assert elsewhere != site.discovery_token(NEW_MAC, STRANGER)


def test_a_discovery_token_works_only_from_the_address_it_was_given_to(
        site: ProvisionerSite, state: JournalStates) -> None:
    """Finding: GET /boot/<any MAC> handed out that MAC's token to anyone. Now a token
    asked for at one address is refused from another."""
    token = discovery_token(site, state, peer="192.168.124.31")
    stolen = call(site, state, "POST", "/inventory", json=report(), peer=STRANGER,
                  headers={TOKEN_HEADER: token})
    assert stolen.status_code == 403 and state.inventory.nodes == []
    own = call(site, state, "POST", "/inventory", json=report(), peer="192.168.124.31",
               headers={TOKEN_HEADER: token})
    assert own.status_code == 201


def test_with_dhcp_served_only_the_lease_holder_gets_a_discovery_token(
        site: ProvisionerSite, state: JournalStates, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """When this admin node serves DHCP, a discovery script (and its token) goes only to the
    address dnsmasq leased to that MAC."""
    monkeypatch.setattr("wizard.provisioning.http.LEASE_WAIT", 0.2)
    leases = tmp_path / "leases"
    leases.write_text(f"1900000000 {NEW_MAC} 192.168.124.31 * 01:{NEW_MAC}\n")
    mine = call(site, state, "GET", f"/boot/{NEW_MAC}", peer="192.168.124.31", leases=leases)
    assert mine.status_code == 200 and "crowbar.token=" in mine.text
    theirs = call(site, state, "GET", f"/boot/{NEW_MAC}", peer=STRANGER, leases=leases)
    assert theirs.status_code == 403 and "crowbar.token" not in theirs.text


def test_unknown_machine_without_pxe_discovery_gets_the_unknown_script(
        answers: Answers, state: JournalStates) -> None:
    ipmi_only = answers.model_copy(update={
        "discovery": answers.discovery.model_copy(update={"methods": ["ipmi"]})})
    site = ProvisionerSite(ipmi_only, default_catalog(), b"k" * 32)
    script = call(site, state, "GET", f"/boot/{NEW_MAC}").text
    assert "not in the answers file" in script and "discovery" in script
    assert "kernel" not in script
    refused = call(site, state, "POST", "/inventory", json=report(),
                   headers={TOKEN_HEADER: site.discovery_token(NEW_MAC, STRANGER)})
    assert refused.status_code == 403 and state.inventory.nodes == []


def test_malformed_mac_is_a_400(site: ProvisionerSite, state: JournalStates) -> None:
    assert call(site, state, "GET", "/boot/not-a-mac").status_code == 400


def test_install_files_only_to_the_node_while_it_installs(
        site: ProvisionerSite, state: JournalStates) -> None:
    """Finding: /install/<node>/<file> (the node's token, its root password hash) went to
    anyone, in any state. Now only to the node's own address, and only until it is
    installed."""
    node = site.nodes["ctl-1"]
    ok = call(site, state, "GET", "/install/ctl-1/user-data", peer=node.address)
    assert ok.status_code == 200 and site.token("ctl-1") in ok.text
    assert call(site, state, "GET", "/install/ctl-1/user-data").status_code == 403
    other = site.nodes["compute-1"].address
    assert call(site, state, "GET", "/install/ctl-1/user-data", peer=other).status_code == 403
    assert call(site, state, "GET", "/install/nobody/user-data").status_code == 404
    assert call(site, state, "GET", "/install/ctl-1/ks.cfg",
                peer=node.address).status_code == 404
    state.set_state("ctl-1", "installed")
    after = call(site, state, "GET", "/install/ctl-1/user-data", peer=node.address)
    assert after.status_code == 403 and site.token("ctl-1") not in after.text


def test_inventory_creates_then_merges(site: ProvisionerSite, state: JournalStates) -> None:
    headers = {TOKEN_HEADER: discovery_token(site, state)}
    first = call(site, state, "POST", "/inventory", json=report(), headers=headers)
    assert first.status_code == 201
    assert first.json() == {"node": "d52-54-00-aa-bb-01", "new": True}
    again = call(site, state, "POST", "/inventory", json=report(memory_gb=128), headers=headers)
    assert again.status_code == 200 and again.json()["new"] is False
    with reopened(state) as reloaded:
        [node] = reloaded.inventory.nodes
    assert (node.memory_gb, node.serial, node.sources) == (128, "SN-1", {"pxe"})


def test_a_machine_reporting_for_the_first_time_is_discovered(site: ProvisionerSite,
                                                              state: JournalStates) -> None:
    """A new machine gets the lifecycle state ``discovered`` (``status`` lists it), once:
    its next report changes no state, nor does a report from a machine that has one."""
    headers = {TOKEN_HEADER: discovery_token(site, state)}
    call(site, state, "POST", "/inventory", json=report(), headers=headers)
    call(site, state, "POST", "/inventory", json=report(memory_gb=128), headers=headers)
    assert state.journal.states() == {"d52-54-00-aa-bb-01": ("discovered", None)}
    assert len(state.journal.events(kind="transition")) == 1
    other_mac, other = "52:54:00:aa:cc:01", "192.168.124.32"
    state.journal.transition("d52-54-00-aa-cc-01", "allocated")  # apply took it on
    token = discovery_token(site, state, other_mac, peer=other)
    assert call(site, state, "POST", "/inventory", peer=other, headers={TOKEN_HEADER: token},
                json=report(other_mac, macs=[other_mac], serial="SN-2")).status_code == 201
    assert state.state("d52-54-00-aa-cc-01") == "allocated"


def test_a_discovered_machine_added_to_the_answers_boots_its_installer(
        answers: Answers, site: ProvisionerSite, state: JournalStates) -> None:
    """Told to reboot once it is a node of the answers file, a discovered machine gets its
    installer, not its local disk."""
    headers = {TOKEN_HEADER: discovery_token(site, state)}
    call(site, state, "POST", "/inventory", json=report(), headers=headers)
    [found] = state.inventory.nodes
    node = found.to_answers_node()
    assert node is not None
    added = ProvisionerSite(answers.model_copy(update={"nodes": [*answers.nodes, node]}),
                            default_catalog(), b"test-key" * 4)
    assert call(added, state, "GET", f"/discovery/{NEW_MAC}", headers=headers).text == "reboot\n"
    script = call(added, state, "GET", f"/boot/{NEW_MAC}").text
    assert f"install/{found.name}/" in script and "sanboot" not in script


@pytest.mark.parametrize("change", [
    {"bmc_address": "192.168.124.200"}, {"serial": "SN-OTHER", "macs": [NEW_MAC]},
    {"macs": [NEW_MAC, "52:54:00:aa:bb:02", "52:54:00:aa:bb:66"]},
    {"bmc_mac": "52:54:00:ff:ff:02"},
], ids=["moves-bmc", "changes-serial", "adds-a-nic", "changes-bmc-mac"])
def test_a_report_cannot_take_over_a_known_server(site: ProvisionerSite,
                                                  state: JournalStates,
                                                  change: dict[str, Any]) -> None:
    """Finding: reports merged by serial or MAC, so a forged one could move a discovered
    server's BMC or add NICs ("add to answers" then writes them). Now it is a conflict."""
    headers = {TOKEN_HEADER: discovery_token(site, state)}
    first = report(bmc_mac="52:54:00:ff:ff:01", bmc_address="192.168.124.170")
    assert call(site, state, "POST", "/inventory", json=first, headers=headers
                ).status_code == 201
    forged = call(site, state, "POST", "/inventory", json=first | change, headers=headers)
    assert forged.status_code == 409 and "contradicts" in forged.json()["error"]
    [node] = state.inventory.nodes
    assert (node.bmc_address, node.serial, node.macs, node.bmc_mac) == (
        "192.168.124.170", "SN-1", [NEW_MAC, "52:54:00:aa:bb:02"], "52:54:00:ff:ff:01")
    with reopened(state) as reloaded:
        assert reloaded.inventory.nodes[0].bmc_address == "192.168.124.170"


def test_reports_are_rate_limited_per_address(site: ProvisionerSite,
                                              state: JournalStates) -> None:
    """A burst of REPORTS_PER_MINUTE from one address, then 429, while another address
    still gets through."""
    headers = {TOKEN_HEADER: discovery_token(site, state)}
    app = create_app(site, state)
    statuses = [call(site, state, "POST", "/inventory", json=report(), headers=headers,
                     app=app).status_code for _ in range(REPORTS_PER_MINUTE + 1)]
    assert statuses[:REPORTS_PER_MINUTE] == [201] + [200] * (REPORTS_PER_MINUTE - 1)
    assert statuses[-1] == 429
    other_mac, other = "52:54:00:aa:cc:01", "192.168.124.32"
    token = discovery_token(site, state, other_mac, peer=other)
    assert call(site, state, "POST", "/inventory", peer=other, app=app,
                json=report(other_mac, macs=[other_mac], serial="SN-2"),
                headers={TOKEN_HEADER: token}).status_code == 201


def test_discovered_machines_are_capped(site: ProvisionerSite, state: JournalStates,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wizard.provisioning.http.MAX_DISCOVERED", 2)
    codes = []
    for i in range(3):
        mac, peer = f"52:54:00:aa:dd:0{i}", f"192.168.124.4{i}"
        token = discovery_token(site, state, mac, peer=peer)
        codes.append(call(site, state, "POST", "/inventory", peer=peer,
                          json=report(mac, macs=[mac], serial=f"SN-{i}"),
                          headers={TOKEN_HEADER: token}).status_code)
    assert codes == [201, 201, 429] and len(state.inventory.nodes) == 2


def test_reports_are_appended_not_rewritten(site: ProvisionerSite,
                                            state: JournalStates) -> None:
    """Finding: every report rewrote a growing state file in the event loop. Now each is one
    event appended to the journal: the file is not replaced (same inode) as reports arrive."""
    for i in range(3):
        mac, peer = f"52:54:00:aa:ee:0{i}", f"192.168.124.5{i}"
        token = discovery_token(site, state, mac, peer=peer)
        call(site, state, "POST", "/inventory", peer=peer, headers={TOKEN_HEADER: token},
             json=report(mac, macs=[mac], serial=f"SN-{i}"))
        if i == 0:
            inode = state.journal.path.stat().st_ino
    assert state.journal.path.stat().st_ino == inode
    assert len(state.journal.events(kind="inventory")) == 3


@pytest.mark.parametrize(("body", "headers", "status"), [
    (json.dumps(report()), {}, 403),
    (json.dumps(report()), {TOKEN_HEADER: "0" * 32}, 403),
    (json.dumps(report()), {TOKEN_HEADER: "é".encode() * 16}, 403),
    (json.dumps(report("52:54:00:aa:bb:09")), "token-of-new", 403),
    ("{not json", "token-of-new", 400),
    (json.dumps(report(cpu_cores=0)), "token-of-new", 422),
    (json.dumps(report(extra_field=1)), "token-of-new", 422),
    (json.dumps(report(macs=["52:54:00:aa:bb:02"])), "token-of-new", 422),
    ("x" * (MAX_INVENTORY_BYTES + 1), "token-of-new", 413),
], ids=["no-token", "wrong-token", "non-ascii-token", "token-of-other-mac", "not-json",
        "bad-field", "unknown-field", "boot-mac-not-listed", "oversized"])
def test_bad_inventory_is_refused_and_stores_nothing(
        site: ProvisionerSite, state: JournalStates, body: str, headers: Any, status: int,
        caplog: pytest.LogCaptureFixture) -> None:
    token = site.discovery_token(NEW_MAC, STRANGER)
    if headers == "token-of-new":
        headers = {TOKEN_HEADER: token}
    with caplog.at_level(logging.WARNING, "wizard.provisioning.http"):
        response = call(site, state, "POST", "/inventory", content=body.encode(),
                        headers=headers | {"content-type": "application/json"})
    assert response.status_code == status
    assert state.inventory.nodes == [] and state.journal.events() == []
    assert any("/inventory" in record.getMessage() for record in caplog.records)
    assert all(token not in record.getMessage() for record in caplog.records)


def test_inventory_from_a_known_node_is_a_conflict(site: ProvisionerSite,
                                                   state: JournalStates) -> None:
    mac = site.nodes["ctl-1"].macs[0]
    response = call(site, state, "POST", "/inventory", json=report(mac),
                    headers={TOKEN_HEADER: site.discovery_token(mac, STRANGER)})
    assert response.status_code == 409 and state.inventory.nodes == []


def test_installed_callback_needs_the_node_its_address_and_its_token(
        site: ProvisionerSite, state: JournalStates) -> None:
    url = "/nodes/compute-1/installed"
    here = site.nodes["compute-1"].address
    token = {TOKEN_HEADER: site.token("compute-1")}
    assert call(site, state, "POST", url, peer=here).status_code == 403
    other = {TOKEN_HEADER: site.token("compute-2")}
    assert call(site, state, "POST", url, peer=here, headers=other).status_code == 403
    assert call(site, state, "POST", url, headers=token).status_code == 403  # elsewhere
    assert state.state("compute-1") is None
    ok = call(site, state, "POST", url, peer=here, headers=token)
    assert ok.status_code == 200 and state.state("compute-1") == "installed"
    unknown = call(site, state, "POST", "/nodes/ghost/installed",
                   headers={TOKEN_HEADER: site.token("ghost")})
    assert unknown.status_code == 404
    with reopened(state) as reloaded:
        assert reloaded.state("compute-1") == "installed"


def test_an_install_token_dies_with_its_install(site: ProvisionerSite,
                                                state: JournalStates) -> None:
    """Once a node is installed its token opens nothing, also when the node is installed
    again: the next install has a token of its own."""
    here = site.nodes["compute-1"].address
    old = {TOKEN_HEADER: site.token("compute-1", 0)}
    assert call(site, state, "POST", "/nodes/compute-1/installed", peer=here,
                headers=old).status_code == 200
    assert call(site, state, "POST", "/nodes/compute-1/installed", peer=here,
                headers=old).status_code == 403  # installed: nothing of the install
    state.journal.transition("compute-1", "installing")  # reinstalled, as apply does
    assert call(site, state, "POST", "/nodes/compute-1/installed", peer=here,
                headers=old).status_code == 403
    files = call(site, state, "GET", "/install/compute-1/user-data", peer=here).text
    new = site.token("compute-1", 1)
    assert new in files and site.token("compute-1", 0) not in files
    assert call(site, state, "POST", "/nodes/compute-1/installed", peer=here,
                headers={TOKEN_HEADER: new}).status_code == 200


def _public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_the_validator_key_is_never_served(site: ProvisionerSite, state: JournalStates) -> None:
    """Finding: with a node's token, GET /nodes/<node>/validation.pem gave anyone the Chef
    validator key. There is no such endpoint: nodes register keys of their own."""
    node = site.nodes["ctl-1"]
    response = call(site, state, "GET", "/nodes/ctl-1/validation.pem", peer=node.address,
                    headers={TOKEN_HEADER: site.token("ctl-1")})
    assert response.status_code == 404


def test_a_node_registers_one_chef_key_per_install(site: ProvisionerSite, state: JournalStates,
                                                caplog: pytest.LogCaptureFixture) -> None:
    registered: list[tuple[str, str]] = []

    async def register(name: str, key: str) -> None:
        registered.append((name, key))

    node = site.nodes["ctl-1"]
    url, token = "/nodes/ctl-1/client-key", {TOKEN_HEADER: site.token("ctl-1")}
    key = _public_key()
    refused = [
        call(site, state, "POST", url, peer=node.address, content=key, register=register),
        call(site, state, "POST", url, content=key, headers=token, register=register),
        call(site, state, "POST", url, peer=node.address, content="not a key",
             headers=token, register=register),
    ]
    assert [r.status_code for r in refused] == [403, 403, 400] and registered == []
    with caplog.at_level(logging.INFO, "wizard.provisioning.http"):
        ok = call(site, state, "POST", url, peer=node.address, content=key, headers=token,
                  register=register)
    assert ok.status_code == 201 and registered == [(node.fqdn, key)]
    other = call(site, state, "POST", url, peer=node.address, content=_public_key(),
                 headers=token, register=register)
    assert other.status_code == 409 and len(registered) == 1
    # the node retrying with its key (the admin node stopped before it answered)
    again = call(site, state, "POST", url, peer=node.address, content=key, headers=token,
                 register=register)
    assert again.status_code == 201 and registered == [(node.fqdn, key)] * 2
    assert site.token("ctl-1") not in caplog.text
    none = call(site, state, "POST", "/nodes/compute-1/client-key", content=key,
                peer=site.nodes["compute-1"].address,
                headers={TOKEN_HEADER: site.token("compute-1")})
    assert none.status_code == 404  # no Chef server here


def test_tokens_depend_on_the_key(answers: Answers) -> None:
    one = ProvisionerSite(answers, default_catalog(), b"a" * 32)
    two = ProvisionerSite(answers, default_catalog(), b"b" * 32)
    assert one.token("ctl-1") != two.token("ctl-1")
    assert one.token("ctl-1") != one.token("compute-1")
    assert one.token("ctl-1") != one.token("ctl-1", 1)
    assert one.token("ctl-1") == ProvisionerSite(answers, default_catalog(), b"a" * 32
                                                 ).token("ctl-1")


def test_booting_the_installer_again_starts_a_new_attempt(site: ProvisionerSite,
                                                          state: JournalStates) -> None:
    """An install that stopped after its one-time key registration can be tried again: the
    node PXE-booting its installer from its own address gets a new token, with its claims
    still to make. A boot script asked for elsewhere changes nothing."""
    async def register(name: str, key: str) -> None:
        pass

    node = site.nodes["ctl-1"]
    first = site.token("ctl-1", 0)
    assert call(site, state, "POST", "/nodes/ctl-1/client-key", peer=node.address,
                content=_public_key(), headers={TOKEN_HEADER: first},
                register=register).status_code == 201
    call(site, state, "GET", f"/boot/{node.macs[0]}")  # from a stranger: no new attempt
    assert state.epoch("ctl-1") == 0
    assert call(site, state, "GET", f"/boot/{node.macs[0]}", peer=node.address
                ).status_code == 200
    assert state.epoch("ctl-1") == 1
    files = call(site, state, "GET", "/install/ctl-1/user-data", peer=node.address).text
    second = site.token("ctl-1", 1)
    assert second in files and first not in files
    stale = call(site, state, "POST", "/nodes/ctl-1/client-key", peer=node.address,
                 content=_public_key(), headers={TOKEN_HEADER: first}, register=register)
    assert stale.status_code == 403
    assert call(site, state, "POST", "/nodes/ctl-1/client-key", peer=node.address,
                content=_public_key(), headers={TOKEN_HEADER: second},
                register=register).status_code == 201


def test_a_token_with_non_ascii_characters_is_a_403(site: ProvisionerSite,
                                                    state: JournalStates) -> None:
    """Header bytes reach the app as latin-1 text: comparing it as str raised TypeError."""
    token = {TOKEN_HEADER: "tökén-ü".encode()}
    installed = call(site, state, "POST", "/nodes/compute-1/installed", headers=token,
                     peer=site.nodes["compute-1"].address)
    assert installed.status_code == 403 and state.state("compute-1") is None
    inventory = call(site, state, "POST", "/inventory", json=report(), headers=token)
    assert inventory.status_code == 403 and state.inventory.nodes == []


def test_a_full_disk_under_the_store_is_a_503_and_one_log_line(
        site: ProvisionerSite, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A callback the store cannot record (a real full tmpfs) gets 503, which the node's
    curl retries; the log says why in one line, no traceback; nothing is recorded."""
    with small_disk(tmp_path / "disk", "256k") as disk, \
            Journal.open(disk / "journal.db", command="pxe serve") as journal:
        state = JournalStates(journal)
        state.set_state("ctl-1", "installing")
        filler = disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as out:  # fill it up
            while True:
                out.write(b"\0" * 4096)
                out.flush()
        here = site.nodes["compute-1"].address
        with caplog.at_level(logging.INFO, "wizard.provisioning.http"):
            response = call(site, state, "POST", "/nodes/compute-1/installed", peer=here,
                            headers={TOKEN_HEADER: site.token("compute-1")})
        assert response.status_code == 503
        assert state.state("compute-1") is None and state.epoch("compute-1") == 0
        [line] = [r for r in caplog.records if "not recorded" in r.getMessage()]
        assert "journal.db" in line.getMessage() and line.exc_info is None


PROBLEM = "chef-client could not be installed from http://192.168.124.10:8091/debian: " \
          "E: Unable to locate package chef"


def test_a_problem_report_puts_the_node_in_problem_with_its_reason(
        site: ProvisionerSite, state: JournalStates) -> None:
    """The installer's report needs the node, its address and its token, as ``installed``
    does; the node then is in ``problem`` with the reported reason, at once, and boots its
    installed OS. An empty report is refused and uses up nothing."""
    url = "/nodes/compute-1/problem"
    here = site.nodes["compute-1"].address
    token = {TOKEN_HEADER: site.token("compute-1")}
    refused = [call(site, state, "POST", url, peer=here, content=PROBLEM),
               call(site, state, "POST", url, peer=here, content=PROBLEM,
                    headers={TOKEN_HEADER: site.token("compute-2")}),
               call(site, state, "POST", url, content=PROBLEM, headers=token),  # elsewhere
               call(site, state, "POST", url, peer=here, content=" \n\t", headers=token)]
    assert [r.status_code for r in refused] == [403, 403, 403, 400]
    assert state.state("compute-1") is None and state.epoch("compute-1") == 0
    ok = call(site, state, "POST", url, peer=here, content=PROBLEM, headers=token)
    assert ok.status_code == 200 and ok.json() == {"node": "compute-1", "state": "problem"}
    with reopened(state) as reloaded:
        assert reloaded.journal.states()["compute-1"] == ("problem", f"installer: {PROBLEM}")
        assert reloaded.epoch("compute-1") == 1  # the install, and its token, are over
        for path in (url, "/nodes/compute-1/installed"):
            assert call(site, reloaded, "POST", path, peer=here, content=PROBLEM,
                        headers=token).status_code == 403
        boot = call(site, reloaded, "GET", f"/boot/{site.nodes['compute-1'].macs[0]}")
        assert "sanboot" in boot.text and "install/compute-1" not in boot.text


def test_a_reported_reason_is_one_bounded_line(site: ProvisionerSite, state: JournalStates,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """What the node posts reaches the journal, the log and the screens as one line of
    printable text: line breaks, terminal escapes, Unicode line separators and bidi
    overrides become spaces, and it is cut to MAX_REASON_CHARS. A body past
    MAX_REASON_BYTES is refused (413) and changes nothing."""
    here = site.nodes["ctl-1"].address
    token = {TOKEN_HEADER: site.token("ctl-1")}
    too_big = call(site, state, "POST", "/nodes/ctl-1/problem", peer=here, headers=token,
                   content="x" * (MAX_REASON_BYTES + 1))
    assert too_big.status_code == 413 and state.state("ctl-1") is None
    hostile = ("chef-client could not be installed:\nE: \x1b[31mred\x1b[0m\r\u2028"
               "\u202eevil\tend\x00" + "y" * 1000)
    with caplog.at_level(logging.INFO, "wizard.provisioning.http"):
        ok = call(site, state, "POST", "/nodes/ctl-1/problem", peer=here, headers=token,
                  content=hostile.encode())
    assert ok.status_code == 200
    _, reason = state.journal.states()["ctl-1"]
    assert reason is not None and reason.startswith(
        "installer: chef-client could not be installed: E: [31mred [0m evil end yyy")
    assert len(reason) == len("installer: ") + MAX_REASON_CHARS and reason.endswith("\u2026")
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202e]", reason)
    [logged] = [r.getMessage() for r in caplog.records if "reports a problem" in r.getMessage()]
    assert logged.endswith(reason.removeprefix("installer: "))


def test_a_problem_report_wakes_whoever_waits_for_the_install(
        site: ProvisionerSite, tmp_path: Path) -> None:
    """The store tells its owner (apply's runner, waiting for the install) of each
    callback: ``installed`` with no problem, a problem report with its reason."""
    heard: list[tuple[str, str | None]] = []
    with Journal.open(tmp_path / "journal.db", command="apply") as journal:
        state = JournalStates(journal, lambda node, problem: heard.append((node, problem)))
        for name, path, body in (("ctl-1", "installed", b""), ("compute-1", "problem",
                                                                PROBLEM.encode())):
            node = site.nodes[name]
            assert call(site, state, "POST", f"/nodes/{name}/{path}", peer=node.address,
                        content=body, headers={TOKEN_HEADER: site.token(name)}
                        ).status_code == 200
    assert heard == [("ctl-1", None), ("compute-1", f"installer: {PROBLEM}")]
