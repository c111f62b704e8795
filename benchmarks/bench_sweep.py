"""Benchmark: discovery sweep of a /22 against a sequential ipmitool loop, in one run.

    python benchmarks/bench_sweep.py [--live 200] [--ping-timeout 0.3]

Starts a lab fleet of LIVE fake BMCs at the start of 127.88.0.0/22 (the other addresses
are silent), then times, in the same run: ``sweep`` of all 1,024 addresses (ping, then
login and FRU/LAN inventory of every BMC that answers), and the baseline, a sequential
loop of ``ipmitool -I lanplus -C 3 ... power status`` over the LIVE BMCs. Prints both and
the ratio (targets: sweep < 3 s, ratio >= 20x). Needs ipmitool (./dev deps).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wizard.hardware.discovery import expand, sweep
from wizard.hardware.ipmi import IpmiDriver
from wizard.lab.control import Lab

NETWORK = "127.88.0.0/22"


async def run_sweep(addresses: list[str], port: int, user: str, password: str,
                    ping_timeout: float) -> tuple[float, dict[str, int]]:
    driver = IpmiDriver(concurrency=64, timeout=3.0, retries=2)
    counts: dict[str, int] = {}
    start = time.perf_counter()
    async for result in sweep(driver, addresses, port=port, username=user, password=password,
                              ping_timeout=ping_timeout):
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    elapsed = time.perf_counter() - start
    driver.close()
    return elapsed, counts


def ipmitool_loop(ipmitool: str, addresses: list[str], port: int, user: str,
                  password: str) -> float:
    env = {"IPMI_PASSWORD": password, "PATH": os.environ.get("PATH", "/usr/bin")}
    start = time.perf_counter()
    failed = 0
    for address in addresses:
        result = subprocess.run([ipmitool, "-I", "lanplus", "-C", "3", "-H", address, "-p",
                                 str(port), "-U", user, "-E", "power", "status"], env=env,
                                check=False, capture_output=True, timeout=30)
        failed += result.returncode != 0
    if failed:
        print(f"warning: {failed} ipmitool calls failed", file=sys.stderr)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", type=int, default=200)
    parser.add_argument("--ping-timeout", type=float, default=0.3)
    args = parser.parse_args()
    # a kill (timeout, CI) still takes the lab down and removes its files
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    ipmitool = shutil.which("ipmitool")
    if ipmitool is None:
        sys.exit("ipmitool is not installed (./dev deps)")
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp) / "lab")
        spec = lab.up(args.live, seed=1, network=NETWORK)
        try:
            live = [bmc.address for bmc in spec.bmcs]
            port = spec.bmcs[0].port
            everything = expand("127.88.0.0-127.88.3.255")
            swept, counts = asyncio.run(run_sweep(everything, port, spec.username,
                                                  spec.password, args.ping_timeout))
            baseline = ipmitool_loop(ipmitool, live, port, spec.username, spec.password)
        finally:
            lab.down()
    print(f"sweep of {len(everything)} addresses ({args.live} live, ping timeout "
          f"{args.ping_timeout:g} s): {swept:.2f} s, outcomes {counts}")
    print(f"baseline, sequential ipmitool power status on the {args.live} live BMCs: "
          f"{baseline:.2f} s")
    print(f"ratio: {baseline / swept:.1f}x (target >= 20x); sweep target < 3 s: "
          f"{'met' if swept < 3 else 'MISSED'}")


if __name__ == "__main__":
    main()
