"""``crowbar-wizard``: the command line over the engine.

Exit codes: 0 success, 1 the command could not do its work, 2 invalid input (nothing done).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from wizard.answers import Answers, load, save, unresolved_secrets
from wizard.answers.budget import budget
from wizard.answers.examples import examples, summary
from wizard.answers.starter import starter_answers
from wizard.base import terminal
from wizard.base.problems import AnswersError, InputError
from wizard.base.yamlfile import write_atomic
from wizard.cli import apply as cli_apply
from wizard.cli import catalog as cli_catalog
from wizard.cli import discovered as cli_discovered
from wizard.cli import hardware as cli_hardware
from wizard.cli import media as cli_media
from wizard.cli import network as cli_network
from wizard.cli import node as cli_node
from wizard.cli import pxe as cli_pxe
from wizard.cli import ssh as cli_ssh
from wizard.cli import web as cli_web
from wizard.cli.exits import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK
from wizard.network import PlanError

SCHEMA_PATH = Path("answers/schema.json")

DESCRIPTION = """\
Crowbar Wizard takes racks of bare servers to a running OpenStack or Hadoop cluster:
plan the networks, discover the hardware, pick barclamps, then provision over IPMI,
PXE and Chef. Everything is kept in one answers file (YAML)."""

EPILOG = """\
examples:
  crowbar-wizard new --supernet 10.20.0.0/16 --nodes 500 -o answers/site.yaml
  crowbar-wizard validate answers/site.yaml
  crowbar-wizard example lab-small -o answers/lab.yaml
  crowbar-wizard plan answers/lab.yaml
  crowbar-wizard barclamps show nova
  crowbar-wizard allocate answers/site.yaml
  crowbar-wizard chef export answers/site.yaml chef-repo/
  crowbar-wizard lab up --nodes 20 && crowbar-wizard discover --lab
  CROWBAR_BMC_PASSWORD=... crowbar-wizard discover --range 10.20.24.0/22 --user root
  crowbar-wizard pxe render answers/site.yaml /srv/crowbar/pxe
  crowbar-wizard pxe serve answers/site.yaml /srv/crowbar/pxe

