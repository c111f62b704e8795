"""Orders for machines waiting in the discovery image, through the provisioner's HTTP service
(in-process) over the site's journal: wait, a network check and its answer, power off,
reboot once the machine is a node; only with the token its boot script gave it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.network_drafts import bonded_draft
from tests.unit.test_provisioner_http import STRANGER, call, discovery_token
from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.engine import orders
from wizard.engine.journal import Journal
from wizard.engine.journal_states import JournalStates
from wizard.provisioning.http import TOKEN_HEADER, create_app
from wizard.provisioning.network_check import instructions
from wizard.provisioning.site import ProvisionerSite

MACS = ["52:54:00:d1:5c:01", "52:54:00:d1:5c:02", "52:54:00:d1:5c:03"]
KEY = b"test-key" * 4


@pytest.fixture
def served(tmp_path: Path) -> ProvisionerSite:
    return ProvisionerSite(load(Path("answers/examples/lab-small.yaml")), default_catalog(),
                           KEY)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "journal.db", command="pxe serve") as opened:
        yield opened


def _app(site: ProvisionerSite, journal: Journal, tmp_path: Path) -> object:
    return create_app(site, JournalStates(journal),
                      checks=orders.JournalOrders(tmp_path / "orders", journal))


def test_orders_need_the_token_bound_to_the_asking_address(
        served: ProvisionerSite, journal: Journal, tmp_path: Path) -> None:
    state = JournalStates(journal)
    token = discovery_token(served, state, MACS[0])
    app = _app(served, journal, tmp_path)
    asked = call(served, state, "GET", f"/discovery/{MACS[0]}", app=app,
                 headers={TOKEN_HEADER: token})
    assert asked.status_code == 200 and asked.text == "wait\n"
    for peer, headers in ((STRANGER, {}), ("192.168.124.31", {TOKEN_HEADER: token})):
        refused = call(served, state, "GET", f"/discovery/{MACS[0]}", app=app, peer=peer,
                       headers=headers)
        assert refused.status_code == 403


def test_a_network_check_is_handed_out_once_and_its_answer_recorded(
        served: ProvisionerSite, journal: Journal, tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(bonded_draft(MACS))
    macs, plan = orders.plan_of(load(draft), "new-1")
    orders.ask(tmp_path / "orders", "new-1", macs, instructions(plan, "00112233aabbccdd"),
               "00112233aabbccdd")
    assert oct((tmp_path / "orders" / "00112233aabbccdd.json").stat().st_mode & 0o777) == "0o600"
    state = JournalStates(journal)
    token = {TOKEN_HEADER: discovery_token(served, state, MACS[1])}
    app = _app(served, journal, tmp_path)
    order = call(served, state, "GET", f"/discovery/{MACS[1]}", app=app, headers=token).text
    assert order.startswith("check-network 00112233aabbccdd\n") and "bond bond0 802.3ad" in order
    answer = {"request": "00112233aabbccdd", "boot": "nic1", "devices": [
        {"name": "bond0", "kernel": "bond0", "bond_mode": "802.3ad", "slaves": MACS[1:]}]}
    taken = call(served, state, "POST", f"/discovery/{MACS[1]}/network", app=app,
                 headers=token, json=answer)
    assert taken.status_code == 201
    event = orders.answer(journal, "00112233aabbccdd")
    assert event is not None and event.node == "new-1" and event.data["mac"] == MACS[1]
    outcome = orders.held_against(load(draft), event.node, event.data)
    assert outcome is not None and not outcome.ok  # no VLAN, no addresses: reported wrong
    again = call(served, state, "POST", f"/discovery/{MACS[1]}/network", app=app,
                 headers=token, json=answer)
    assert again.status_code == 409, "answered once: the request is gone"
    assert call(served, state, "GET", f"/discovery/{MACS[1]}", app=app,
                headers=token).text == "wait\n"
    bad = call(served, state, "POST", f"/discovery/{MACS[1]}/network", app=app,
               headers=token, json=answer | {"boot": "nic1; reboot"})
    assert bad.status_code == 422


def test_power_off_is_handed_out_once_and_recorded(
        served: ProvisionerSite, journal: Journal, tmp_path: Path) -> None:
    orders.ask(tmp_path / "orders", "d52-54-00-d1-5c-01", MACS, "poweroff\n",
               "aabbccdd00112233")
    state = JournalStates(journal)
    token = {TOKEN_HEADER: discovery_token(served, state, MACS[0])}
    app = _app(served, journal, tmp_path)
    assert call(served, state, "GET", f"/discovery/{MACS[0]}", app=app,
                headers=token).text == "poweroff\n"
    assert [e.data["request"] for e in journal.events(kind=orders.POWEROFF)] == [
        "aabbccdd00112233"]
    assert call(served, state, "GET", f"/discovery/{MACS[0]}", app=app,
                headers=token).text == "wait\n"


def test_a_machine_the_served_answers_make_a_node_is_told_to_reboot(
        journal: Journal, tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(bonded_draft(MACS))
    site = ProvisionerSite(load(draft), default_catalog(), KEY)
    state = JournalStates(journal)
    # the boot script of a node installs; its discovery token is what the image kept
    token = {TOKEN_HEADER: site.discovery_token(MACS[0], STRANGER)}
    assert call(site, state, "GET", f"/discovery/{MACS[0]}", app=_app(site, journal, tmp_path),
                headers=token).text == "reboot\n"
