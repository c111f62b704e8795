"""Neither side tested only against itself: ipmitool against our fake BMCs, our driver
against OpenIPMI's ipmi_sim."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests.integration.conftest import IpmiSim, need
from wizard.hardware.ipmi import IpmiDriver, IpmiError, Target
from wizard.lab.control import Lab
from wizard.lab.fleet import read_states


def ipmitool(lab: Lab, index: int, *args: str) -> str:
    spec = lab.spec()
    bmc = spec.bmcs[index]
    result = subprocess.run(
        [need("ipmitool"), "-I", "lanplus", "-C", "3", "-H", bmc.address, "-p", str(bmc.port),
         "-U", spec.username, "-E", *args],
        capture_output=True, text=True, timeout=30, check=False,
        env={"IPMI_PASSWORD": spec.password, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_ipmitool_drives_power_on_a_fake_bmc(lab: Lab) -> None:
    assert ipmitool(lab, 6, "power", "off").strip() == "Chassis Power Control: Down/Off"
    assert ipmitool(lab, 6, "power", "status").strip() == "Chassis Power is off"
    ipmitool(lab, 6, "power", "on")
    assert ipmitool(lab, 6, "power", "status").strip() == "Chassis Power is on"
    state = read_states(lab.directory)[lab.spec().bmcs[6].address]["state"]
    assert state["power"] == "on"


def test_ipmitool_sets_and_reads_the_boot_device(lab: Lab) -> None:
    ipmitool(lab, 7, "chassis", "bootdev", "pxe", "options=persistent")
    flags = ipmitool(lab, 7, "chassis", "bootparam", "get", "5")
    assert "Boot Device Selector : Force PXE" in flags
    assert "Options apply to all future boots" in flags
    ipmitool(lab, 7, "chassis", "bootdev", "disk")
    flags = ipmitool(lab, 7, "chassis", "bootparam", "get", "5")
    assert "Force Boot from default Hard-Drive" in flags
    assert "Options apply to only next boot" in flags


def test_ipmitool_reads_fru_and_lan_of_a_fake_bmc(lab: Lab) -> None:
    bmc = lab.spec().bmcs[0]
    fru = ipmitool(lab, 0, "fru", "print", "0")
    assert f"Product Serial        : {bmc.hardware.serial}" in fru
    assert f"Product Manufacturer  : {bmc.hardware.vendor}" in fru
    assert f"Product Extra         : nic={bmc.hardware.nic_macs[0]}" in fru
    lan = ipmitool(lab, 0, "lan", "print", "1")
    assert f"MAC Address             : {bmc.mac}" in lan
    assert f"IP Address              : {bmc.address}" in lan


def _driver_on_sim(sim: IpmiSim, work):
    async def scenario():
        driver = IpmiDriver(timeout=5, retries=1)
        try:
            return await work(driver, Target(sim.address, sim.username, sim.password,
                                             sim.port))
        finally:
            driver.close()

    return asyncio.run(scenario())


def test_driver_controls_power_of_ipmi_sim(ipmi_sim: IpmiSim) -> None:
    async def work(driver: IpmiDriver, target: Target) -> list[str]:
        seen = [await driver.power(target, "on"), await driver.power_status(target)]
        seen += [await driver.power(target, "off"), await driver.power_status(target)]
        return seen

    assert _driver_on_sim(ipmi_sim, work) == ["on", "on", "off", "off"]
    assert ipmi_sim.server("power") == "0"


def test_driver_sets_the_boot_device_of_ipmi_sim(ipmi_sim: IpmiSim) -> None:
    async def work(driver: IpmiDriver, target: Target) -> None:
        await driver.set_boot_device(target, "network")

    _driver_on_sim(ipmi_sim, work)
    assert ipmi_sim.server("boot") == "pxe"  # what ipmi_sim told the server behind it


def test_driver_reads_ipmi_sim_fru_in_small_chunks(ipmi_sim: IpmiSim) -> None:
    async def work(driver: IpmiDriver, target: Target):
        return await driver.inventory(target)

    info = _driver_on_sim(ipmi_sim, work)
    assert (info.manufacturer, info.model, info.serial) == ("OpenIPMI", "ipmi_sim",
                                                             ipmi_sim.serial)
    assert info.cpu_cores == 4


def test_wrong_password_on_ipmi_sim_is_auth_failed(ipmi_sim: IpmiSim) -> None:
    async def work(driver: IpmiDriver, target: Target) -> None:
        await driver.power_status(Target(target.address, target.username, "nope",
                                         target.port))

    with pytest.raises(IpmiError) as caught:
        _driver_on_sim(ipmi_sim, work)
    assert caught.value.kind == "auth_failed"
