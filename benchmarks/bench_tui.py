"""Benchmark: the wizard's responsiveness with a big discovery table, and its startup.

    python benchmarks/bench_tui.py [--rows 5000] [--presses 40] [--nodes 1000]

Drives the app headless with Textual's Pilot at 80x24 in one process. Startup: from
creating the app to its first screen ready (target < 1 s). Key presses: the discovery
table filled with N servers, the median time from a key press (cursor down, posted as the
terminal would) until the table's cursor moved and the screen was painted again (target
< 50 ms), against the same with 50 rows as the baseline. (Pilot's own ``press`` waits for
the process to go idle, ~80 ms whatever the app does, so it is not the clock here.)
Deploy: the time the Deploy step takes to catch up on the journal of an apply of N nodes
(every node at ready, 15 events each) and paint its grid, against 10 nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from textual import events

from wizard.answers import load
from wizard.engine.journal import Journal
from wizard.engine.plan import NODE_STEPS
from wizard.hardware.discovery import SweepResult
from wizard.hardware.ipmi import BmcInventory
from wizard.tui.app import WizardApp
from wizard.tui.deploy import DeployScreen
from wizard.tui.discovery import DiscoveryScreen

LAB = Path(__file__).resolve().parents[1] / "answers" / "examples" / "lab-small.yaml"
SIZE = (80, 24)


def result(index: int) -> SweepResult:
    address = f"10.{index // 65536}.{index // 256 % 256}.{index % 256}"
    bmc = BmcInventory(address, 623, model="PowerEdge R650", serial=f"SN{index:06d}",
                       cpu_cores=32, memory_gb=256, disks=4, power="on",
                       nic_macs=[f"52:54:00:{index >> 16 & 255:02x}:{index >> 8 & 255:02x}:"
                                 f"{index & 255:02x}"])
    return SweepResult(address, 623, "found", bmc=bmc)


async def startup() -> float:
    start = time.perf_counter()
    app = WizardApp(LAB, load(LAB))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        took = time.perf_counter() - start
    return took


async def presses(rows: int, count: int) -> list[float]:
    app = WizardApp(LAB, load(LAB))
    async with app.run_test(size=SIZE) as pilot:
        app.go("discovery")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DiscoveryScreen)
        for index in range(rows):
            screen.show(result(index))
        table = screen.query_one("#found")
        table.focus()
        await pilot.pause()
        times = []
        for _ in range(count):
            row = table.cursor_row
            refreshed = asyncio.Event()
            start = time.perf_counter()
            app.post_message(events.Key("down", None))
            while table.cursor_row == row:  # the key reaches the table and moves the cursor
                await asyncio.sleep(0)
            table.call_after_refresh(refreshed.set)  # ... and the screen is painted again
            await refreshed.wait()
            times.append(time.perf_counter() - start)
            await pilot.pause()
        return times


def write_journal(path: Path, nodes: int) -> list[str]:
    """A journal as an apply of ``nodes`` nodes leaves it: every step done, all ready."""
    names = [f"node-{index:05d}" for index in range(nodes)]
    with Journal.open(path) as journal:
        for name in names:
            journal.transition(name, "allocated")
            for step, state in NODE_STEPS:
                if journal.state(name) != state:
                    journal.transition(name, state)
                journal.step_started(name, step, attempt=1)
                journal.step_finished(name, step)
            journal.transition(name, "ready")
    return names


async def catch_up(path: Path, names: list[str]) -> float:
    answers = load(LAB)
    answers = answers.model_copy(update={"nodes": [
        answers.nodes[0].model_copy(update={"name": name, "macs": [], "bmc_address": None})
        for name in names]})
    app = WizardApp(LAB, answers)
    async with app.run_test(size=SIZE) as pilot:
        app.go("deploy")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DeployScreen)
        painted = asyncio.Event()
        start = time.perf_counter()
        screen.follow(path, "lab")
        while len(screen.progress.done) < len(names) * len(NODE_STEPS):
            await asyncio.sleep(0)
        screen.call_after_refresh(painted.set)
        await painted.wait()
        return time.perf_counter() - start


def deploy(nodes: int, directory: Path) -> float:
    path = directory / f"journal-{nodes}.db"
    names = write_journal(path, nodes)
    return min(asyncio.run(catch_up(path, names)) for _ in range(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--nodes", type=int, default=1000, help="nodes in the deploy journal")
    args = parser.parse_args()
    first = min(asyncio.run(startup()) for _ in range(3))
    small = statistics.median(asyncio.run(presses(50, args.presses)))
    big = statistics.median(asyncio.run(presses(args.rows, args.presses)))
    print(f"startup to first screen          {first * 1000:7.0f} ms   target < 1000 ms: "
          f"{'met' if first < 1 else 'MISSED'}")
    print(f"key press to refresh, 50 rows     {small * 1000:7.1f} ms   1.00x (baseline)")
    print(f"key press to refresh, {args.rows} rows {big * 1000:7.1f} ms   {big / small:5.2f}x"
          f"   target < 50 ms: {'met' if big < 0.05 else 'MISSED'}")
    with tempfile.TemporaryDirectory() as directory:
        few = deploy(10, Path(directory))
        many = deploy(args.nodes, Path(directory))
    print(f"deploy catches up, 10 nodes       {few * 1000:7.0f} ms   1.00x (baseline)")
    print(f"deploy catches up, {args.nodes} nodes  {many * 1000:7.0f} ms   {many / few:5.2f}x")


if __name__ == "__main__":
    main()
