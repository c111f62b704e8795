"""``crowbar-wizard network check``: a node's planned network, brought up on its real kernel."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wizard.answers import load
from wizard.cli.exits import EXIT_FAILED, EXIT_OK
from wizard.engine.orders import OrderError, check
from wizard.engine.paths import SitePaths

MARKS = {True: "ok", False: "WRONG", None: "note"}


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``network check`` to the ``crowbar-wizard`` parser."""
    network = commands.add_parser(
        "network", help="check a node's planned network on the node itself",
        description="The nodes' networks as planned in the answers file.",
        formatter_class=formatter)
    actions = network.add_subparsers(dest="action", metavar="ACTION", required=True)
    check_parser = actions.add_parser(
        "check", help="bring up NODE's planned network in its discovery image and compare",
        description="Ask NODE, while it waits in the discovery image, to bring up the "
        "network ANSWERS plans for it (its NICs by MAC, bonds in their teaming mode, tagged "
        "VLANs, its addresses, the default route: what its installer will configure) on its "
        "real kernel, and compare what the kernel made of it with the plan: cabling, bond "
        "partners and switch VLANs, verified before the install. The NIC it booted from "
        "keeps its DHCP address (it talks to the admin node over it). ANSWERS may be a "
        "draft that the provisioner does not serve yet: the check uses its plan. Needs the "
        "provisioner running ('pxe serve' or 'apply') for the same site. Exit 0 when "
        "everything matches, 1 otherwise.", formatter_class=formatter)
    check_parser.add_argument("answers", type=Path, metavar="ANSWERS", help="the answers file")
    check_parser.add_argument("node", metavar="NODE", help="the node, by its name in ANSWERS")
    check_parser.add_argument("--state", type=Path, metavar="DIR",
                              help="the state directory of the serving provisioner "
                              "(default: as for status)")
    check_parser.add_argument("--timeout", type=float, default=180, metavar="SECONDS",
                              help="how long to wait for the node's answer (default: 180)")
    check_parser.add_argument("--json", action="store_true", help="JSON output")
    check_parser.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    answers = load(args.answers)
    paths = SitePaths.of(answers, lab=False, state=args.state)
    try:
        outcome = check(answers, args.node, paths, timeout=args.timeout,
                        progress=lambda line: print(line, file=sys.stderr, flush=True))
    except OrderError as exc:
        print(f"network check: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps({"node": outcome.node, "mac": outcome.mac, "ok": outcome.ok,
                          "findings": [asdict(finding) for finding in outcome.findings]}))
    else:
        print(f"network check of {outcome.node} (booted from {outcome.mac}):")
        for finding in outcome.findings:
            planned = f"planned {finding.planned}, " if finding.planned else ""
            print(f"  {MARKS[finding.ok]:5s} {finding.subject}: {planned}found {finding.found}")
        wrong = sum(finding.ok is False for finding in outcome.findings)
        print("everything matches the plan" if outcome.ok else
              f"{wrong} point{'s' if wrong > 1 else ''} differ from the plan")
    return EXIT_OK if outcome.ok else EXIT_FAILED
