"""Sweeping a BMC range for the faces: the wizard's Discovery step and ``discover``.

:func:`sweep_bmcs` makes the IPMI driver, sweeps (:func:`wizard.hardware.discovery.sweep`)
and closes the driver when the sweep ends or is abandoned; close it early with
``contextlib.aclosing``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from wizard.hardware.discovery import SweepResult, sweep
from wizard.hardware.inventory import Inventory
from wizard.hardware.ipmi import IpmiDriver

CONCURRENCY = 64
"""BMCs talked to at once."""
TIMEOUT = 3.0
"""Seconds a BMC has to answer one request (each tried up to :data:`RETRIES` more times)."""
RETRIES = 2


async def sweep_bmcs(addresses: list[str], *, port: int, username: str, password: str,
                     inventory: Inventory | None = None, ping_timeout: float = 1.0,
                     concurrency: int = CONCURRENCY) -> AsyncGenerator[SweepResult, None]:
    """Each address's outcome, found BMCs first as they answer, then the silent ones."""
    driver = IpmiDriver(concurrency=concurrency, timeout=TIMEOUT, retries=RETRIES)
    try:
        async for result in sweep(driver, addresses, port=port, username=username,
                                  password=password, inventory=inventory,
                                  ping_timeout=ping_timeout):
            yield result
    finally:
        driver.close()
