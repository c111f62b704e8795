"""Commands over hardware: ``discover``, ``power`` and the lab's ``lab up|status|down``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import netaddr
from rich.live import Live
from rich.table import Table
from rich.text import Text

from wizard.answers import load
from wizard.base import terminal
from wizard.base.secrets import SecretError
from wizard.cli.argtypes import positive
from wizard.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK
from wizard.cli.lab import add_lab_option, cabled
from wizard.engine.discover import sweep_bmcs
from wizard.hardware.discovery import SweepResult, expand
from wizard.hardware.ipmi import IpmiDriver, IpmiError, PowerAction, Target
from wizard.lab.addresses import AUTOMATIC_RANGE, holders
from wizard.lab.bmc import CONVERGE_FAULTS, Faults
from wizard.lab.control import Lab, LabChef, LabError, lab_directory, no_chef_reason
from wizard.lab.fleet import DEFAULT_NETWORK

PowerWord = PowerAction | Literal["status"]
"""What ``power`` does: an IPMI power action, or ``status`` (only look)."""
LAB_PING_TIMEOUT = 5.0
"""The lab's BMCs are processes here: on a loaded machine one may take seconds to answer."""
POWER_ACTIONS: tuple[PowerWord, ...] = ("status", "on", "off", "cycle", "reset", "soft")


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``discover``, ``power`` and ``lab`` to the ``crowbar-wizard`` parser."""
    discover = commands.add_parser(
        "discover", help="sweep a BMC range over IPMI and list the servers found",
        description="Ping every address of the range at once (RMCP+), then log into each BMC "
        "that answers and read its identity (FRU), LAN MAC and hardware. Results show as "
        "they arrive; silent addresses are counted as unreachable. The password is read "
        "from an environment variable, never from the command line.",
        formatter_class=formatter,
    )
    discover.set_defaults(handler=_discover)
    where = discover.add_mutually_exclusive_group(required=True)
    where.add_argument("--range", metavar="CIDR|A-B|ADDRESS", help="addresses to sweep")
    where.add_argument("--lab", action="store_true",
                       help="sweep the running lab's BMCs with the lab's credentials")
    where.add_argument("--answers", type=Path, metavar="FILE",
                       help="sweep the answers file's discovery.bmc_ranges (else its BMC "
                       "network's host range) with its bmc credentials and port")
    discover.add_argument("--port", type=int, default=623, help="IPMI port (default: 623)")
    discover.add_argument("--user", default="root", help="BMC user (default: root)")
    discover.add_argument("--password-env", metavar="VAR", default="CROWBAR_BMC_PASSWORD",
                          help="environment variable holding the BMC password "
                          "(default: CROWBAR_BMC_PASSWORD)")
    discover.add_argument("--json", action="store_true",
                          help="one JSON object per BMC and a summary, one per line")
    discover.add_argument("--concurrency", type=int, default=64,
                          help="BMCs logged into at once (default: 64)")
    discover.add_argument("--timeout", type=float, default=None,
                          help="seconds to wait for a BMC to answer a ping (default: 1; "
                          f"{LAB_PING_TIMEOUT:g} with --lab, whose BMCs share this "
                          "machine's CPUs with everything else on it)")

    power = commands.add_parser(
        "power", help="power status or control of nodes, through their BMCs",
        description="Act on the BMC of NODE (or of every node with --all) as the answers "
        "file describes it (bmc_address, bmc.username, bmc.password), or with --lab on the "
        "lab server standing in for it.",
        usage="crowbar-wizard power {NODE|--all} {" + ",".join(POWER_ACTIONS) + "} ANSWERS [--lab]",
        formatter_class=formatter,
    )
    power.set_defaults(handler=_power)
    power.add_argument("--all", action="store_true", help="every node with a BMC address")
    power.add_argument("words", nargs="+", metavar="NODE ACTION ANSWERS")
    add_lab_option(power, "act on the lab's BMCs")
    power.add_argument("--timeout", type=float, default=10.0, help="seconds per BMC call")

    lab = commands.add_parser(
        "lab", help="the built-in lab: a simulated fleet of BMCs on loopback",
        description=f"Start, inspect or stop the lab's fake BMCs (real IPMI over LAN on "
        f"loopback addresses of {DEFAULT_NETWORK}, or of the next free block when another lab "
        f"holds it). State lives in {lab_directory()} (set CROWBAR_LAB_DIR to move it; "
        "several labs run side by side, one per directory).", formatter_class=formatter,
    )
    actions = lab.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up", help="start N simulated servers with their BMCs",
        description="Start N simulated servers, their BMCs and (when goiardi is installed) a "
        f"Chef server. The BMCs take {DEFAULT_NETWORK}; when another lab holds addresses of "
        f"it, the next free /{DEFAULT_NETWORK.partition('/')[2]} of {AUTOMATIC_RANGE}. With "
        "--network CIDR they take that block, and when another process holds any of its "
        "addresses lab up exits 1 naming what holds them (a lab by its directory).",
        formatter_class=formatter)
    up.set_defaults(handler=_lab_up)
    up.add_argument("--nodes", type=int, required=True, metavar="N")
    up.add_argument("--seed", type=int, default=0, help="same seed, same fleet (default: 0)")
    up.add_argument("--network", metavar="CIDR",
                    help=f"loopback block for the BMCs (default: {DEFAULT_NETWORK}, else the "
                    "first free block after it)")
    up.add_argument("--fault", action="append", default=[], metavar="INDEX:KIND",
                    help="make server INDEX misbehave: its BMC with wrong_password, silent "
                    "or drop=K (drop its first K packets); its chef-client with "
                    "converge_fail (the run reports a failure) or converge_hang (it never "
                    "reports). Repeatable. INDEX is 0-based, as the # column of lab "
                    "status: 0 is the server whose BMC is on the block's first address")
    fault = actions.add_parser(
        "fault", help="set or clear a lab server's chef-client fault",
        description="Make the chef-client of lab server INDEX fail (converge_fail) or hang "
        "(converge_hang) from its next run on, or with --clear stop it. The lab's "
        "chef-client reads this at each run, so a running apply sees it. BMC faults are "
        "set by lab up only.", formatter_class=formatter)
    fault.set_defaults(handler=_lab_fault)
    fault.add_argument("fault", metavar="INDEX:KIND",
                       help="KIND: converge_fail or converge_hang; with --clear, INDEX alone "
                       "clears both")
    fault.add_argument("--clear", action="store_true", help="clear the fault instead")
    rack = actions.add_parser(
        "rack", help="add N servers to the running lab, as new hardware racked",
        description="Add N simulated servers to the running lab, on the next addresses of "
        "its block, as if new hardware had been racked: the servers already there, a deploy "
        "running on them and the Chef server go on untouched. Sweep the lab (the wizard's "
        "hardware discovery, or discover --lab) to find them, add them to the answers, give "
        "them roles and apply: the deployed nodes are left alone.",
        formatter_class=formatter)
    rack.set_defaults(handler=_lab_rack)
    rack.add_argument("count", type=positive, metavar="N", help="how many servers to add")
    status = actions.add_parser("status", help="list the lab's BMCs and their state")
    status.set_defaults(handler=_lab_status)
    status.add_argument("--json", action="store_true", help="one JSON document")
    down = actions.add_parser("down", help="stop everything the lab started")
    down.set_defaults(handler=_lab_down)


# -- discover --------------------------------------------------------------------------------


def _discover(args: argparse.Namespace) -> int:
    if args.lab:
        spec = Lab(lab_directory()).spec()
        if spec is None:
            print("no lab is up: run `crowbar-wizard lab up --nodes N` first", file=sys.stderr)
            return EXIT_FAILED
        addresses = [bmc.address for bmc in spec.bmcs]
        port, user, password = spec.bmcs[0].port, spec.username, spec.password
    elif args.answers:
        answers = load(args.answers)
        net = answers.networks[answers.bmc.network]
        blocks = answers.discovery.bmc_ranges or [net.ranges.get("host") or str(net.cidr())]
        addresses = list(dict.fromkeys(a for block in blocks for a in expand(block)))
        try:
            password = answers.bmc.password.reveal()
        except SecretError as exc:
            print(f"bmc.password: {exc}", file=sys.stderr)
            return EXIT_INVALID
        port, user = answers.bmc.port, answers.bmc.username
    else:
        try:
            addresses = expand(args.range)
        except ValueError as exc:
            print(f"--range: {exc}", file=sys.stderr)
            return EXIT_INVALID
        from_env = os.environ.get(args.password_env)
        if from_env is None:
            print(f"set the BMC password in ${args.password_env} (or pick another variable "
                  "with --password-env)", file=sys.stderr)
            return EXIT_INVALID
        password = from_env
        port, user = args.port, args.user
    counts: Counter[str] = Counter()
    start = time.monotonic()
    try:
        asyncio.run(_run_sweep(args, addresses, port, user, password, counts))
    except KeyboardInterrupt:
        _print_summary(args, len(addresses), counts, time.monotonic() - start,
                       interrupted=True)
        return EXIT_INTERRUPTED
    _print_summary(args, len(addresses), counts, time.monotonic() - start)
    if counts["found"] + counts["duplicate"] == 0:
        return EXIT_FAILED  # no BMC it could log into: nothing to provision from this sweep
    return EXIT_OK


async def _run_sweep(args: argparse.Namespace, addresses: list[str], port: int, user: str,
                     password: str, counts: Counter[str]) -> None:
    """Sweep and show each result as it comes, counting outcomes in ``counts`` (which
    the caller still has when Ctrl-C stops the sweep halfway)."""
    rows: list[SweepResult] = []
    live = None
    if not args.json and sys.stdout.isatty():
        live = Live(_table(rows, counts, len(addresses)), console=terminal.console(),
                    refresh_per_second=8)
        live.start()
    try:
        async with contextlib.aclosing(sweep_bmcs(
                addresses, port=port, username=user, password=password,
                ping_timeout=args.timeout or (LAB_PING_TIMEOUT if args.lab else 1.0),
                concurrency=args.concurrency)) as results:
            async for result in results:
                counts[result.outcome] += 1
                if args.json:
                    print(json.dumps(result.to_json()), flush=True)
                elif result.outcome != "unreachable":
                    rows.append(result)
                    if live is not None:
                        live.update(_table(rows, counts, len(addresses)))
                    else:
                        print(_line(result), flush=True)
    finally:
        if live is not None:
            live.stop()


def _print_summary(args: argparse.Namespace, total: int, counts: Counter[str], elapsed: float,
                   *, interrupted: bool = False) -> None:
    if args.json:
        print(json.dumps({"event": "summary", "addresses": total, "seconds": round(elapsed, 2),
                          **({"interrupted": True} if interrupted else {}),
                          **{k: counts.get(k, 0) for k in (
                              "found", "duplicate", "auth_failed", "unreachable",
                              "unsupported", "bmc_error")}}), flush=True)
        return
    swept = (f"interrupted after {sum(counts.values())} of {total} addresses" if interrupted
             else f"swept {total} addresses")
    others = counts["unsupported"] + counts["bmc_error"]
    print(f"{swept} in {elapsed:.1f} s: {counts['found']} found, {counts['auth_failed']} "
          f"refused the credentials, {counts['unreachable']} unreachable"
          + (f", {counts['duplicate']} duplicates" if counts["duplicate"] else "")
          + (f", {others} failed otherwise" if others else ""), flush=True)


def _line(result: SweepResult) -> str:
    if result.bmc is None:
        return f"{result.address}: {result.outcome.replace('_', ' ')}: {result.message}"
    bmc = result.bmc
    hardware = ", ".join(part for part in (
        f"{bmc.cpu_cores} cores" if bmc.cpu_cores else "",
        f"{bmc.memory_gb} GB" if bmc.memory_gb else "",
        f"{bmc.disks} disks" if bmc.disks is not None else "") if part)
    node = f" -> {result.node.name}" if result.node else ""
    return (f"{bmc.address}: {result.outcome} {bmc.manufacturer or '?'} {bmc.model or '?'} "
            f"serial {bmc.serial or '?'} bmc {bmc.mac or '?'} {hardware}{node}")


def _table(rows: list[SweepResult], counts: Counter[str], total: int) -> Table:
    done = sum(counts.values())
    table = Table(title=f"BMC sweep: {done}/{total} addresses, {counts['found']} found",
                  title_justify="left")
    for column in ("BMC", "outcome", "vendor / model", "serial", "BMC MAC", "CPUs", "RAM",
                   "disks", "NIC MACs"):
        table.add_column(column)
    for r in rows[-40:]:
        b = r.bmc
        cells = [r.address, r.outcome.replace("_", " "),
                 f"{b.manufacturer} {b.model}" if b else r.message,
                 (b.serial or "") if b else "", (b.mac or "") if b else "",
                 str(b.cpu_cores or "") if b else "",
                 f"{b.memory_gb} GB" if b and b.memory_gb else "",
                 str(b.disks if b and b.disks is not None else ""),
                 "\n".join(b.nic_macs) if b else ""]
        table.add_row(*map(Text, cells))  # a str cell is markup; what a BMC says is not
    return table


# -- power ------------------------------------------------------------------------------------


def _power(args: argparse.Namespace) -> int:
    words = list(args.words)
    if len(words) != (2 if args.all else 3):
        print(f"power: {_power_words_problem(words, args.all)}; usage: crowbar-wizard power "
              "{NODE|--all} ACTION ANSWERS", file=sys.stderr)
        return EXIT_INVALID
    answers_path = Path(words[-1])
    action = next((each for each in POWER_ACTIONS if each == words[-2]), None)
    if action is None:
        print(f"unknown action {words[-2]!r}: {', '.join(POWER_ACTIONS)}", file=sys.stderr)
        return EXIT_INVALID
    answers = load(answers_path)
    if args.lab:
        try:
            answers = cabled(answers, notes=False)
        except LabError as exc:
            print(f"power --lab: {exc}", file=sys.stderr)
            return EXIT_FAILED
    bmcs = {n.name: n.bmc_address for n in answers.nodes if n.bmc_address}
    if not args.all:
        node = next((n for n in answers.nodes if n.name == words[0]), None)
        if node is None:
            print(f"no node {words[0]!r} in {answers_path}", file=sys.stderr)
            return EXIT_INVALID
        if node.bmc_address is None:
            print(f"node {words[0]} has no bmc_address", file=sys.stderr)
            return EXIT_INVALID
        bmcs = {node.name: node.bmc_address}
    try:
        password = answers.bmc.password.reveal()
    except SecretError as exc:
        print(f"bmc.password: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return asyncio.run(_run_power(bmcs, action, answers.bmc.username, password,
                                  answers.bmc.port, args.timeout))


def _power_words_problem(words: list[str], every: bool) -> str:
    """Which of ``power``'s words are missing (a known action tells where the given ones
    sit), or that there are too many."""
    names = ["ACTION", "ANSWERS"] if every else ["NODE", "ACTION", "ANSWERS"]
    if len(words) > len(names):
        return f"{len(words)} words, expected {' '.join(names)}" + (
            " (--all names no node)" if every else "")
    action = next((i for i, word in enumerate(words) if word in POWER_ACTIONS), None)
    first = 0 if action is None else names.index("ACTION") - action
    missing = [name for name in names if name not in names[first:first + len(words)]]
    return f"missing {' and '.join(missing)}" + (
        " (or --all for every node)" if "NODE" in missing else "")


async def _run_power(bmcs: dict[str, str], action: PowerWord, user: str, password: str,
                     port: int, timeout: float) -> int:
    """``action`` on the BMC of every node in ``bmcs`` (node name: BMC address)."""
    driver = IpmiDriver(timeout=timeout)  # its retries: a session that broke off on a
    # loaded BMC (or machine) is tried again, as discover does

    async def one(name: str, address: str) -> tuple[str, str | None, IpmiError | None]:
        target = Target(address, user, password, port)
        try:
            if action == "status":
                return name, await driver.power_status(target), None
            return name, await driver.power(target, action), None
        except IpmiError as exc:
            return name, None, exc

    try:
        results = await asyncio.gather(*(one(name, address) for name, address in bmcs.items()))
    finally:
        driver.close()
    failed = 0
    for name, state, error in results:
        if error is None:
            print(f"{name}: {state}")
        else:
            failed += 1
            print(f"{name}: {error}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


# -- lab --------------------------------------------------------------------------------------


def _parse_faults(items: list[str]) -> dict[int, Faults]:
    faults: dict[int, Faults] = {}
    for item in items:
        index, _, kind = item.partition(":")
        fault = faults.setdefault(int(index), Faults())
        if kind in ("wrong_password", "silent", *CONVERGE_FAULTS):
            setattr(fault, kind, True)
        elif kind.startswith("drop="):
            fault.drop_first = int(kind.removeprefix("drop="))
        else:
            raise ValueError(f"unknown fault {item!r}: wrong_password, silent, drop=K, "
                             f"converge_fail or converge_hang")
    return faults


def _lab_fault(args: argparse.Namespace) -> int:
    index_text, _, kind = args.fault.partition(":")
    kinds = [kind] if kind else list(CONVERGE_FAULTS) if args.clear else []
    if not index_text.isdigit() or not kinds or any(k not in CONVERGE_FAULTS for k in kinds):
        print(f"lab fault: {args.fault!r} is not INDEX:KIND with KIND converge_fail or "
              "converge_hang", file=sys.stderr)
        return EXIT_INVALID
    try:
        server = Lab(lab_directory()).set_faults(int(index_text), kinds, not args.clear)
    except LabError as exc:
        print(f"lab fault: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"lab server {index_text} ({server}): {'cleared' if args.clear else 'set'} "
          f"{', '.join(kinds)}")
    return EXIT_OK


def _lab_up(args: argparse.Namespace) -> int:
    try:
        faults = _parse_faults(args.fault)
    except ValueError as exc:
        print(f"--fault: {exc}", file=sys.stderr)
        return EXIT_INVALID
    lab = Lab(lab_directory())
    try:
        spec = lab.up(args.nodes, seed=args.seed, network=args.network, faults=faults)
    except (LabError, ValueError) as exc:
        print(f"lab up: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("lab up: interrupted: what it had started is stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    first, last = spec.bmcs[0], spec.bmcs[-1]
    print(f"lab up: {len(spec.bmcs)} BMCs on {first.address}-{last.address} port {first.port}"
          f" (user {spec.username}); state in {lab.directory}")
    if args.network is None and spec.network != DEFAULT_NETWORK:
        default = netaddr.IPNetwork(DEFAULT_NETWORK).iter_hosts()
        held = holders((str(host), first.port) for host in default)
        print(f"lab up: on {spec.network}, as {DEFAULT_NETWORK} is in use"
              + (f" by {' and '.join(held)}" if held else ""))
    print(f"lab up: {_chef_line(lab.chef())}")
    print("next: crowbar-wizard discover --lab, or crowbar-wizard apply ANSWERS --lab")
    return EXIT_OK


def _lab_rack(args: argparse.Namespace) -> int:
    lab = Lab(lab_directory())
    try:
        spec = lab.rack(args.count)
    except LabError as exc:
        print(f"lab rack: {exc}", file=sys.stderr)
        return EXIT_FAILED
    first, last = spec.bmcs[-args.count], spec.bmcs[-1]
    print(f"lab rack: {args.count} servers more, BMCs on {first.address}-{last.address} "
          f"port {first.port}; the lab has {len(spec.bmcs)} now")
    print("next: sweep the lab (the wizard's hardware discovery, or crowbar-wizard discover "
          "--lab) and add them to the answers")
    return EXIT_OK


def _chef_line(chef: LabChef | None) -> str:
    if chef is None:
        return f"no Chef server ({no_chef_reason()}): apply --lab writes a chef-repo"
    return f"Chef server (goiardi) at {chef.url}, client {chef.client}, key {chef.key_path}"


def _chef_json(chef: LabChef | None) -> dict[str, str] | None:
    """The lab's Chef server as ``lab status --json`` shows it: where its key is, never the
    key."""
    if chef is None:
        return None
    return {"url": chef.url, "client": chef.client, "key": str(chef.key_path)}


def _lab_status(args: argparse.Namespace) -> int:
    lab = Lab(lab_directory())
    rows = lab.status()
    pid = lab.pid()
    if args.json:
        print(json.dumps({"running": pid is not None, "pid": pid,
                          "directory": str(lab.directory), "chef": _chef_json(lab.chef()),
                          "bmcs": rows}, indent=1))
        return EXIT_OK if rows else EXIT_FAILED
    if not rows:
        print("no lab is up (crowbar-wizard lab up --nodes N starts one)")
        return EXIT_FAILED
    table = Table(title=f"Lab: {len(rows)} BMCs, "
                  + (f"fleet pid {pid}" if pid else "fleet NOT running"), title_justify="left")
    for column in ("#", "BMC", "answers", "model", "serial", "power", "boot", "cycles",
                   "faults"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["index"]), f"{row['address']}:{row['port']}",
                      "yes" if row["answering"] else "no",
                      row["model"], row["serial"], row["power"] or "?",
                      row["boot_device"] or "?", str(row["power_cycles"]),
                      ", ".join(row["faults"]) or "-")
    terminal.console().print(table)
    print(_chef_line(lab.chef()))  # not wrapped: the key's path is copied from here
    return EXIT_OK


def _lab_down(args: argparse.Namespace) -> int:
    lab = Lab(lab_directory())
    if lab.down():
        print("lab down: the BMC fleet, its node agents and the Chef server are stopped and the "
              "state removed")
    else:
        print("lab down: nothing was running")
    return EXIT_OK
