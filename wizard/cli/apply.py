"""``crowbar-wizard apply`` and ``status``: take nodes to ready, headless, and watch it."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wizard.answers import Answers, load
from wizard.base.interrupts import interruptible
from wizard.base.secrets import SecretError
from wizard.catalog import default_catalog
from wizard.chef.api import ChefError
from wizard.chef.converge import Starter
from wizard.chef.node import admin_client
from wizard.chef.starters import (
    ByNode,
    LocalStarter,
    SshStarter,
    admin_ssh_key,
    client_config_path,
    existing_admin_ssh_key,
)
from wizard.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK
from wizard.cli.lab import add_lab_option, cabled
from wizard.cli.pxe import preflight_options, run_preflight_checks
from wizard.engine import converge_runs
from wizard.engine.convergence import step_role
from wizard.engine.deployments import set_pause
from wizard.engine.journal import Journal, JournalError, JournalLocked, holder
from wizard.engine.paths import SitePaths, site_state
from wizard.engine.phases import CORE_CONVERGED, PHASES, nodes_past_phases
from wizard.engine.plan import describe
from wizard.engine.runner import Options, Outcome, Runner, StepFailed
from wizard.hardware.ipmi import IpmiDriver
from wizard.lab.chef_client import LabChefPool, lab_chef_client
from wizard.lab.control import LabError, lab_directory
from wizard.provisioning.dnsmasq import DnsmasqError
from wizard.provisioning.tree import TreeError

LAB_OPTIONS = Options(step_timeout=30, install_timeout=120, converge_timeout=30, attempts=3,
                      backoff=0.5)


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``apply`` and ``status`` to the ``crowbar-wizard`` parser."""
    apply = commands.add_parser(
        "apply", help="take the answers' nodes to ready (IPMI, PXE, Chef), headless",
        description="Deploy ANSWERS: write the DHCP reservations and dnsmasq config, upload "
        "the cookbooks its barclamps ship, push the Chef environment (pinning them), roles "
        "and data bag items, then take every node through its "
        "lifecycle (boot device network, power cycle, OS install with its callback, boot "
        "device disk, Chef node) and converge it: chef-client runs on each node as its "
        "roles may start, in Crowbar's order (the core barclamps first, then each "
        "barclamp in run order, role by role), and a node is ready once its whole run list "
        "converged. Every step is journaled before the "
        "next one starts: run apply again after a crash or Ctrl-C and it resumes. Before "
        "serving DHCP on a real network it runs the checks of 'pxe preflight'. Exit 0 "
        "when every node is ready, 1 when some are in problem (listed), 2 for invalid "
        "input, 3 when another apply holds the journal.", formatter_class=formatter,
    )
    apply.add_argument("answers", type=Path, metavar="ANSWERS", help="the answers file")
    add_deploy_options(apply)
    apply.set_defaults(handler=_apply)

    status = commands.add_parser(
        "status", help="node states from the site's journal",
        description="Show each node's lifecycle state (and problem reason), and each machine "
        "PXE discovery found ('discovered'), from the journal of ANSWERS' site, which apply "
        "and pxe serve write, while they run or after. For a node with Chef roles (the "
        "admin node too) also its convergence: the barclamp roles converging now, or that "
        "it waits for other nodes' roles, how many of its roles converged, and its last "
        "chef-client run (when, in UTC; how long; how it ended); --json adds 'activity' "
        "(converging or waiting while readying, else the state) and 'converge' (null for a "
        "node without roles) to each node. The journal lives in the state "
        "directory: --state, else $CROWBAR_STATE_DIR/<site>, /var/lib/crowbar-wizard/<site> "
        "for root, ~/.local/state/crowbar-wizard/<site> otherwise, and the lab's directory "
        "with --lab.", formatter_class=formatter,
    )
    status.add_argument("answers", type=Path, metavar="ANSWERS", help="the answers file")
    status.add_argument("--lab", action="store_true", help="the lab deployment's journal")
    status.add_argument("--state", type=Path, metavar="DIR", help="the state directory")
    status.add_argument("--follow", action="store_true",
                        help="print events as they happen until apply or pxe serve ends "
                        "(Ctrl-C stops)")
    status.add_argument("--json", action="store_true", help="JSON output")
    status.set_defaults(handler=_status)

    for name, verb in (("pause", "Pause"), ("resume", "Resume")):
        control = commands.add_parser(
            name, help=f"{name} the running apply of ANSWERS",
            description=f"{verb} the apply running for ANSWERS' site. A paused apply starts "
            "no new step (the ones under way finish) until it is resumed; the wizard's "
            "Deploy step shows it and has the same button. Exit 1 when no apply is running.",
            formatter_class=formatter)
        control.add_argument("answers", type=Path, metavar="ANSWERS", help="the answers file")
        control.add_argument("--lab", action="store_true", help="the lab deployment")
        control.add_argument("--state", type=Path, metavar="DIR", help="the state directory")
        control.set_defaults(handler=_pause if name == "pause" else _resume)