exit codes: 0 success, 1 could not do the work, 2 invalid input (nothing changed)"""


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="crowbar-wizard", description=DESCRIPTION, epilog=EPILOG, formatter_class=formatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check answers files; print every problem as FILE:LINE:COL",
        description="Check answers files. Each problem is printed on stderr as "
        "FILE:LINE:COL: field.path: message; types and structure are checked first, then the "
        "rules that span fields (ranges, addresses, duplicates) in every section that is "
        "well-formed. Secret references (env:NAME, file:PATH) that cannot be resolved on this "
        "machine are warnings. Exit 0 when every file is valid, 2 otherwise.",
        formatter_class=formatter,
    )
    validate.set_defaults(handler=_validate)
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.add_argument("-q", "--quiet", action="store_true", help="print problems only")

    plan = commands.add_parser(
        "plan", help="show the network plan and address budget of an answers file",
        description="Show each network (subnet, VLAN, conduit, router, ranges) and its "
        "address budget: host addresses, how many nodes need one, how many are spare.",
        formatter_class=formatter,
    )
    plan.set_defaults(handler=_plan)
    plan.add_argument("file", type=Path, metavar="FILE")

    new = commands.add_parser(
        "new", help="write a starting answers file with networks carved from one supernet",
        description="Write a valid starting answers file: Crowbar's networks (admin, bmc, "
        "bmc_vlan, storage, public, nova_fixed, nova_floating) carved from SUPERNET with room "
        "for N nodes. Secrets are written as references (env:/file:), never inline. Nodes "
        "are added later by discovery.",
        formatter_class=formatter,
    )
    new.set_defaults(handler=_new)
    new.add_argument("--supernet", required=True, metavar="CIDR",
                     help="block to carve every network from, e.g. 10.20.0.0/16")
    new.add_argument("--nodes", required=True, type=int, metavar="N",
                     help="how many nodes the plan must have room for")
    new.add_argument("-o", "--output", required=True, type=Path, metavar="FILE",
                     help="answers file to write")
    new.add_argument("--name", default="crowbar", help="site name (default: crowbar)")
    new.add_argument("--domain", default="crowbar.test",
                     help="DNS domain of the nodes (default: crowbar.test)")
    new.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    example = commands.add_parser(
        "example", help="list the example answers files, or copy one out to start from",
        description="The example answers files that ship with crowbar-wizard. Without NAME, "
        "list them; with NAME, print that example, or write it to FILE (-o) to edit and "
        "check with `crowbar-wizard validate`. lab-small deploys on the built-in lab as it "
        "is: `crowbar-wizard lab up --nodes 6`, then `crowbar-wizard apply FILE --lab`.",
        formatter_class=formatter,
    )
    example.set_defaults(handler=_example)
    example.add_argument("name", nargs="?", metavar="NAME",
                         help=f"the example: {', '.join(examples())}")
    example.add_argument("-o", "--output", type=Path, metavar="FILE",
                         help="write it to FILE (default: print it)")
    example.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    wizard = commands.add_parser(
        "wizard", help="the full-screen wizard (Textual)",
        description="Open the wizard on FILE; without one, on the newest answers file in "
        "answers/, else (or with --lab) on the lab's example (unsaved). Its steps: Welcome "
        "(new plan, open a file, the lab), network planning, hardware discovery, barclamps, "
        "review & save, "
        "deploy with live progress. `crowbar-wizard` alone opens it too.",
        formatter_class=formatter,
    )
    wizard.add_argument("file", type=Path, nargs="?", metavar="FILE",
                        help="an answers file to open")
    wizard.add_argument("--lab", action="store_true",
                        help="open the lab's example (unsaved: saving goes to answers/)")
    wizard.add_argument("--observe", action="store_true",
                        help="look only: never take control (another session edits)")
    wizard.add_argument("--web", action="store_true", help=argparse.SUPPRESS)
    wizard.set_defaults(handler=_wizard)

    schema = commands.add_parser(
        "schema", help="write the answers file's JSON Schema (for editors)",
        description="Write the JSON Schema of answers files, generated from the model.",
    )
    schema.set_defaults(handler=_schema)
    schema.add_argument("-o", "--output", type=Path, default=SCHEMA_PATH, metavar="FILE",
                        help=f"where to write it, '-' for stdout (default: {SCHEMA_PATH})")
    cli_catalog.add_commands(commands, formatter)
    cli_hardware.add_commands(commands, formatter)
    cli_pxe.add_commands(commands, formatter)
    cli_media.add_commands(commands, formatter)
    cli_network.add_commands(commands, formatter)
    cli_discovered.add_commands(commands, formatter)
    cli_apply.add_commands(commands, formatter)
    cli_node.add_commands(commands, formatter)
    cli_ssh.add_commands(commands, formatter)
    cli_web.add_commands(commands, formatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            parser.print_help()  # no terminal for the wizard
            return EXIT_OK
        args.handler, args.file = _wizard, None
    try:
        status: int = args.handler(args)
        return status
    except InputError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        # The reader left (`... | head`): end quietly, with the status of a tool that
        # SIGPIPE ended (as cat or grep), and nothing more for the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"crowbar-wizard: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _validate(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.files:
        try:
            answers = load(path)
        except AnswersError as exc:
            print(exc, file=sys.stderr)
            status = EXIT_INVALID
            continue
        if not args.quiet:
            print(f"{path}: valid ({_summary(answers)})")
        for finding in unresolved_secrets(answers):
            lab = "; `apply --lab` makes one up" if finding.loc[0] == "barclamps" else ""
            warning = f"warning: {finding.message} (needed to deploy{lab})"
            print(answers.problem(finding.loc, warning), file=sys.stderr)
    return status


def _summary(answers: Answers) -> str:
    return (
        f"{len(answers.nodes)} nodes, {len(answers.networks)} networks, "
        f"{len(answers.barclamps)} barclamps"
    )


def _plan(args: argparse.Namespace) -> int:
    answers = load(args.file)
    console = terminal.console()
    console.print(f"[b]{answers.site.name}[/b] ({answers.site.domain}): {_summary(answers)}")
    networks = Table(title="Networks", title_justify="left")
    for column in ("network", "subnet", "vlan", "conduit", "router", "ranges"):
        networks.add_column(column)
    for name, net in answers.networks.items():
        cidr = net.cidr()
        vlan = f"{net.vlan} tagged" if net.use_vlan else (f"{net.vlan} native" if net.vlan else "-")
        router = f"{net.router} (pref {net.router_pref})" if net.router else "-"
        ranges = "\n".join(f"{key}: {text}" for key, text in net.ranges.items()) or "-"
        networks.add_row(name, f"{cidr}\nmask {cidr.netmask}\nbcast {cidr.broadcast}",
                         vlan, net.conduit, router, ranges)
    console.print(networks)
    table = Table(title="Address budget", title_justify="left")
    for column in ("network", "usable", "in ranges", "host range", "nodes", "spare"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for row in budget(answers):
        spare = "-" if not row.needed and not row.host_range else f"{row.spare:,}"
        table.add_row(row.name, f"{row.usable:,}", f"{sum(row.in_ranges.values()):,}",
                      f"{row.host_range:,}", f"{row.needed:,}", spare)
    console.print(table)
    return EXIT_OK


def _new(args: argparse.Namespace) -> int:
    if args.output.exists() and not args.force:
        print(f"{args.output} exists; pass --force to overwrite it", file=sys.stderr)
        return EXIT_FAILED
    try:
        answers = starter_answers(args.supernet, args.nodes, name=args.name, domain=args.domain)
    except PlanError as exc:
        print(f"cannot plan: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except ValueError as exc:  # a bad --name or --domain
        print(f"invalid option: {exc}", file=sys.stderr)
        return EXIT_INVALID
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save(answers, args.output, header=(
        "Crowbar Wizard answers file, written by `crowbar-wizard new`.\n"
        "Check it with `crowbar-wizard validate`; schema: answers/schema.json\n"
        "Secrets are references: env:NAME reads a variable, file:PATH a file."
    ))
    load(args.output)  # what was written must read back valid
    print(f"wrote {args.output}: networks for {args.nodes} nodes from {args.supernet}")
    return EXIT_OK


def _example(args: argparse.Namespace) -> int:
    shipped = examples()
    if args.name is None:
        width = max(map(len, shipped))
        for name, path in shipped.items():
            print(f"{name:<{width}}  {summary(path)}")
        return EXIT_OK
    if args.name not in shipped:
        print(f"crowbar-wizard example: no example {args.name!r} "
              f"(the examples: {', '.join(shipped)})", file=sys.stderr)
        return EXIT_INVALID
    text = shipped[args.name].read_text(encoding="utf-8")
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    if args.output.exists() and not args.force:
        print(f"{args.output} exists; pass --force to overwrite it", file=sys.stderr)
        return EXIT_FAILED
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.output, text, mode=0o644)
    print(f"wrote {args.output}: the {args.name} example")
    return EXIT_OK


NO_MOUSE = ("linux", "vt100", "vt102", "vt220", "dumb")
"""Terminals that do not report the mouse: the wizard is driven by keys there."""


NO_TERMINAL = ("crowbar-wizard: the wizard needs a terminal: run it at one, over ssh -t, or "
               "use serve-web / the headless commands")


def _wizard(args: argparse.Namespace) -> int:
    from wizard.tui.app import WizardApp, starting_answers  # Textual: only the wizard pays

    lab = getattr(args, "lab", False)
    if lab and args.file is not None:
        print("crowbar-wizard wizard: FILE or --lab, not both", file=sys.stderr)
        return EXIT_INVALID
    web = getattr(args, "web", False)  # serve-web: textual-serve's driver, no terminal
    if not web and not all(stream.isatty() for stream in (sys.stdin, sys.stdout, sys.stderr)):
        # Textual would draw escape codes into a file or pipe, reading keys from nowhere
        print(NO_TERMINAL, file=sys.stderr)
        return EXIT_FAILED
    path, answers, saved = starting_answers(args.file, lab=lab)
    app = WizardApp(path, answers, saved=saved, kind="web" if web else "terminal",
                    observe_only=getattr(args, "observe", False))
    app.run(mouse=os.environ.get("TERM", "") not in NO_MOUSE)
    return EXIT_OK


def schema_text() -> str:
    """The answers JSON Schema, as committed in ``answers/schema.json``."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Crowbar Wizard answers file",
        **{k: v for k, v in Answers.model_json_schema().items() if k != "title"},
    }
    return json.dumps(schema, indent=2) + "\n"


def _schema(args: argparse.Namespace) -> int:
    text = schema_text()
    if str(args.output) == "-":
        sys.stdout.write(text)
        return EXIT_OK
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.output, text, mode=0o644)
    print(f"wrote {args.output}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
