"""``crowbar-wizard chef push``: upload a deployment's Chef objects to a Chef server."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from wizard.answers import Answers, load
from wizard.base.secrets import SecretError, read_secret_file
from wizard.catalog import default_catalog
from wizard.chef.api import ChefError, ChefServer
from wizard.chef.cookbooks import Cookbook, site_cookbooks, vendored
from wizard.chef.objects import render
from wizard.chef.push import PushError, PushReport, push, targets
from wizard.chef.signing import SIGN_VERSIONS, ChefKeyError
from wizard.cli.exits import EXIT_FAILED, EXIT_INVALID, EXIT_OK
from wizard.cli.lab import add_lab_option, cabled
from wizard.lab.control import LabError


def add_push(actions: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``push`` under ``crowbar-wizard chef``."""
    cmd = actions.add_parser(
        "push", help="upload the deployment's Chef objects to the Chef server",
        description="Create or update, on the Chef server, the environment, roles, data bag "
        "items and nodes the answers file produces (as 'chef export' writes them), many at "
        "once over one pooled connection. First it uploads the cookbooks the answers' "
        "barclamps ship (barclamps/<name>/cookbooks/<cookbook>/) and any given with "
        "--cookbooks, through the server's cookbook API, and pins each in the environment "
        "to the version its metadata names. A cookbook version the server already holds "
        "with the same files is left alone; one it holds with other files is refused, "
        "naming them, unless --force. Prints how many were created, updated and left "
        "unchanged; a second push of the same answers changes nothing. The server, client and "
        "key come from the answers' chef section unless given here, or from the lab with "
        "--lab (its goiardi, as its admin). Connection errors and "
        "server errors (5xx) are retried with backoff; an authentication failure stops at "
        "once. Exit 0 when everything is on the server, 1 otherwise (what was and was not "
        "pushed is listed), 2 for invalid answers or an unreadable cookbook (its file and line "
        "named).", formatter_class=formatter,
    )
    cmd.add_argument("answers", type=Path, metavar="ANSWERS", help="the answers file")
    add_lab_option(cmd, "push to the lab's Chef server, as its admin, what apply --lab would")
    cmd.add_argument("--server", metavar="URL", help="Chef server URL (default: chef.server_url)")
    cmd.add_argument("--client", metavar="NAME", help="API client (default: chef.client_name)")
    cmd.add_argument("--key", type=Path, metavar="FILE",
                     help="the client's private key, PEM (default: chef.key)")
    cmd.add_argument("--organization", metavar="ORG",
                     help="Chef Infra Server organization (default: chef.organization)")
    cmd.add_argument("--sign-version", choices=SIGN_VERSIONS, default="1.3",
                     help="request signing: 1.3 (SHA-256, default) or 1.0 for older servers")
    cmd.add_argument("--concurrency", type=int, default=8, metavar="N",
                     help="requests in flight at once (default: 8)")
    cmd.add_argument("--cookbooks", type=Path, metavar="DIR",
                     help="also upload (and pin) the cookbooks in DIR, one directory each "
                     "with its metadata.rb or metadata.json, as 'berks vendor DIR' writes "
                     "them (default: the answers' chef.cookbooks_path, which apply uploads "
                     "too)")
    cmd.add_argument("--force", action="store_true",
                     help="replace a cookbook version the server holds with other files "
                     "(nodes pinned to it get the new files under the same version)")
    cmd.add_argument("--prune", action="store_true",
                     help="also delete objects an earlier push made for this site that the "
                     "answers no longer produce (only those carrying crowbar-wizard's marker)")
    cmd.set_defaults(handler=_push)


def _connection(args: argparse.Namespace, answers: Answers) -> ChefServer:
    chef = answers.chef
    url = args.server or chef.server_url
    client = args.client or chef.client_name
    if not url or not client:
        raise ValueError("no Chef server: give --server and --client, or set chef.server_url "
                         "and chef.client_name")
    if args.key is not None:
        pem = read_secret_file(args.key)
    elif chef.key is not None:
        pem = chef.key.reveal()
    else:
        raise ValueError("no client key: give --key FILE or set chef.key")
    return ChefServer(url, client, pem, organization=args.organization or chef.organization,
                      sign_version=args.sign_version, max_connections=args.concurrency)


def _push(args: argparse.Namespace) -> int:
    answers = load(args.answers)
    if args.concurrency < 1:
        print("--concurrency must be at least 1", file=sys.stderr)
        return EXIT_INVALID
    if args.lab:
        try:
            answers = cabled(answers, chef=True)
        except LabError as exc:
            print(f"chef push --lab: {exc}", file=sys.stderr)
            return EXIT_FAILED
    catalog = default_catalog()
    # a CookbookError is invalid input, as a broken answers file is: exit 2, file and line
    cookbooks = site_cookbooks(catalog, answers.barclamps, args.cookbooks or vendored(answers))
    try:
        objects = render(answers, catalog, cookbooks)
        server = _connection(args, answers)
    except (SecretError, ChefKeyError, ChefError, ValueError) as exc:
        print(f"cannot push: {exc}", file=sys.stderr)
        return EXIT_FAILED
    total = len(targets(objects, answers.site.name)) - len(cookbooks)
    what = f"{len(cookbooks)} cookbooks and {total} objects" if cookbooks else \
        f"{total} objects"
    print(f"pushing {what} to {server.base}{server.prefix} as {server.client_name}",
          flush=True)

    async def run() -> PushReport:
        async with server:
            return await push(server, objects, answers.site.name, concurrency=args.concurrency,
                              prune=args.prune, force=args.force)
    try:
        report = asyncio.run(run())
    except PushError as exc:
        _print_report(exc.report, objects.cookbooks)
        print(f"push failed: {exc}", file=sys.stderr)
        _print_missing(exc.report)
        return EXIT_FAILED
    _print_report(report, objects.cookbooks)
    if not report.changed:
        print(f"nothing changed: all {what} were already on the server")
    return EXIT_OK


def _print_missing(report: PushReport, shown: int = 10) -> None:
    """What is not on the server: each failure with its reason, the untried by kind."""
    for label, reason in sorted(report.failed.items())[:shown]:
        print(f"  not pushed: {label}: {reason}", file=sys.stderr)
    if len(report.failed) > shown:
        print(f"  ... and {len(report.failed) - shown} more not pushed", file=sys.stderr)
    if report.skipped:
        kinds = Counter(label.rsplit(" ", 1)[0] for label in report.skipped)
        print(f"  not tried: {len(report.skipped)} objects ("
              + ", ".join(f"{n} {kind}" for kind, n in kinds.items()) + ")", file=sys.stderr)


def _print_report(report: PushReport, cookbooks: dict[str, Cookbook]) -> None:
    """A line of counts for the cookbooks (when there are any), one per cookbook that
    changed, and a line of counts for the other objects."""
    labels = {f"cookbook {name}": cookbook for name, cookbook in cookbooks.items()}
    uploaded: Counter[str] = Counter(o for label, o in report.outcomes.items()
                                     if label in labels)
    pushed: Counter[str] = Counter(o for label, o in report.outcomes.items()
                                   if label not in labels)
    if cookbooks:
        print("cookbooks: " + _counts(uploaded))
    for label, cookbook in labels.items():
        if report.outcomes.get(label) in ("created", "updated"):
            print(f"  {report.outcomes[label]} {label} {cookbook.version}")
    print(_counts(pushed) + (f", {len(report.pruned)} pruned" if report.pruned else ""))
    for label in report.pruned:
        print(f"  pruned {label}")


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{counts[o]} {o}" for o in ("created", "updated", "unchanged"))
