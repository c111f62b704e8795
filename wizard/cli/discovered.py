"""``crowbar-wizard discovered poweroff``: orders for machines waiting in the discovery image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from wizard.answers import load
from wizard.cli.exits import EXIT_FAILED, EXIT_OK
from wizard.engine.orders import OrderError, power_off
from wizard.engine.paths import SitePaths


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``discovered poweroff`` to the ``crowbar-wizard`` parser."""
    discovered = commands.add_parser(
        "discovered", help="orders for machines waiting in the discovery image",
        description="Machines that PXE-booted the discovery image post their inventory and "
        "wait for orders: reboot (into the installer, once the served answers make them "
        "nodes), a network check ('network check'), or power off.",
        formatter_class=formatter)
    actions = discovered.add_subparsers(dest="action", metavar="ACTION", required=True)
    poweroff = actions.add_parser(
        "poweroff", help="power a discovered machine off through its discovery image",
        description="Tell MACHINE (its discovered name, d52-54-00-..., or one of its MACs) "
        "to power off: its image does when it next asks for orders (every 10 s). For "
        "machines without a BMC the wizard knows. Needs the provisioner running ('pxe "
        "serve' or 'apply') for ANSWERS' site. Exit 0 once the order is handed out.",
        formatter_class=formatter)
    poweroff.add_argument("answers", type=Path, metavar="ANSWERS", help="the answers file")
    poweroff.add_argument("machine", metavar="MACHINE", help="discovered name or MAC")
    poweroff.add_argument("--state", type=Path, metavar="DIR",
                          help="the serving provisioner's state directory (default: as for "
                          "status)")
    poweroff.add_argument("--timeout", type=float, default=60, metavar="SECONDS",
                          help="how long to wait for the machine to ask (default: 60)")
    poweroff.set_defaults(handler=_poweroff)


def _poweroff(args: argparse.Namespace) -> int:
    answers = load(args.answers)
    paths = SitePaths.of(answers, lab=False, state=args.state)
    try:
        mac = power_off(paths.journal, paths.orders, args.machine, timeout=args.timeout)
    except OrderError as exc:
        print(f"discovered poweroff: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.machine}: told to power off (through {mac})")
    return EXIT_OK
