"""``pxe serve`` keeps its store in the site's journal: ``status`` and the wizard's Discovery
screen see the machines it discovers, and it does not start while an apply holds it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.test_provisioner_http import EXAMPLE, TOKEN_HEADER, call, discovery_token, report
from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.cli.main import main
from wizard.engine.deployments import journals, read_events
from wizard.engine.journal import Journal
from wizard.engine.journal_states import JournalStates
from wizard.engine.paths import SitePaths
from wizard.hardware.inventory import InventoryReport
from wizard.provisioning.site import ProvisionerSite

MAC = "52:54:00:aa:bb:07"


def test_a_pxe_report_makes_status_list_the_machine_as_discovered(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = ProvisionerSite(load(EXAMPLE), default_catalog(), b"k" * 32)
    with Journal.open(SitePaths(tmp_path).journal, command="pxe serve") as journal:
        states = JournalStates(journal)
        token = discovery_token(site, states, MAC)
        posted = call(site, states, "POST", "/inventory", headers={TOKEN_HEADER: token},
                      json=report(MAC, macs=[MAC]))
        assert posted.status_code == 201
    assert main(["status", str(EXAMPLE), "--state", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{'d52-54-00-aa-bb-07':24s} discovered"]


def test_the_discovery_screen_reads_what_pxe_serve_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal the Discovery screen looks in (``journals``; the one ``pxe serve`` opens
    by default, as the test below shows) holds the service's PXE reports as the screen
    reads them."""
    monkeypatch.setenv("CROWBAR_STATE_DIR", str(tmp_path))
    answers = load(EXAMPLE)
    site = ProvisionerSite(answers, default_catalog(), b"k" * 32)
    path = journals(answers)["real"]
    with Journal.open(path, command="pxe serve") as journal:
        states = JournalStates(journal)
        token = discovery_token(site, states, MAC)
        call(site, states, "POST", "/inventory", headers={TOKEN_HEADER: token},
             json=report(MAC, macs=[MAC]))
        [event] = read_events(path, kind="inventory")
    assert event.node == "d52-54-00-aa-bb-07"
    assert InventoryReport.model_validate(event.data).mac == MAC  # as the screen reads it


@pytest.mark.parametrize("where", ["default", "--state"])
def test_pxe_serve_does_not_start_while_an_apply_holds_the_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        where: str) -> None:
    """They would fight over the ports, and over the journal: exit 1 naming the holder,
    before anything is checked, rendered or started."""
    monkeypatch.setenv("CROWBAR_STATE_DIR", str(tmp_path / "root"))
    args = ["pxe", "serve", str(EXAMPLE), str(tmp_path / "pxe")]
    if where == "--state":
        args += ["--state", str(tmp_path / "elsewhere")]
        path = SitePaths(tmp_path / "elsewhere").journal
    else:  # the journal apply, status and the Discovery screen use
        path = journals(load(EXAMPLE))["real"]
    with Journal.open(path, command="apply"):
        assert main(args) == 1
    err = capsys.readouterr().err
    assert f"cannot serve: {path} is in use by crowbar-wizard apply (pid {os.getpid()}" in err
    assert "an apply serves the nodes itself" in err
    assert not (tmp_path / "pxe").exists()  # nothing rendered, no dnsmasq
