"""The provisioner's HTTP service, driven through its ASGI app in-process (httpx's ASGI transport).

The real-network path (uvicorn in a namespace, curl from a PXE client's namespace) is in
``tests/integration/test_pxe_namespaces.py``; here every status and side effect is checked.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from wizard.answers import Answers, load
from wizard.catalog import default_catalog
from wizard.drivers.http import MAX_INVENTORY_BYTES, TOKEN_HEADER, create_app
from wizard.provisioner.site import ProvisionerSite
from wizard.provisioner.state import ProvisionerState
from wizard.secrets import Secret

EXAMPLE = Path("answers/examples/lab-small.yaml")
NEW_MAC = "52:54:00:aa:bb:01"


@pytest.fixture(scope="module")
def answers() -> Answers:
    return load(EXAMPLE)


@pytest.fixture
def site(answers: Answers) -> ProvisionerSite:
    return ProvisionerSite(answers, default_catalog(), b"test-key" * 4)


@pytest.fixture
def state(tmp_path: Path) -> ProvisionerState:
    return ProvisionerState(tmp_path / "state.json")


def call(site: ProvisionerSite, state: ProvisionerState, method: str, url: str,
         **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(site, state))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, url, **kwargs)
    return asyncio.run(go())


def report(mac: str = NEW_MAC, **extra: Any) -> dict[str, Any]:
    return {"mac": mac, "macs": [mac, "52:54:00:aa:bb:02"], "serial": "SN-1",
            "cpu_cores": 16, "memory_gb": 64, "disks": 4} | extra


def test_boot_script_follows_node_state(site: ProvisionerSite, state: ProvisionerState) -> None:
    """A node boots its installer until it reports installed, then its local disk."""
    node = site.nodes["ctl-1"]
    first = call(site, state, "GET", f"/boot/{node.macs[0]}")
    assert first.status_code == 200
    assert first.text.startswith("#!ipxe")
    assert f"{site.http_url}/install/ctl-1/" in first.text
    state.set_state("ctl-1", "installed")
    after = call(site, state, "GET", f"/boot/{node.macs[1].upper().replace(':', '-')}")
    assert "sanboot" in after.text and "install/ctl-1" not in after.text


def test_unknown_machine_gets_discovery_with_its_token(site: ProvisionerSite,
                                                       state: ProvisionerState) -> None:
    script = call(site, state, "GET", f"/boot/{NEW_MAC}").text
    assert "media/discovery/linux" in script
    assert f"crowbar.token={site.discovery_token(NEW_MAC)}" in script


def test_unknown_machine_without_pxe_discovery_gets_the_unknown_script(
        answers: Answers, state: ProvisionerState) -> None:
    ipmi_only = answers.model_copy(update={
        "discovery": answers.discovery.model_copy(update={"methods": ["ipmi"]})})
    site = ProvisionerSite(ipmi_only, default_catalog(), b"k" * 32)
    script = call(site, state, "GET", f"/boot/{NEW_MAC}").text
    assert "not in the answers file" in script and "discovery" in script
    assert "kernel" not in script
    refused = call(site, state, "POST", "/inventory", json=report(),
                   headers={TOKEN_HEADER: site.discovery_token(NEW_MAC)})
    assert refused.status_code == 403 and state.inventory.nodes == []


def test_malformed_mac_is_a_400(site: ProvisionerSite, state: ProvisionerState) -> None:
    assert call(site, state, "GET", "/boot/not-a-mac").status_code == 400


def test_install_files_by_node(site: ProvisionerSite, state: ProvisionerState) -> None:
    ok = call(site, state, "GET", "/install/ctl-1/user-data")
    assert ok.status_code == 200 and site.token("ctl-1") in ok.text
    assert call(site, state, "GET", "/install/nobody/user-data").status_code == 404
    assert call(site, state, "GET", "/install/ctl-1/ks.cfg").status_code == 404


def test_inventory_creates_then_merges(site: ProvisionerSite, state: ProvisionerState) -> None:
    headers = {TOKEN_HEADER: site.discovery_token(NEW_MAC)}
    first = call(site, state, "POST", "/inventory", json=report(), headers=headers)
    assert first.status_code == 201
    assert first.json() == {"node": "d52-54-00-aa-bb-01", "new": True}
    again = call(site, state, "POST", "/inventory", json=report(memory_gb=128), headers=headers)
    assert again.status_code == 200 and again.json()["new"] is False
    reloaded = ProvisionerState(state.path)
    [node] = reloaded.inventory.nodes
    assert (node.memory_gb, node.serial, node.sources) == (128, "SN-1", {"pxe"})


@pytest.mark.parametrize(("body", "headers", "status"), [
    (json.dumps(report()), {}, 403),
    (json.dumps(report()), {TOKEN_HEADER: "0" * 32}, 403),
    (json.dumps(report("52:54:00:aa:bb:09")), "token-of-new", 403),
    ("{not json", "token-of-new", 400),
    (json.dumps(report(cpu_cores=0)), "token-of-new", 422),
    (json.dumps(report(extra_field=1)), "token-of-new", 422),
    (json.dumps(report(macs=["52:54:00:aa:bb:02"])), "token-of-new", 422),
    ("x" * (MAX_INVENTORY_BYTES + 1), "token-of-new", 413),
], ids=["no-token", "wrong-token", "token-of-other-mac", "not-json", "bad-field",
        "unknown-field", "boot-mac-not-listed", "oversized"])
def test_bad_inventory_is_refused_and_stores_nothing(
        site: ProvisionerSite, state: ProvisionerState, body: str, headers: Any, status: int,
        caplog: pytest.LogCaptureFixture) -> None:
    if headers == "token-of-new":
        headers = {TOKEN_HEADER: site.discovery_token(NEW_MAC)}
    with caplog.at_level(logging.WARNING, "wizard.provisioner.http"):
        response = call(site, state, "POST", "/inventory", content=body,
                        headers=headers | {"content-type": "application/json"})
    assert response.status_code == status
    assert state.inventory.nodes == [] and not state.path.exists()
    assert any("/inventory" in record.getMessage() for record in caplog.records)
    token = site.discovery_token(NEW_MAC)
    assert all(token not in record.getMessage() for record in caplog.records)


def test_inventory_from_a_known_node_is_a_conflict(site: ProvisionerSite,
                                                   state: ProvisionerState) -> None:
    mac = site.nodes["ctl-1"].macs[0]
    response = call(site, state, "POST", "/inventory", json=report(mac),
                    headers={TOKEN_HEADER: site.discovery_token(mac)})
    assert response.status_code == 409 and state.inventory.nodes == []


def test_installed_callback_needs_the_node_token(site: ProvisionerSite,
                                                 state: ProvisionerState) -> None:
    url = "/nodes/compute-1/installed"
    assert call(site, state, "POST", url).status_code == 403
    other = {TOKEN_HEADER: site.token("compute-2")}
    assert call(site, state, "POST", url, headers=other).status_code == 403
    assert state.state("compute-1") is None
    ok = call(site, state, "POST", url, headers={TOKEN_HEADER: site.token("compute-1")})
    assert ok.status_code == 200 and state.state("compute-1") == "installed"
    assert ProvisionerState(state.path).state("compute-1") == "installed"
    unknown = call(site, state, "POST", "/nodes/ghost/installed",
                   headers={TOKEN_HEADER: site.token("ghost")})
    assert unknown.status_code == 404


def test_validator_key_only_with_token(answers: Answers, state: ProvisionerState,
                                       caplog: pytest.LogCaptureFixture) -> None:
    keyed = answers.model_copy(update={
        "chef": answers.chef.model_copy(update={"validator_key": Secret("PRIVATE-KEY-TEXT")})})
    site = ProvisionerSite(keyed, default_catalog(), b"k" * 32)
    url = "/nodes/ctl-1/validation.pem"
    with caplog.at_level(logging.INFO, "wizard.provisioner.http"):
        assert call(site, state, "GET", url).status_code == 403
        ok = call(site, state, "GET", url, headers={TOKEN_HEADER: site.token("ctl-1")})
    assert ok.status_code == 200 and ok.text == "PRIVATE-KEY-TEXT"
    assert "PRIVATE-KEY-TEXT" not in caplog.text


def test_tokens_depend_on_the_key(answers: Answers) -> None:
    one = ProvisionerSite(answers, default_catalog(), b"a" * 32)
    two = ProvisionerSite(answers, default_catalog(), b"b" * 32)
    assert one.token("ctl-1") != two.token("ctl-1")
    assert one.token("ctl-1") != one.token("compute-1")
    assert one.token("ctl-1") == ProvisionerSite(answers, default_catalog(), b"a" * 32
                                                 ).token("ctl-1")


def test_a_token_with_non_ascii_characters_is_a_403(site: ProvisionerSite,
                                                    state: ProvisionerState) -> None:
    """Header bytes reach the app as latin-1 text: comparing it as str raised TypeError."""
    token = {TOKEN_HEADER: "tökén-ü".encode()}
    installed = call(site, state, "POST", "/nodes/compute-1/installed", headers=token)
    assert installed.status_code == 403 and state.state("compute-1") is None
    inventory = call(site, state, "POST", "/inventory", json=report(), headers=token)
    assert inventory.status_code == 403 and state.inventory.nodes == []
