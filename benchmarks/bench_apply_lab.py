"""Benchmark: ``apply --lab`` of a large deployment, from bare lab servers to ready.

    python benchmarks/bench_apply_lab.py [--nodes 1000]

Builds an OpenStack answers file with N nodes (as bench_chef_objects.py does), starts a lab
of N servers (fake BMCs, node agents, goiardi when installed) on 127.90.0.0/22, and runs
``crowbar-wizard apply --lab`` on it as a user would, in a child process: every node
installed, then converged in Crowbar's order (the lab's chef-client: run list expansion,
depsolve, cookbook downloads, node saves, all on goiardi). Prints the wall time and the
apply process's peak RSS against the targets (< 120 s, < 300 MB at 1,000 nodes), the
per-phase breakdown from the journal with the share of the run spent converging, and the
ratio to a baseline run in the same invocation: ``apply --dry-run`` (loading, rendering and
planning, nothing done). Then, on the same goiardi, what one chef-client run's requests cost
each (a node read, a role read, a depsolve, a file download, a node save), to say where
the converging time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench_chef_objects import make_file

from wizard.answers import load
from wizard.chef.api import ChefServer
from wizard.engine.convergence import step_role
from wizard.engine.journal import Journal
from wizard.engine.phases import CORE_CONVERGED
from wizard.lab.agent import node_key
from wizard.lab.control import Lab

TARGET_SECONDS, TARGET_MB = 120.0, 300
SAMPLES = 200
"""Requests timed per kind on goiardi after the apply."""


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
                     "ready": "converged, ready (all nodes)"}.get(event.data["to"])
            if phase:
                marks[phase] = at
        elif event.kind == CORE_CONVERGED:
            marks["core barclamps converged (all nodes)"] = at
        elif event.kind == "step-started" and step_role(event.step or "") is not None:
            marks.setdefault("first chef-client run starts", at)
    return sorted(marks.items(), key=lambda item: item[1])


def chef_runs(journal: Journal) -> tuple[int, float]:
    """How many chef-client runs the apply made, and their summed duration (seconds)."""
    runs: dict[str, float] = {}
    for event in journal.events(kind="step-finished"):
        if step_role(event.step or "") is not None:
            run = json.loads(event.data["detail"])
            runs[run["request"]] = run["elapsed"]
    return len(runs), sum(runs.values())


async def request_costs(lab: Lab, fqdn: str) -> list[tuple[str, float]]:
    """Milliseconds per request of a chef-client run, on the lab's goiardi, as node
    ``fqdn``."""
    chef = lab.chef()
    assert chef is not None
    async with ChefServer(chef.url, chef.client, chef.admin_key) as admin:
        node = await admin.get("nodes", fqdn)
    assert node is not None
    name = node["name"]
    key = node_key(lab.directory, name)
    costs: list[tuple[str, float]] = []
    async with ChefServer(chef.url, name, key) as me:
        recipes = await _recipes(me, node["run_list"])
        solved = await me.request("POST", f"/environments/{node['chef_environment']}"
                                  "/cookbook_versions", {"run_list": recipes})
        url = next(item["url"] for version in solved.values()
                   for item in version.get("recipes", []))
        role = node["run_list"][-1][5:-1]
        calls = {
            "GET node": lambda: me.get("nodes", name),
            "GET role": lambda: me.get("roles", role),
            f"depsolve ({len(recipes)} recipes)": lambda: me.request(
                "POST", f"/environments/{node['chef_environment']}/cookbook_versions",
                {"run_list": recipes}),
            "GET cookbook file": lambda: me.get_file(url),
            "PUT node": lambda: me.request("PUT", f"/nodes/{name}", node),
        }
        for label, call in calls.items():
            start = time.perf_counter()
            for _ in range(SAMPLES):
                await call()
            costs.append((label, (time.perf_counter() - start) * 1000 / SAMPLES))
    return costs


async def _recipes(me: ChefServer, run_list: list[str]) -> list[str]:
    recipes: list[str] = []
    for item in run_list:
        role = await me.get("roles", item[5:-1])
        assert role is not None
        recipes += [r[7:-1] for r in role["run_list"] if r[7:-1] not in recipes]
    return recipes


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    args = parser.parse_args()
    # a kill (timeout, CI) still takes the lab down and removes its files
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
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
            site = load(answers)
            with Journal.open(lab.directory / "apply" / site.site.name / "journal.db",
                              lock=False) as journal:
                states = [s for n, (s, _) in journal.states().items()
                          if n != site.admin.hostname]
                breakdown = phases(journal)
                runs, run_seconds = chef_runs(journal)
            compute = next(n.name for n in site.nodes if n.name.startswith("comp"))
            costs = asyncio.run(request_costs(lab, f"{compute}.{site.site.domain}"))
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
    marks = dict(breakdown)
    installed = marks.get("OS installs called back (all nodes)")
    end = max(marks.values(), default=0)
    if installed is not None and end:  # runs start while others install: this is the tail
        print(f"  converging after the last install: {end - installed:.1f} s of {end:.1f} s "
              f"({(end - installed) / end:.0%}); {runs} chef-client runs, "
              f"{run_seconds:.0f} s of runs in all "
              f"({run_seconds / max(runs, 1) * 1000:.0f} ms each on average)")
    print(f"  one chef-client run's requests on goiardi, as a compute node ({SAMPLES} each):")
    for label, ms in costs:
        print(f"    {ms:6.2f} ms  {label}")


if __name__ == "__main__":
    main()
