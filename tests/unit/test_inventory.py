"""Discovered nodes: one per server, however many reports name it."""

from __future__ import annotations

import pytest

from wizard.hardware.discovery import expand
from wizard.hardware.inventory import Inventory
from wizard.hardware.ipmi import BmcInventory


def bmc(address: str, mac: str | None, serial: str | None, nics: list[str]) -> BmcInventory:
    return BmcInventory(address=address, port=623, mac=mac, serial=serial, nic_macs=nics,
                        manufacturer="Dell Inc.", model="PowerEdge R650", cpu_cores=32,
                        memory_gb=256, disks=2, virtualization=True)


def test_reports_of_one_server_merge_by_serial_mac_or_bmc_mac() -> None:
    inventory = Inventory()
    first, new = inventory.add_bmc(bmc("10.0.0.1", "02:00:00:00:00:01", "SN1",
                                       ["52:54:00:00:00:01"]))
    assert new and first.name == "d52-54-00-00-00-01"
    same_serial, new = inventory.add_bmc(bmc("10.0.0.9", None, "SN1", []))
    assert not new and same_serial is first and first.bmc_address == "10.0.0.9"
    same_nic, new = inventory.add_bmc(bmc("10.0.0.9", None, None, ["52:54:00:00:00:01",
                                                                    "52:54:00:00:00:02"]))
    assert not new and same_nic is first
    assert first.macs == ["52:54:00:00:00:01", "52:54:00:00:00:02"]
    other, new = inventory.add_bmc(bmc("10.0.0.2", "02:00:00:00:00:02", "SN2",
                                       ["52:54:00:00:00:03"]))
    assert new and other is not first and len(inventory.nodes) == 2


def test_discovered_node_becomes_an_answers_node() -> None:
    inventory = Inventory()
    node, _ = inventory.add_bmc(bmc("10.0.0.1", "02:00:00:00:00:01", "SN1",
                                     ["52:54:00:00:00:01"]))
    answer = node.to_answers_node()
    assert answer.name == "d52-54-00-00-00-01" and answer.bmc_address == "10.0.0.1"
    assert answer.hardware.serial == "SN1" and answer.hardware.memory_gb == 256
    bare, _ = inventory.add_bmc(bmc("10.0.0.5", "02:00:00:00:00:05", "SN5", []))
    assert bare.to_answers_node() is None  # no NIC MAC yet: nothing to PXE-boot


def test_fru_text_with_control_characters_still_makes_a_node() -> None:
    """A BMC's FRU fields padded with NULs (or worse) become one line of text, not a node the
    answers model refuses (it holds no control characters)."""
    info = bmc("10.0.0.1", None, "SN1\x00\x00", ["52:54:00:00:00:01"])
    info.manufacturer, info.model = "Dell\nInc.\x00", "\x00\x01"
    node, _ = Inventory().add_bmc(info)
    hardware = node.to_answers_node().hardware
    assert (hardware.vendor, hardware.model, hardware.serial) == ("Dell Inc.", None, "SN1")


@pytest.mark.parametrize(
    ("block", "count", "first", "last"),
    [("10.0.0.0/22", 1022, "10.0.0.1", "10.0.3.254"),
     ("10.0.0.0-10.0.3.255", 1024, "10.0.0.0", "10.0.3.255"),
     ("10.0.0.7/32", 1, "10.0.0.7", "10.0.0.7"),
     ("10.0.0.7", 1, "10.0.0.7", "10.0.0.7")],
)
def test_sweep_ranges(block: str, count: int, first: str, last: str) -> None:
    addresses = expand(block)
    assert (len(addresses), addresses[0], addresses[-1]) == (count, first, last)


def test_sweep_range_limits() -> None:
    with pytest.raises(ValueError, match="holds 16,777,216 addresses; sweep at most 65,536"):
        expand("10.0.0.0/8")
    with pytest.raises(ValueError, match="not an IPv4 address"):
        expand("10.0.0.1-10.0.0.300")
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300' is not an IPv4 address"):
        expand("10.0.0.300")
