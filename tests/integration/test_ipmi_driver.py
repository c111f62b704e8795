"""The IPMI driver against the lab's fake BMCs (pyghmi's BMC server), over real UDP."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.bmc_relay import hanging_logins
from tests.integration.conftest import LAB_SIZE
from wizard.hardware.discovery import expand, sweep
from wizard.hardware.ipmi import IpmiDriver, IpmiError, Target
from wizard.lab.control import Lab
from wizard.lab.fleet import read_states


def target(lab: Lab, index: int, password: str | None = None) -> Target:
    spec = lab.spec()
    bmc = spec.bmcs[index]
    return Target(bmc.address, spec.username, password or spec.password, bmc.port)


def run(coro):
    return asyncio.run(coro)


def state(lab: Lab, index: int) -> dict:
    return read_states(lab.directory)[lab.spec().bmcs[index].address]["state"]


def test_power_control_reaches_the_simulated_server(lab: Lab) -> None:
    async def scenario() -> list[str]:
        driver = IpmiDriver(timeout=5)
        t = target(lab, 0)
        seen = [await driver.power(t, "off"), await driver.power_status(t)]
        seen += [await driver.power(t, "on"), await driver.power_status(t)]
        seen += [await driver.power(t, "cycle"), await driver.power_status(t)]
        driver.close()
        return seen

    cycles = state(lab, 0)["power_cycles"]
    assert run(scenario()) == ["off", "off", "on", "on", "on", "on"]
    assert state(lab, 0)["power_cycles"] == cycles + 1


def test_boot_device_next_boot_and_persistent(lab: Lab) -> None:
    async def scenario() -> list[tuple[str, bool]]:
        driver = IpmiDriver(timeout=5)
        t = target(lab, 1)
        await driver.power(t, "off")
        await driver.set_boot_device(t, "network")
        seen = [await driver.boot_device(t)]
        await driver.power(t, "on")  # boots from the network once
        seen.append(await driver.boot_device(t))
        await driver.set_boot_device(t, "disk", persistent=True)
        await driver.power(t, "cycle")
        seen.append(await driver.boot_device(t))
        driver.close()
        return seen

    assert run(scenario()) == [("network", False), ("default", False), ("disk", True)]
    assert state(lab, 1)["boots"][-2:] == ["network", "disk"]


def test_inventory_reads_identity_hardware_and_bmc_mac(lab: Lab) -> None:
    spec = lab.spec().bmcs[2]
    info = run(_inventory(target(lab, 2)))
    assert (info.manufacturer, info.model, info.serial) == (
        spec.hardware.vendor, spec.hardware.model, spec.hardware.serial)
    assert (info.cpu_cores, info.memory_gb, info.disks) == (
        spec.hardware.cpu_cores, spec.hardware.memory_gb, spec.hardware.disks)
    assert info.nic_macs == spec.hardware.nic_macs
    assert info.mac == spec.mac
    assert info.power == state(lab, 2)["power"]


async def _inventory(t: Target):
    driver = IpmiDriver(timeout=5)
    try:
        return await driver.inventory(t)
    finally:
        driver.close()


def test_wrong_password_is_auth_failed_for_that_bmc_only(lab: Lab) -> None:
    async def scenario() -> list[object]:
        driver = IpmiDriver(timeout=5)
        results = await asyncio.gather(
            driver.power_status(target(lab, 3)),  # this BMC rejects the password
            driver.power_status(target(lab, 0)),
            return_exceptions=True)
        driver.close()
        return results

    refused, fine = run(scenario())
    assert isinstance(refused, IpmiError) and refused.kind == "auth_failed"
    assert str(refused).startswith(f"{lab.spec().bmcs[3].address}: auth failed")
    assert lab.spec().password not in str(refused)
    assert fine in ("on", "off")


def test_silent_bmc_is_unreachable_within_the_timeout(lab: Lab) -> None:
    driver = IpmiDriver(timeout=1.0, retries=1, backoff=0.1)
    start = time.monotonic()
    with pytest.raises(IpmiError) as caught:
        run(driver.power_status(target(lab, 4)))
    elapsed = time.monotonic() - start
    driver.close()
    assert caught.value.kind == "unreachable"
    assert caught.value.address == lab.spec().bmcs[4].address
    assert elapsed < 1.0 + 0.5  # within the timeout (a ping first), plus some slack


def test_a_wrong_user_is_refused_at_once(lab: Lab) -> None:
    spec = lab.spec()
    driver = IpmiDriver(timeout=5)
    start = time.monotonic()
    with pytest.raises(IpmiError) as caught:
        run(driver.power_status(Target(spec.bmcs[0].address, "root", spec.password,
                                       spec.bmcs[0].port)))
    assert caught.value.kind == "auth_failed"
    assert time.monotonic() - start < 5  # an answer, not a timeout


def test_a_hanging_login_gives_up_at_the_timeout_and_holds_up_nothing(lab: Lab) -> None:
    good = target(lab, 0)

    async def scenario() -> tuple[IpmiError, float, str]:
        driver = IpmiDriver(timeout=1.0, retries=0)
        with hanging_logins((good.address, good.port)) as relay:
            start = time.monotonic()
            try:
                await driver.power_status(Target("127.0.0.1", good.username, good.password,
                                                  relay.port))
            except IpmiError as exc:
                error, elapsed = exc, time.monotonic() - start
            # the pyghmi thread is free again: a healthy BMC answers at once
            state = await asyncio.wait_for(driver.power_status(good), 10)
        return error, elapsed, state

    error, elapsed, state = run(scenario())
    assert error.kind == "unreachable" and error.detail == "no answer within 1 s"
    assert elapsed < 1.0 + 1.0  # pyghmi alone would go on retrying the login for minutes
    assert state in ("on", "off")


def test_sweep_finds_each_bmc_once_with_its_outcome(lab: Lab) -> None:
    spec = lab.spec()
    addresses = expand(spec.network)  # 254 addresses, 8 with a BMC behind them

    async def scenario() -> list:
        driver = IpmiDriver(concurrency=16, timeout=5)
        try:
            return [r async for r in sweep(driver, addresses, port=spec.bmcs[0].port,
                                           username=spec.username, password=spec.password,
                                           ping_timeout=1.0)]
        finally:
            driver.close()

    results = run(scenario())
    assert sorted(r.address for r in results) == sorted(addresses)  # each address once
    outcome = {r.address: r.outcome for r in results}
    bmcs = [b.address for b in spec.bmcs]
    assert outcome[bmcs[3]] == "auth_failed"
    assert outcome[bmcs[4]] == "unreachable"
    assert outcome[bmcs[5]] == "found"  # dropped its first packets, found on a retry
    found = [r for r in results if r.outcome == "found"]
    assert len(found) == LAB_SIZE - 2
    assert {r.bmc.serial for r in found} == {
        b.hardware.serial for i, b in enumerate(spec.bmcs) if i not in (3, 4)}
    assert all(r.node is not None and r.node.name.startswith("d52-54-00-") for r in found)
    first_unreachable = next(i for i, r in enumerate(results) if r.outcome == "unreachable")
    assert all(r.outcome != "unreachable" for r in results[:first_unreachable])


def test_discover_json_and_answers_sources(lab: Lab, tmp_path, capsys, monkeypatch) -> None:
    """discover --json over the CLI's own code, in this process, on the fixture's fleet."""
    import json

    from tests.unit.base_answers import BASE
    from wizard.cli.main import main

    spec = lab.spec()
    monkeypatch.setenv("FLEET_PASSWORD", spec.password)
    code = main(["discover", "--range", f"{spec.bmcs[0].address}-{spec.bmcs[-1].address}",
                 "--port", str(spec.bmcs[0].port), "--user", spec.username,
                 "--password-env", "FLEET_PASSWORD", "--json"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [e["event"] for e in events] == ["bmc"] * LAB_SIZE + ["summary"]
    assert events[-1]["found"] == LAB_SIZE - 2 and events[-1]["auth_failed"] == 1
    answers = tmp_path / "a.yaml"
    answers.write_text(
        BASE.replace("192.168.124.0/24\n    ranges:\n      host: 192.168.124.162-192.168.124.240",
                     "127.77.0.0/24\n    ranges:\n      host: 127.77.0.1-127.77.0.200")
        .replace("bmc_ranges: [192.168.124.162-192.168.124.240]",
                 f"bmc_ranges: [{spec.bmcs[0].address}-{spec.bmcs[2].address}]")
        .replace("bmc_address: 192.168.124.162", "bmc_address: 127.77.0.101")
        .replace("bmc_address: 192.168.124.163", "bmc_address: 127.77.0.102")
        .replace("  username: root\n",
                 f"  username: {spec.username}\n  port: {spec.bmcs[0].port}\n")
        .replace("env:CROWBAR_BMC_PASSWORD", "env:FLEET_PASSWORD"))
    assert main(["discover", "--answers", str(answers)]) == 0
    out = capsys.readouterr().out
    assert "swept 3 addresses" in out and ": 3 found," in out
