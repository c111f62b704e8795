"""Benchmark: ``apply --lab`` of a large deployment, from bare lab servers to ready.

    python benchmarks/bench_apply_lab.py [--nodes 1000]

Builds an OpenStack answers file with N nodes (as bench_chef_objects.py does), starts a lab
of N servers (fake BMCs, node agents, goiardi when installed) on 127.90.0.0/22, and runs
``crowbar-wizard apply --lab`` on it as a user would, in a child process. Prints the wall
time and the apply process's peak RSS against the targets (< 60 s, < 300 MB at 1,000
nodes), the per-phase breakdown from the journal, and the ratio to a baseline run in the
same invocation: ``apply --dry-run`` (loading, rendering and planning, nothing done).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench_chef_objects import make_file

from wizard.answers import load
from wizard.engine.journal import Journal
from wizard.lab.control import Lab

TARGET_SECONDS, TARGET_MB = 60.0, 300


def run(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "wizard.cli", *args], env=env,
                          capture_output=True, text=True)
    return time.perf_counter() - start, done


def phases(journal: Journal) -> list[tuple[str, float]]:
    """Seconds from the first event to the end of each phase."""
    events = journal.events()
    first = _time(events[0].at)
    marks: dict[str, float] = {}
    for event in events:
        at = _time(event.at) - first
        if event.kind == "step-finished" and event.step == "dhcp":
            marks["DHCP reservations + dnsmasq config"] = at
        elif event.kind == "step-finished" and (event.step or "").startswith("chef:"):
            marks["Chef environment, roles, data bag items"] = at
        elif event.kind == "transition":
            phase = {"installing": "boot device + power cycle (all nodes)",
                     "installed": "OS installs called back (all nodes)",
                     "ready": "Chef nodes, ready (all nodes)"}.get(event.data["to"])
            if phase:
                marks[phase] = at
    return sorted(marks.items(), key=lambda item: item[1])


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        answers = make_file(directory, args.nodes)
        env = os.environ | {"CROWBAR_LAB_DIR": str(directory / "lab")}
        lab = Lab(directory / "lab")
        lab.up(args.nodes, seed=1, network="127.90.0.0/22")
        try:
            baseline, dry = run(["apply", str(answers), "--lab", "--dry-run"], env)
            took, done = run(["apply", str(answers), "--lab"], env)
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            if dry.returncode != 0 or done.returncode != 0:
                sys.exit(f"apply failed:\n{dry.stderr[-2000:]}{done.stderr[-2000:]}")
            site = load(answers).site.name
            with Journal.open(lab.directory / "apply" / site / "journal.db",
                              lock=False) as journal:
                states = [s for s, _ in journal.states().values()]
                breakdown = phases(journal)
        finally:
            lab.down()
    print(f"apply --lab, {args.nodes} nodes: {states.count('ready')} ready")
    print(f"  apply --dry-run (baseline)   {baseline:6.1f} s   1.00x")
    print(f"  apply                        {took:6.1f} s   {took / baseline:5.1f}x   "
          f"target < {TARGET_SECONDS:.0f} s: {'met' if took < TARGET_SECONDS else 'MISSED'}")
    print(f"  peak RSS of apply            {peak_mb:6.0f} MB          target < {TARGET_MB} "
          f"MB: {'met' if peak_mb < TARGET_MB else 'MISSED'}")
    print("  phases (seconds from the start of the run, when the last node finished each):")
    for name, at in breakdown:
        print(f"    {at:6.1f}  {name}")


if __name__ == "__main__":
    main()
