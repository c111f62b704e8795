"""Commands over the barclamp catalog: ``barclamps``, ``allocate`` and ``chef export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wizard.answers import check, load, save
from wizard.answers.proposals import AllocationError, allocate
from wizard.base import terminal
from wizard.base.secrets import SecretError
from wizard.catalog import CORE_GROUP, Catalog, default_catalog, format_number
from wizard.chef.cookbooks import site_cookbooks
from wizard.chef.objects import ExportError, export_repo, render
from wizard.cli import chef as cli_chef
from wizard.cli.exits import EXIT_FAILED, EXIT_INVALID, EXIT_OK


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``barclamps``, ``allocate`` and ``chef`` to the ``crowbar-wizard`` parser."""
    barclamps = commands.add_parser(
        "barclamps", help="list the barclamp catalog, or show one barclamp",
        description="List every barclamp (category, run order, requires, roles), or with "
        "'show NAME' one barclamp's roles, placement rules and attributes.",
        formatter_class=formatter,
    )
    barclamps.set_defaults(handler=_list)
    actions = barclamps.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("show", help="one barclamp in full")
    show.add_argument("name", metavar="NAME")
    show.set_defaults(handler=_show)

    allocate_cmd = commands.add_parser(
        "allocate", help="select required barclamps and place every unassigned role",
        description="Add every barclamp the selected ones require, and place each role that "
        "has no nodes yet: admin-only roles on the admin node, controller roles spread over "
        "the nodes meant as controllers, computes on the virtualization-capable nodes with "
        "most memory, storage roles on the nodes with most disks. Roles that already have "
        "nodes keep them. Prints one line per placement with its reason. Writes ANSWERS in "
        "place (comments kept) unless -o is given.",
        formatter_class=formatter,
    )
    allocate_cmd.set_defaults(handler=_allocate)
    allocate_cmd.add_argument("answers", type=Path, metavar="ANSWERS")
    allocate_cmd.add_argument("-o", "--output", type=Path, metavar="OUT",
                              help="write the result here instead of over ANSWERS")

    chef = commands.add_parser(
        "chef", help="Chef objects of a deployment: export them, or push them to a server",
        description="Render the Chef objects (environment, roles, data bag items, nodes) an "
        "answers file produces: write them as a chef-repo (export) or upload them (push).",
        formatter_class=formatter,
    )
    chef_actions = chef.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = chef_actions.add_parser(
        "export", help="write a knife-compatible chef-repo",
        description="Write environments/, roles/, data_bags/crowbar/ and nodes/ as JSON into "
        "DIR, all at once (a failure leaves an earlier export as it was). Secret references "
        "are resolved; files holding a secret are mode 0600. DIR must be new, empty or an "
        "earlier export: files of the earlier export that are no longer produced are removed "
        "and listed; anything else in DIR is refused, unless --force.",
    )
    export.add_argument("answers", type=Path, metavar="ANSWERS")
    export.add_argument("directory", type=Path, metavar="DIR")
    export.add_argument("--force", action="store_true",
                        help="also remove, and list, what no export wrote in DIR")
    export.set_defaults(handler=_export)
    cli_chef.add_push(chef_actions, formatter)


def _requires(catalog: Catalog, name: str) -> str:
    return ", ".join(catalog[name].requires).replace(CORE_GROUP, "core") or "-"


def _list(args: argparse.Namespace) -> int:
    catalog = default_catalog()
    table = Table(title=f"Barclamps ({len(list(catalog))})", title_justify="left")
    for column in ("barclamp", "category", "order", "requires", "roles"):
        table.add_column(column)
    for name in sorted(catalog, key=lambda n: (catalog[n].run_order, n)):
        barclamp = catalog[name]
        table.add_row(name, barclamp.category + (" (optional)" if barclamp.optional else ""),
                      str(barclamp.run_order), _requires(catalog, name),
                      ", ".join(role.name for role in barclamp.roles))
    terminal.console().print(table)
    return EXIT_OK


def _placement(role: Any) -> str:
    if role.all_nodes:
        return "every node"
    if role.admin == "only":
        return "admin node only"
    low, high = role.min_nodes, role.max_nodes
    if high is None:
        where = f"{low} or more" if low else "any number"
    else:
        where = f"{low} to {high}" if low else f"up to {high}"
    return where + ("; admin node allowed" if role.admin == "allowed" else "")


