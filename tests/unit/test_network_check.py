"""The network check's instructions for the discovery image, and its answer held against
the plan: what matches, what differs, what the booting NIC keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.network_drafts import bonded_draft
from wizard.answers import Answers, load
from wizard.engine.orders import OrderError, plan_of
from wizard.provisioning.network_check import CheckedDevice, CheckResult, compare, instructions

MACS = ["52:54:00:d1:5c:01", "52:54:00:d1:5c:02", "52:54:00:d1:5c:03"]


@pytest.fixture
def answers(tmp_path: Path) -> Answers:
    path = tmp_path / "draft.yaml"
    path.write_text(bonded_draft(MACS))
    return load(path)


def test_instructions_build_the_bond_and_vlan_the_installers_configure(answers: Answers) -> None:
    macs, plan = plan_of(answers, "new-1")
    assert macs == MACS
    lines = instructions(plan, "0123456789abcdef").splitlines()
    assert lines[0] == "check-network 0123456789abcdef" and lines[-1] == "end"
    assert f"nic nic1 {MACS[1]} 1500" in lines
    assert "bond bond0 802.3ad 100 1500 nic1 nic2" in lines
    assert "vlan bond0.200 bond0 200 1500" in lines
    address = next(line for line in lines if line.startswith("address bond0.200 "))
    assert address.split()[2].startswith("192.168.125.") and address.endswith("/24")
    assert "route 192.168.124.1 nic0" in lines  # the admin network's router: lowest pref
    assert all(word.isprintable() and "'" not in word and "$" not in word
               for line in lines for word in line.split())


def _result(answers: Answers, **changes: object) -> CheckResult:
    """What a kernel that did everything right answers (``changes`` to the bond)."""
    _, plan = plan_of(answers, "new-1")
    storage = plan.device("bond0.200")
    admin = plan.device("nic0")
    assert storage is not None and admin is not None
    bond = {"name": "bond0", "kernel": "bond0", "mac": MACS[1], "mtu": 1500, "up": True,
            "carrier": True, "slaves": MACS[1:], "bond_mode": "802.3ad"} | changes
    return CheckResult(
        request="0123456789abcdef", boot="nic0", default_via="192.168.124.1",
        default_dev="nic0", devices=[
            CheckedDevice(name="nic0", kernel="eth0", mac=MACS[0], up=True, carrier=True,
                          addresses=["192.168.124.30/24"]),
            CheckedDevice.model_validate(bond),
            CheckedDevice(name="bond0.200", kernel="bond0.200", up=True, carrier=True,
                          vlan=200, parent="bond0",
                          addresses=[storage.addresses[0].cidr]),
        ])


def test_a_kernel_that_did_as_planned_matches(answers: Answers) -> None:
    _, plan = plan_of(answers, "new-1")
    findings = compare(plan, _result(answers))
    assert all(finding.ok is not False for finding in findings), findings
    subjects = {finding.subject for finding in findings}
    assert {"nic0 (eth0)", "bond0", "bond0.200", "default route"} <= subjects
    admin = next(f for f in findings if f.subject == "nic0 (eth0)" and "address" in f.planned)
    assert admin.ok is None and "leased 192.168.124.30/24" in admin.found  # kept by DHCP


@pytest.mark.parametrize(("changes", "wrong"), [
    ({"bond_mode": "balance-rr"}, "mode 802.3ad"),
    ({"slaves": MACS[1:2]}, f"slaves {MACS[1]}, {MACS[2]}"),
    ({"carrier": False}, "link up"),
])
def test_what_the_kernel_got_wrong_is_named(answers: Answers, changes: dict[str, object],
                                            wrong: str) -> None:
    _, plan = plan_of(answers, "new-1")
    findings = compare(plan, _result(answers, **changes))
    assert [(f.subject, f.planned) for f in findings if f.ok is False] == [("bond0", wrong)]


def test_missing_devices_routes_and_image_errors_are_wrong(answers: Answers) -> None:
    _, plan = plan_of(answers, "new-1")
    result = _result(answers)
    result = result.model_copy(update={
        "devices": [d for d in result.devices if d.name != "bond0.200"],
        "default_via": None, "default_dev": None,
        "errors": ["ip link add link bond0 name bond0.200 type vlan id 200: no such device"]})
    wrong = {(f.subject, f.found) for f in compare(plan, result) if f.ok is False}
    assert ("bond0.200", "missing") in wrong and ("default route", "none") in wrong
    assert ("image", result.errors[0]) in wrong


def test_a_node_that_is_not_planned_is_a_clear_error(answers: Answers) -> None:
    with pytest.raises(OrderError, match="no node 'nope' with an admin address"):
        plan_of(answers, "nope")