def add_deploy_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``apply``, which the ``node`` commands take too (they apply)."""
    add_lab_option(parser, "deploy onto the lab's simulated servers")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be done, against the journal; change nothing")
    parser.add_argument("--json", action="store_true", help="one JSON event per line")
    parser.add_argument("--state", type=Path, metavar="DIR",
                        help="journal and PXE tree (default: per site, see status --help)")
    parser.add_argument("--converge-timeout", type=_seconds, metavar="SECONDS",
                        help="how long one chef-client run may take before its node goes to "
                        f"problem (default: {Options.converge_timeout:g}, on the lab "
                        f"{LAB_OPTIONS.converge_timeout:g})")
    preflight_options(parser)


def state_directory(answers: Answers, args: argparse.Namespace) -> Path:
    return site_state(answers, lab=args.lab, state=args.state)


class ProgressView:
    """On a terminal: a bar per phase and the nodes counted by state, problems as they come."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.core: set[str] = set()
        """Nodes whose core roles converged."""
        self.progress = Progress(TextColumn("{task.description:28s}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[summary]}"))
        self.tasks = {phase.key: self.progress.add_task(phase.label, total=None, summary="")
                      for phase in PHASES}

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "plan":
            for task in self.tasks.values():
                self.progress.update(task, total=event["nodes"])
        elif kind == "state":
            self.states[event["node"]] = event["state"]
            if event["state"] == "problem":
                self.progress.console.print(f"[red]{escape(event['node'])}: problem[/red]: "
                                            f"{escape(str(event['reason']))}")
            self._redraw()
        elif kind == CORE_CONVERGED:
            self.core.add(event["node"])
            self._redraw()
        elif kind in ("serving", "chef-export", "paused", "resumed"):
            Printer(False)(event)

    def _redraw(self) -> None:
        past = nodes_past_phases((state, node in self.core)
                                 for node, state in self.states.items())
        counts: dict[str, int] = {}
        for state in self.states.values():
            counts[state] = counts.get(state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        for phase, completed in zip(PHASES, past, strict=True):
            self.progress.update(self.tasks[phase.key], completed=completed,
                                 summary=summary if phase is PHASES[-1] else "")


class Printer:
    """Engine events as lines for people, or JSON lines."""

    def __init__(self, as_json: bool):
        self.as_json = as_json

    def __call__(self, event: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(event, sort_keys=True), flush=True)
            return
        kind = event["event"]
        if kind == "state":
            reason = f": {event['reason']}" if event.get("reason") else ""
            print(f"{event['node']}: {event['state']}{reason}", flush=True)
        elif kind == "step" and event["status"] == "failed":
            print(f"{event['node']}: {event['step']} failed: {event['error']}", flush=True)
        elif kind == "serving":
            print(f"provisioner serving {event['url']}", flush=True)
        elif kind == "chef-export":
            print(f"no Chef server: wrote {event['files']} files to {event['path']}",
                  flush=True)
        elif kind in ("paused", "resumed"):
            print(f"apply {kind}: " + ("no new step starts until `crowbar-wizard resume`"
                                       if kind == "paused" else "steps start again"),
                  flush=True)


def _apply(args: argparse.Namespace) -> int:
    return deploy(load(args.answers), args)


def deploy(answers: Answers, args: argparse.Namespace, *,
           prepare: Callable[[Journal], None] | None = None,
           releasing: Collection[str] = ()) -> int:
    """``apply`` of ``answers`` as ``args`` say (``--lab``, ``--dry-run``, ``--json``,
    ``--state``, ...): its exit code. ``prepare`` changes the journal first, once it is
    held (``node reinstall``); ``releasing``: see :class:`Runner`."""
    interruptible()  # SIGINT is how an apply is cancelled, however it was started
    if args.lab:
        try:
            answers = cabled(answers, deploy=True)
        except LabError as exc:
            print(f"apply --lab: {exc}", file=sys.stderr)
            return EXIT_FAILED
    state = state_directory(answers, args)
    journal_path = SitePaths(state).journal
    if args.dry_run:
        journal = Journal.open(journal_path, lock=False) if journal_path.exists() else None
        try:
            runner = _runner(answers, journal, state, args, dry_run=True, releasing=releasing)
        except SecretError as exc:
            print(f"apply: {exc}", file=sys.stderr)
            return EXIT_FAILED
        try:
            for line in describe(runner.plan()):
                print(line)
        finally:
            runner.ipmi.close()
            if journal is not None:
                journal.close()
        return EXIT_OK
    try:
        journal = Journal.open(journal_path)
    except JournalLocked as exc:
        print(f"apply: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except JournalError as exc:
        print(f"apply: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not args.lab and not run_preflight_checks(answers, args):
        journal.close()
        print("apply: not serving DHCP on this network: fix the problems above", file=sys.stderr)
        return EXIT_FAILED
    view = ProgressView() if sys.stdout.isatty() and not args.json else None
    try:
        if prepare is not None:
            prepare(journal)
        runner = _runner(answers, journal, state, args, view=view, releasing=releasing)
        if view is not None:
            with view:
                outcome = asyncio.run(_run(runner))
        else:
            outcome = asyncio.run(_run(runner))
    except (SecretError, ChefError, LabError, JournalError, StepFailed, TreeError,
            DnsmasqError) as exc:  # StepFailed: a site step (DHCP config, Chef objects)
        print(f"apply: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        states = Counter(state for state, _ in journal.states().values())
        print(f"apply: interrupted with {', '.join(f'{n} {s}' for s, n in states.most_common())}"
              f"; every step done is in {journal_path}: apply again resumes from there",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        journal.close()
    if outcome.problems:
        print(f"{len(outcome.ready)} nodes ready, {len(outcome.problems)} in problem:",
              file=sys.stderr)
        for name, reason in sorted(outcome.problems.items()):
            print(f"  {name}: {reason}", file=sys.stderr)
        return EXIT_FAILED
    if outcome.released:
        print(f"released {', '.join(sorted(outcome.released))}")
    print(f"all {len(outcome.ready)} nodes ready")
    return EXIT_OK


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _runner(answers: Answers, journal: Journal | None, state: Path,
            args: argparse.Namespace, dry_run: bool = False,
            view: ProgressView | None = None, releasing: Collection[str] = ()) -> Runner:
    server = None if dry_run else admin_client(answers.chef)
    options = dataclasses.replace(LAB_OPTIONS if args.lab else Options())
    if args.converge_timeout is not None:
        options.converge_timeout = args.converge_timeout
    starter: Starter | None = None
    ssh_key = None
    if args.lab:
        if server is not None:  # the lab's servers play chef-client themselves
            starter = lab_chef_client(answers, lab_directory(),
                                      SitePaths(state).admin_client_key)
    elif dry_run:  # changes nothing: the key as it is, if made
        ssh_key = existing_admin_ssh_key(state)
    else:
        ssh_key = admin_ssh_key(state)
    runner = Runner(answers, default_catalog(), journal,
                    directory=state / "pxe", ipmi=IpmiDriver(), chef=server,
                    serve_dhcp=not args.lab, starter=starter, admin_ssh_key=ssh_key,
                    options=options,
                    emit=view or Printer(args.json),
                    provisioner_url_file=lab_directory() / "provisioner.url" if args.lab
                    else None,
                    # a lab server's requests come from its BMC's loopback address
                    peers={node.name: node.bmc_address for node in answers.nodes
                           if node.bmc_address is not None} if args.lab else None,
                    releasing=releasing)
    if not args.lab and not dry_run:  # Crowbar's way: chef-client over SSH, the admin's own
        admin = f"{answers.admin.hostname}.{answers.site.domain}"
        runner.starter = ByNode(SshStarter(state, runner.addresses()),
                                {admin: LocalStarter(client_config_path(state))})
    return runner


async def _run(runner: Runner) -> Outcome:
    try:
        return await runner.run()
    finally:
        runner.ipmi.close()
        if runner.chef is not None:
            await runner.chef.close()
        if isinstance(runner.starter, LabChefPool):
            runner.starter.close()


def _status(args: argparse.Namespace) -> int:
    answers = load(args.answers)
    path = SitePaths(state_directory(answers, args)).journal
    try:
        journal = Journal.open(path, lock=False)
    except FileNotFoundError:
        print(f"neither apply nor pxe serve has run for {answers.site.name} yet (no journal "
              f"at {path})",
              file=sys.stderr)
        return EXIT_FAILED
    with journal:
        if args.follow:
            for event in journal.follow(until=lambda: holder(path) is None):
                words = [event.at, event.node or "", event.kind, event.step or "",
                         json.dumps(event.data, sort_keys=True) if event.data else ""]
                print(json.dumps(event.__dict__) if args.json else
                      " ".join(word for word in words if word), flush=True)
            return EXIT_OK
        states = journal.states()
        runs = converge_runs.fold(journal.events())
        busy = {s.node for s in journal.steps() if s.status == "running"
                and step_role(s.step) is None}
    planned = converge_runs.planned_roles(answers)
    shown = {name: _converge_status(state_name, runs.get(name), name in busy,
                                    planned.get(name, []))
             for name, (state_name, _) in states.items()}
    if args.json:
        print(json.dumps({n: {"state": s, "reason": r, **shown[n]}
                          for n, (s, r) in states.items()}))
        return EXIT_OK
    for name, (state_name, reason) in states.items():
        said = _converge_words(shown[name], reason)
        print(f"{name:24s} {state_name}{': ' + reason if reason else ''}"
              + (f"  {said}" if said else ""))
    return EXIT_OK


def _converge_status(state: str, runs: converge_runs.NodeRuns | None, busy: bool,
                     planned: list[str]) -> dict[str, Any]:
    """What ``status`` says of a node's convergence: ``activity`` (``converging`` or
    ``waiting`` while readying, else its state) and ``converge`` (None when it has no Chef
    role and converged none): the roles converging now with their barclamps, the try and
    since when, its roles (planned, and any other its steps named; a ready node's are
    those it converged), those converged, its last run."""
    activity = converge_runs.activity(state, runs, busy)
    if runs is None and not planned:
        return {"activity": activity, "converge": None}
    runs = runs or converge_runs.NodeRuns()
    roles = list(runs.roles) if state == "ready" else [
        *planned, *(r for r in runs.roles if r not in planned)]
    return {"activity": activity, "converge": {**runs.as_json(), "roles": roles}}


def _converge_words(shown: dict[str, Any], reason: str | None) -> str:
    """:func:`_converge_status` in words, for the table."""
    converge = shown["converge"]
    if converge is None:
        return ""
    words = []
    if converge["converging"]:
        labels = ", ".join(converge_runs.role_label(r["role"]) for r in converge["converging"])
        attempt = f", try {converge['attempt']}" if converge["attempt"] > 1 else ""
        words.append(f"converging {labels} since {converge_runs.clock(converge['since'])}"
                     f"{attempt}")
    elif shown["activity"] == "waiting":
        words.append("waiting for other nodes' roles")
    if converge["roles_converged"] or shown["activity"] in ("converging", "waiting"):
        words.append(f"{len(converge['roles_converged'])} of {len(converge['roles'])} roles "
                     "converged")
    last = converge["last_run"]
    if last is not None:
        how = (f"success in {converge_runs.duration(last['elapsed'])}"
               if last["status"] == "success" else
               f"failed after {converge_runs.duration(last['elapsed'])}")
        words.append(f"last run {converge_runs.clock(last['started'])} "
                     f"({converge_runs.ago(last['started'])}): {how}"
                     + (f": {last['error']}" if last["error"] and last["error"] != reason
                        else ""))
    return "; ".join(words)


def _pause(args: argparse.Namespace) -> int:
    return _set_pause(args, True)


def _resume(args: argparse.Namespace) -> int:
    return _set_pause(args, False)


def _set_pause(args: argparse.Namespace, paused: bool) -> int:
    answers = load(args.answers)
    path = SitePaths(state_directory(answers, args)).journal
    who = set_pause(path, paused)
    if who is None:
        print(f"no apply is running for {answers.site.name} (journal {path})", file=sys.stderr)
        return EXIT_FAILED
    print(f"{'paused' if paused else 'resumed'} the apply of {answers.site.name} "
          f"(pid {who.get('pid', '?')}): " + ("steps under way finish, no new one starts"
                                              if paused else "steps start again"))
    return EXIT_OK