def _show(args: argparse.Namespace) -> int:
    catalog = default_catalog()
    if args.name not in catalog:
        print(f"unknown barclamp {args.name!r}; `crowbar-wizard barclamps` lists them",
              file=sys.stderr)
        return EXIT_INVALID
    barclamp = catalog[args.name]
    console = terminal.console()
    console.print(f"[b]{barclamp.display_name}[/b] ({barclamp.name}, {barclamp.category}, "
                  f"run order {barclamp.run_order})")
    console.print(escape(barclamp.description))
    closure = catalog.apply_order(catalog.closure([args.name]))
    console.print(f"requires: {_requires(catalog, args.name)}; selecting it applies, in "
                  f"order: {', '.join(closure)}")
    roles = Table(title="Roles", title_justify="left")
    for column in ("role", "nodes", "meant for", "needs", "conflicts", "run list"):
        roles.add_column(column)
    for role in barclamp.roles:
        hints = role.hints
        needs = [text for ok, text in (
            (hints.virtualization, "virtualization"),
            (hints.min_disks, f"{hints.min_disks}+ disks"),
            (hints.min_memory_gb, f"{hints.min_memory_gb}+ GB"),
            (hints.min_cpu_cores, f"{hints.min_cpu_cores}+ cores")) if ok]
        roles.add_row(role.name, _placement(role), ", ".join(role.intended) or "-",
                      ", ".join(needs) or "-", ", ".join(role.conflicts) or "-",
                      escape("\n".join(role.run_list) or f"(no Chef: {role.outside_chef})"))
    console.print(roles)
    _print_cookbooks(console, catalog, args.name)
    if barclamp.attributes:
        attributes = Table(title="Attributes", title_justify="left")
        for column in ("attribute", "type", "default", "help"):
            attributes.add_column(column)
        for key, attr in barclamp.attributes.items():
            kind = attr.type + (f" ({', '.join(map(str, attr.enum))})" if attr.enum else "")
            if attr.format:
                kind += f" of {attr.format}" if attr.type == "list" else f": {attr.format}"
            if attr.min is not None or attr.max is not None:
                kind += f" [{_bound(attr.min)}..{_bound(attr.max)}]"
            default = "required" if attr.required else repr(attr.default)
            attributes.add_row(key, escape(kind), escape(default), escape(attr.help))
        console.print(attributes)
    return EXIT_OK


def _print_cookbooks(console: Console, catalog: Catalog, name: str) -> None:
    """The Chef content behind the run lists: shipped with the barclamp, or upstream."""
    cookbooks = Table(title="Chef cookbooks", title_justify="left")
    for column in ("cookbook", "version", "from", "recipes"):
        cookbooks.add_column(column)
    for shipped in catalog.entries[name].cookbooks:
        cookbooks.add_row(shipped.name, shipped.metadata.version,
                          f"shipped: {shipped.directory.parent.parent.name}/cookbooks",
                          ", ".join(sorted(shipped.recipes)))
    for up in catalog[name].upstream_cookbooks:
        source = f"{up.git} {up.ref or ''}".strip() if up.git else "Chef Supermarket"
        cookbooks.add_row(up.name, escape(up.version), escape(source),
                          escape(", ".join(up.recipes) or f"(pinned: {up.why})"))
    if cookbooks.row_count:
        console.print(cookbooks)


def _bound(value: float | None) -> str:
    return "" if value is None else format_number(value)


def _allocate(args: argparse.Namespace) -> int:
    answers = load(args.answers, complete=False)
    try:
        result, placements = allocate(answers, default_catalog())
    except AllocationError as exc:
        for reason in exc.reasons:
            print(f"cannot place: {reason}", file=sys.stderr)
        return EXIT_FAILED
    findings = check(result, complete=False)
    if findings:
        for finding in findings:
            print(result.problem(finding.loc, finding.message), file=sys.stderr)
        return EXIT_FAILED
    for placement in placements:
        print(placement)
    output = args.output or args.answers
    save(result, output)
    added = sorted(set(result.barclamps) - set(answers.barclamps))
    print(f"wrote {output}: {len(placements)} placements"
          + (f"; added barclamps {', '.join(added)}" if added else ""))
    # what allocation does not do: required attributes (secrets) are the operator's
    for finding in check(result):
        print(result.problem(finding.loc, f"still to set: {finding.message}"), file=sys.stderr)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    answers = load(args.answers)
    catalog = default_catalog()
    try:
        objects = render(answers, catalog, site_cookbooks(catalog, answers.barclamps))
        result = export_repo(objects, args.directory, force=args.force)
    except (SecretError, ExportError) as exc:
        print(f"cannot export: {exc}", file=sys.stderr)
        return EXIT_FAILED
    items = sum(len(items) for items in objects.data_bags.values())
    print(f"wrote {result.files} files to {args.directory}: 1 environment, "
          f"{len(objects.roles)} roles, {items} data bag items, {len(objects.nodes)} nodes, "
          f"{len(objects.cookbooks)} cookbooks")
    if objects.upstream:
        print(f"Berksfile pins {len(objects.upstream)} upstream cookbooks: on a machine with "
              f"internet, berks vendor DIR there, then chef push {args.answers} --cookbooks DIR")
    for why, paths in (("no crowbar-wizard export wrote it (--force)", result.foreign),
                       ("the earlier export's, no longer produced", result.stale)):
        for path in paths:
            print(f"removed {path}: {why}")
    return EXIT_OK
