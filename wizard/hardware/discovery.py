"""Hardware discovery: sweep a BMC range, yielding each address's outcome as it arrives.

All addresses are pinged at once from one socket; each BMC that answers is logged into
and inventoried (bounded by the driver's concurrency) while the others are still being
pinged. A BMC seen at two addresses (same MAC or serial) is reported once, then as a
duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import netaddr

from wizard.base.fields import parse_block, parse_ipv4
from wizard.hardware.inventory import DiscoveredNode, Inventory
from wizard.hardware.ipmi import BmcInventory, IpmiDriver, IpmiError, Target

Outcome = Literal["found", "duplicate", "auth_failed", "unreachable", "unsupported",
                  "bmc_error"]
MAX_SWEEP = 65_536


@dataclass
class SweepResult:
    """What one address turned out to be."""

    address: str
    port: int
    outcome: Outcome
    message: str = ""
    bmc: BmcInventory | None = None
    node: DiscoveredNode | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"event": "bmc", "address": self.address, "port": self.port,
                      "outcome": self.outcome}
        if self.message:
            data["message"] = self.message
        if self.bmc is not None:
            data |= {"mac": self.bmc.mac, "manufacturer": self.bmc.manufacturer,
                     "model": self.bmc.model, "serial": self.bmc.serial,
                     "cpu_cores": self.bmc.cpu_cores, "memory_gb": self.bmc.memory_gb,
                     "disks": self.bmc.disks, "nic_macs": self.bmc.nic_macs,
                     "power": self.bmc.power}
        if self.node is not None:
            data["node"] = self.node.name
        return data


def expand(block: str) -> list[str]:
    """The addresses of ``CIDR`` (hosts only), ``FIRST-LAST`` or one ``ADDRESS``; raises
    ``ValueError``."""
    if "/" not in block and "-" not in block:
        return [str(parse_ipv4(block))]
    span = parse_block(block)
    if span.size > MAX_SWEEP:
        raise ValueError(f"{block} holds {span.size:,} addresses; sweep at most {MAX_SWEEP:,}")
    if "/" in block:
        net = netaddr.IPNetwork(block)
        return [str(ip) for ip in (net.iter_hosts() if net.prefixlen < 31 else net)]
    return [str(ip) for ip in span]


async def sweep(driver: IpmiDriver, addresses: list[str], *, port: int, username: str,
                password: str, inventory: Inventory | None = None,
                ping_timeout: float = 1.0) -> AsyncIterator[SweepResult]:
    """Each address's outcome, found BMCs first as they answer, then the silent ones."""
    inventory = inventory if inventory is not None else Inventory()
    results: asyncio.Queue[SweepResult | None] = asyncio.Queue()
    seen: dict[str, str] = {}  # BMC MAC or serial -> first address

    async def examine(address: str, bmc_port: int) -> None:
        target = Target(address, username, password, bmc_port)
        try:
            info = await driver.inventory(target)
        except IpmiError as exc:
            await results.put(SweepResult(address, bmc_port, exc.kind, exc.detail))
            return
        first = next((seen[key] for key in (info.mac, info.serial) if key and key in seen),
                     None)
        if first is not None:
            await results.put(SweepResult(address, bmc_port, "duplicate",
                                          f"same BMC as {first}", info))
            return
        for key in (info.mac, info.serial):
            if key:
                seen[key] = address
        node, _ = inventory.add_bmc(info)
        await results.put(SweepResult(address, bmc_port, "found", "", info, node))

    async def produce() -> None:
        targets = [(address, port) for address in addresses]
        answered: set[tuple[str, int]] = set()
        tasks = []
        try:
            async for found in driver.ping(targets, timeout=ping_timeout):
                answered.add(found)
                tasks.append(asyncio.create_task(examine(*found)))
            for address, bmc_port in targets:
                if (address, bmc_port) not in answered:
                    await results.put(SweepResult(address, bmc_port, "unreachable",
                                                  f"no answer within {ping_timeout:g} s"))
            await asyncio.gather(*tasks)
        finally:
            await results.put(None)

    producer = asyncio.create_task(produce())
    try:
        while (result := await results.get()) is not None:
            yield result
        await producer  # re-raises what went wrong, if anything did
    finally:
        producer.cancel()
