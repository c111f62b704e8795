"""``crowbar-wizard node release`` and ``node reinstall``: take a node out, or install it anew.

Both act through the answers file and ``apply``, so what they do is journaled and resumes as
any apply does, and ``--dry-run`` shows it first. ``release`` takes the node out of the
answers (its node entry and every role it holds, after checking each role keeps the nodes it
needs), then applies them: the node is powered off through its BMC, its DHCP reservation and
boot files go, its Chef node and client are deleted, and it is ``released``.
``reinstall`` sends a deployed node back to a fresh install: its journal steps are dropped
(it is ``allocated`` again), and the apply power-cycles it into its installer, registers its
new Chef client key and converges its roles.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

from wizard.answers import Answers, check, from_document, load, save, to_data
from wizard.answers.addressing import node_addresses
from wizard.base.problems import AnswersError
from wizard.base.yamlfile import Document
from wizard.cli.apply import add_deploy_options, deploy, state_directory
from wizard.cli.exits import EXIT_INVALID
from wizard.engine.journal import Journal
from wizard.engine.paths import SitePaths
from wizard.engine.plan import REINSTALL


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    node = commands.add_parser(
        "node", help="release or reinstall one node of a deployed site",
        description="Change one node of the site ANSWERS deploys. Each command applies the "
        "answers file as `apply` does (with its options): every other change in it is "
        "applied too, and --dry-run shows them all first.", formatter_class=formatter)
    actions = node.add_subparsers(dest="action", metavar="ACTION", required=True)
    release = actions.add_parser(
        "release", help="take NODE out of the site: off, unreserved, out of Chef",
        description="Take NODE out of ANSWERS (its entry and the roles it holds) and apply: "
        "the node is powered off through its BMC, its DHCP reservation and boot files "
        "go, its Chef node and client are deleted, and it shows as 'released'. Nothing of "
        "another site is touched. A release that leaves a role with fewer nodes than it "
        "needs is refused (exit 2) unless --force: then only NODE is released, nothing is "
        "pushed to Chef, and ANSWERS needs another node for that role before the next "
        "apply. Exit 2 for an unknown node or the admin node, with nothing changed.",
        formatter_class=formatter)
    reinstall = actions.add_parser(
        "reinstall", help="install NODE afresh: new OS, new Chef client key, converged",
        description="Send NODE, deployed before, back to a fresh install and apply: it is "
        "power-cycled into its installer, registers a new Chef client key and converges "
        "its roles in run order; the rest of the site is left as it is. Exit 2 for an "
        "unknown node, the admin node, or one that was never deployed.",
        formatter_class=formatter)
    for parser in (release, reinstall):
        parser.add_argument("node", metavar="NODE", help="the node's name in ANSWERS")
        parser.add_argument("answers", type=Path, metavar="ANSWERS", help="the answers file")
        add_deploy_options(parser)
    release.add_argument("--force", action="store_true",
                         help="release NODE even if a role is left without the nodes it needs")
    release.set_defaults(handler=_release)
    reinstall.set_defaults(handler=_reinstall)


def _refused(message: str) -> int:
    print(f"node: {message}; nothing was changed", file=sys.stderr)
    return EXIT_INVALID


def _known(answers: Answers, name: str, path: Path) -> str | None:
    """Why ``name`` is no node these commands may act on, or None."""
    if name == answers.admin.hostname:
        return (f"{name} is the admin node of site {answers.site.name}: it runs the "
                f"deployment and cannot be released or reinstalled")
    if name not in {node.name for node in answers.nodes}:
        names = ", ".join(node.name for node in answers.nodes) or "none"
        return f"{path} (site {answers.site.name}) has no node {name!r}; its nodes: {names}"
    return None


def without(answers: Answers, name: str) -> dict[str, Any]:
    """The answers' data without node ``name``: its entry, and it in every role list.

    Addresses not pinned are handed out in node order, so the nodes after it would be
    renumbered (their DHCP reservations, their networks, all their roles converged again):
    each address that would move is pinned where it is."""
    data = copy.deepcopy(to_data(answers))
    data["nodes"] = [node for node in data.get("nodes", []) if node["name"] != name]
    for proposal in data.get("barclamps", {}).values():
        for role, holders in (proposal or {}).get("roles", {}).items():
            proposal["roles"][role] = [holder for holder in holders if holder != name]
    shrunk = _with(answers, data)
    if shrunk is None:
        return data
    before, after = node_addresses(answers), node_addresses(shrunk)
    for node in data["nodes"]:
        moved = {network: address for network, address in before[node["name"]].items()
                 if after[node["name"]].get(network) != address
                 and network != answers.bmc.network}  # the BMC's is its own, never handed out
        if moved:
            node["addresses"] = {**node.get("addresses", {}), **moved}
    return data


def _release(args: argparse.Namespace) -> int:
    answers = load(args.answers)
    why = _known(answers, args.node, args.answers)
    if why is not None:
        return _refused(why)
    data = without(answers, args.node)
    shrunk = _with(answers, data)
    if shrunk is None:  # without it the answers do not even parse: say so, change nothing
        return _refused(f"{args.answers} without {args.node} would not be valid answers")
    short = [f.message for f in check(shrunk)]
    if short and not args.force:
        return _refused(f"releasing {args.node} leaves " + "; ".join(short)
                        + " (give those roles another node first, or --force)")
    if args.dry_run:
        print(f"release {args.node}: take it out of {args.answers}, then:")
        return deploy(shrunk, args) if not short else deploy(answers, args,
                                                             releasing={args.node})
    if short:  # the answers without it would not render: release it alone, then save them
        status = deploy(answers, args, releasing={args.node})
        if status == 0:
            _save(answers, shrunk, args.answers)
            print(f"{args.answers} needs a node for: {'; '.join(short)}", file=sys.stderr)
        return status
    _save(answers, shrunk, args.answers)  # first: a re-run of apply finishes the release
    return deploy(load(args.answers), args)


def _with(answers: Answers, data: dict[str, Any]) -> Answers | None:
    """``data`` as answers, role counts left unchecked (None when they do not validate)."""
    source = answers._document
    try:
        return from_document(Document(data, "", source.file if source else "answers"),
                             complete=False)
    except AnswersError:
        return None


def _save(answers: Answers, shrunk: Answers, path: Path) -> None:
    """Write ``shrunk`` over ``answers``' file, keeping its comments and key order."""
    shrunk._document = answers._document
    save(shrunk, path)


def _reinstall(args: argparse.Namespace) -> int:
    answers = load(args.answers)
    why = _known(answers, args.node, args.answers)
    if why is not None:
        return _refused(why)
    path = SitePaths(state_directory(answers, args)).journal
    try:
        with Journal.open(path, lock=False) as journal:
            state = journal.state(args.node)
    except FileNotFoundError:
        state = None
    if state in (None, "discovered", "allocated", "released"):
        return _refused(f"{args.node} was never deployed ({state or 'not in the journal'}): "
                        f"`apply` deploys it")
    if args.dry_run:
        print(f"reinstall {args.node}: power-cycle it into a fresh install with a new Chef "
              f"client key, then converge its roles; besides:")
        return deploy(answers, args)

    def afresh(journal: Journal) -> None:
        journal.forget(args.node, state="allocated", reason=REINSTALL)
    return deploy(answers, args, prepare=afresh)
