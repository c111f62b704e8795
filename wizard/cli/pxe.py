"""``crowbar-wizard pxe``: render, check and serve what the admin node PXE-boots nodes with."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from wizard.answers import Answers, load
from wizard.base.escaping import EscapeError, dnsmasq_value
from wizard.base.ownedfs import real_dir
from wizard.base.problems import InputError
from wizard.base.secrets import SecretError
from wizard.base.yamlfile import write_atomic
from wizard.catalog import default_catalog
from wizard.chef.starters import admin_ssh_key, existing_admin_ssh_key
from wizard.cli.exits import EXIT_FAILED, EXIT_INVALID, EXIT_OK
from wizard.engine.journal import Journal, JournalError, JournalLocked
from wizard.engine.journal_states import JournalStates
from wizard.engine.orders import JournalOrders
from wizard.engine.paths import SitePaths
from wizard.provisioning.dnsmasq import Dnsmasq, DnsmasqError, find_dnsmasq
from wizard.provisioning.media.build import MISSING_HINT, installed
from wizard.provisioning.preflight import PROBE_TIMEOUT, PreflightError, run_preflight
from wizard.provisioning.site import ProvisionerSite
from wizard.provisioning.state import StoreError
from wizard.provisioning.tree import (
    RenderSummary,
    TreeError,
    dnsmasq_files,
    prepare,
    render_tree,
    token_key,
)

log = logging.getLogger("wizard.pxe")
DNSMASQ_CHECK = 0.5
"""Seconds between checks that the dnsmasq ``pxe serve`` runs is still alive."""
EXIT_INTERRUPTED = 130
DIR_HELP = "the provisioner's directory, e.g. /srv/crowbar/pxe (new, empty or an earlier render)"


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``pxe render|preflight|serve`` to the ``crowbar-wizard`` parser."""
    pxe = commands.add_parser(
        "pxe", help="DHCP, TFTP and HTTP boot for the nodes (dnsmasq + provisioner)",
        description="Render and serve what nodes PXE-boot from: dnsmasq's DHCP/TFTP config "
        "with a reservation per node, iPXE and pxelinux boot scripts, the OS installer's "
        "answer files, and the provisioner's HTTP service.", formatter_class=formatter,
    )
    actions = pxe.add_subparsers(dest="action", metavar="ACTION", required=True)

    render = actions.add_parser(
        "render", help="write the whole PXE tree into DIR",
        description="Write into DIR: dnsmasq/dnsmasq.conf and hosts/nodes (checked with "
        "'dnsmasq --test' first; the previous ones kept as .last-good), tftp/ with the boot "
        "loaders and pxelinux.cfg/, http/boot/<mac>.ipxe and http/install/<node>.<file> answer "
        "files (0600). The OS installer's kernel and initrd go in DIR/media/<os>/ (linux, "
        "initrd: yours to provide); the discovery image in DIR/media/discovery/ ('crowbar-wizard "
        "media build DIR' makes it). DIR must be new, empty or an earlier render.",
        formatter_class=formatter,
    )
    render.set_defaults(handler=_render)
    render.add_argument("answers", type=Path, metavar="ANSWERS", help="the answers file")
    render.add_argument("directory", type=absolute, metavar="DIR", help=DIR_HELP)

    preflight = actions.add_parser(
        "preflight", help="check the admin network before serving DHCP",
        description="Check that the admin address is on the admin interface, that the "
        "DHCP (67), TFTP (69) and HTTP ports are free, and that no other DHCP server "
        "answers on the admin network (a DHCPDISCOVER is sent and offers collected). With "
        "a Chef server (chef.server_url), also check that the package mirror lists the "
        "chef package the installers install, in the indexes the installed OS reads (a "
        "mirror on this admin node's own provisioner address is not asked: it starts "
        "after the preflight). Needs root. Exit 0 when serving is safe, 1 otherwise.",
        formatter_class=formatter,
    )
    preflight.set_defaults(handler=_preflight)
    preflight.add_argument("answers", type=Path, metavar="ANSWERS", help="the answers file")
    preflight.add_argument("directory", type=absolute, metavar="DIR", nargs="?",
                           help="the provisioner's directory: also check that it has the "
                           "discovery image (a warning, not a refusal)")
    preflight_options(preflight)

    serve = actions.add_parser(
        "serve", help="preflight, then run dnsmasq and the provisioner HTTP service",
        description="Render DIR (as 'pxe render'), run the preflight checks, start dnsmasq "
        "on the admin interface and serve the provisioner over HTTP on the admin address "
        "until stopped. Ctrl-C (exit 130) or SIGTERM (exit 0) stops dnsmasq too, and "
        "dnsmasq never outlives it, even when it is killed. SIGHUP does not stop it: it "
        "re-reads ANSWERS (a config dnsmasq refuses is reported and the running one kept). "
        "A dnsmasq that fails at start or dies while serving stops it, with dnsmasq's "
        "reason (exit 1). Node states, install claims and discovered machines go to the "
        "site's journal, as apply's do ('status ANSWERS' lists them; see status --help for "
        "where it lives); while an apply holds it, pxe serve does not start (exit 1). What "
        "an earlier version kept in DIR/state.db or DIR/state.json is taken into the journal "
        "on the first start and the file renamed *.imported.",
        formatter_class=formatter,
    )
    serve.set_defaults(handler=_serve)
    serve.add_argument("answers", type=Path, metavar="ANSWERS", help="the answers file")
    serve.add_argument("directory", type=absolute, metavar="DIR", help=DIR_HELP)
    serve.add_argument("--state", type=Path, metavar="DIR",
                       help="the state directory, with the journal (default: per site, as "
                       "apply's and status's)")
    preflight_options(serve)


def absolute(text: str) -> Path:
    """DIR as an absolute path (not resolved: DIR may be a link): dnsmasq, which gets its
    paths, runs from another working directory."""
    return Path(text).absolute()


def preflight_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-foreign-dhcp", action="store_true",
                        help="serve even when another DHCP server answers on the admin network")
    parser.add_argument("--probe-timeout", type=float, default=PROBE_TIMEOUT, metavar="SECONDS",
                        help="how long to listen for other DHCP servers (default: "
                        f"{PROBE_TIMEOUT:g}; dnsmasq waits 3 s before its first offer)")


def _site(answers: Answers, directory: Path, admin_key: str | None) -> ProvisionerSite:
    return ProvisionerSite(answers, default_catalog(), token_key(directory),
                           admin_ssh_key=admin_key)


def _write(answers: Answers, directory: Path, dnsmasq: Dnsmasq | None,
           admin_key: str | None) -> tuple[ProvisionerSite, RenderSummary]:
    """Render the PXE tree; ``admin_key``: the admin node's SSH key line the installers put
    on every node, as apply does (see :func:`wizard.chef.starters.admin_ssh_key`)."""
    dnsmasq_value(directory)  # its paths go into dnsmasq's config: check it first
    prepare(directory)
    site = _site(answers, directory, admin_key)
    summary = render_tree(site, directory)
    if dnsmasq is not None:
        dnsmasq.install(*dnsmasq_files(site, directory))
    else:
        config, hosts = dnsmasq_files(site, directory)
        real_dir(directory / "dnsmasq" / "hosts", directory)
        write_atomic(directory / "dnsmasq" / "dnsmasq.conf", config, mode=0o644)
        write_atomic(directory / "dnsmasq" / "hosts" / "nodes", hosts, mode=0o644)
    return site, summary


def _report(summary: RenderSummary, directory: Path, checked: bool,
            site: ProvisionerSite) -> None:
    print(f"wrote {summary.files} files for {summary.nodes} nodes to {directory}")
    note = discovery_image_note(site, directory)
    if note:
        print(f"warning: {note}", file=sys.stderr)
    verdict = "accepted by dnsmasq --test" if checked else "NOT checked: dnsmasq is not installed"
    print(f"dnsmasq config: {directory / 'dnsmasq' / 'dnsmasq.conf'} ({verdict})")
    if summary.loaders:
        print(f"boot loaders in tftp/: {', '.join(summary.loaders)}")
    for missing in summary.missing_loaders:
        print(f"warning: boot loader missing: {missing}", file=sys.stderr)


def _render(args: argparse.Namespace) -> int:
    answers = load(args.answers)
    dnsmasq = Dnsmasq(args.directory / "dnsmasq") if find_dnsmasq() else None
    try:
        # a preview: the admin node's key if apply or serve made it, none made here
        site, summary = _write(answers, args.directory, dnsmasq, existing_admin_ssh_key(
            SitePaths.of(answers, lab=False).directory))
    except EscapeError as exc:
        print(f"cannot render: DIR: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (TreeError, DnsmasqError, SecretError, OSError) as exc:
        print(f"cannot render: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _report(summary, args.directory, dnsmasq is not None, site)
    return EXIT_OK


def discovery_image_note(site: ProvisionerSite, directory: Path) -> str | None:
    """What to say when PXE discovery is on and DIR has no discovery image to boot."""
    if not site.discovery or installed(directory) is not None:
        return None
    return (f"no discovery image in {directory / 'media' / 'discovery'}: unknown machines "
            "that PXE-boot cannot be discovered (they retry every 30 s); "
            + MISSING_HINT.format(directory=directory))


def run_preflight_checks(answers: Answers, args: argparse.Namespace) -> bool:
    site = ProvisionerSite(answers, default_catalog(), b"")
    provisioning = answers.provisioning
    try:
        report = run_preflight(answers.admin.interface, answers.admin.address,
                               site.attributes["web_port"],
                               allow_foreign_dhcp=args.allow_foreign_dhcp,
                               timeout=args.probe_timeout,
                               chef_mirror=(provisioning.mirror, provisioning.os)
                               if answers.chef.server_url else None)
    except PreflightError as exc:
        print(f"preflight: {exc}", file=sys.stderr)
        return False
    for note in report.notes:
        print(f"preflight: {note}")
    directory = getattr(args, "directory", None)  # apply's tree has its image beside it
    image_note = directory and discovery_image_note(site, directory)
    if image_note:
        print(f"preflight: warning: {image_note}", file=sys.stderr)
    for problem in report.problems:
        print(f"preflight: {problem}", file=sys.stderr)
    return report.ok


def _preflight(args: argparse.Namespace) -> int:
    answers = load(args.answers)
    if not run_preflight_checks(answers, args):
        return EXIT_FAILED
    print("preflight: the admin network is ready for DHCP, TFTP and HTTP")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    answers = load(args.answers)
    try:  # first: while an apply serves the nodes, there is nothing to check or render
        journal = Journal.open(SitePaths.of(answers, lab=False, state=args.state).journal,
                               command="pxe serve")
    except JournalLocked as exc:
        print(f"cannot serve: {exc}; one process at a time serves a site (an apply serves "
              "the nodes itself while it runs)", file=sys.stderr)
        return EXIT_FAILED
    except JournalError as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        return EXIT_FAILED
    with journal:
        return _serve_with(args, answers, journal)


def _serve_with(args: argparse.Namespace, answers: Answers, journal: Journal) -> int:
    if not run_preflight_checks(answers, args):
        print("not serving: fix the problems above (see --help)", file=sys.stderr)
        return EXIT_FAILED
    try:
        dnsmasq = Dnsmasq(args.directory / "dnsmasq")
        admin_key = admin_ssh_key(journal.path.parent)
        site, summary = _write(answers, args.directory, dnsmasq, admin_key)
        states = JournalStates(journal)
        taken = states.take_over(args.directory)
    except EscapeError as exc:
        print(f"cannot serve: DIR: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (TreeError, DnsmasqError, SecretError, OSError, StoreError) as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if taken:
        log.info("%s", taken)
    _report(summary, args.directory, True, site)
    try:
        dnsmasq.start()
        status = asyncio.run(_serve_http(args, site, dnsmasq, states))
    except DnsmasqError as exc:
        print(f"cannot serve: {exc}{_access_hint(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        dnsmasq.stop()
    if status == EXIT_INTERRUPTED:
        raise KeyboardInterrupt  # "interrupted", exit 130, as every command on Ctrl-C
    return status


def _access_hint(reason: str) -> str:
    """What to do when dnsmasq, once it has dropped root, cannot reach the TFTP root."""
    if "inaccessible" not in reason:
        return ""
    return ("\n  dnsmasq drops root to an unprivileged user, which must be able to enter "
            "every directory down to DIR/tftp: give them o+x (chmod o+x DIR and each "
            "parent), or choose a DIR such as /srv/crowbar/pxe")


async def _serve_http(args: argparse.Namespace, site: ProvisionerSite, dnsmasq: Dnsmasq,
                      states: JournalStates) -> int:
    # the HTTP service and the Chef client (starlette, httpx): only ``pxe serve`` pays
    from wizard.chef.node import admin_client, register_client
    from wizard.provisioning.http import create_app
    from wizard.provisioning.serving import provisioner_server

    try:
        chef = admin_client(site.answers.chef)
    except SecretError as exc:
        chef = None
        log.warning("chef.key: %s: installing nodes cannot register their Chef clients", exc)
    app = create_app(
        site, states, media=args.directory / "media",
        register_client=(lambda name, key: register_client(chef, name, key))
        if chef is not None else None,
        leases=args.directory / "dnsmasq" / "leases",
        checks=JournalOrders(SitePaths(states.journal.path.parent).orders,
                             states.journal))
    service = app.state.service

    def reload() -> None:
        try:
            answers = load(args.answers)
            new_site, _ = _write(answers, args.directory, dnsmasq, site.admin_ssh_key)
        except (InputError, TreeError, DnsmasqError, SecretError, OSError) as exc:
            if dnsmasq.running():
                log.error("reload refused, still serving the previous config: %s", exc)
            else:  # the new config passed dnsmasq --test, then dnsmasq failed to start
                log.error("reload: %s", exc)  # the watcher below stops serving
            return
        service.site = new_site
        log.info("reloaded %s: %d nodes", args.answers, len(new_site.nodes))

    server = provisioner_server(app, site.answers.admin.address, site.attributes["web_port"])
    stopped_by: list[int] = []
    died: list[str] = []

    def stop(number: int) -> None:
        stopped_by.append(number)
        server.should_exit = True

    async def watch_dnsmasq() -> None:
        """Stop serving when dnsmasq dies: HTTP with no DHCP behind it boots nothing."""
        while dnsmasq.running():  # a reload's restart runs in this loop: never seen here
            await asyncio.sleep(DNSMASQ_CHECK)
        died.append(dnsmasq.failure() or "it did not start again")
        server.should_exit = True

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, reload)
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop, number)
    watcher = asyncio.create_task(watch_dnsmasq())
    print(f"serving {site.http_url} and DHCP/TFTP on {site.answers.admin.interface} "
          f"(dnsmasq pid {dnsmasq.pid()})", flush=True)
    try:
        await server.serve()
    finally:
        watcher.cancel()
        if chef is not None:
            await chef.close()
    if died:
        log.error("dnsmasq exited: %s; stopped serving", died[0])
        return EXIT_FAILED
    if not server.started:
        return EXIT_FAILED
    return EXIT_INTERRUPTED if signal.SIGINT in stopped_by else EXIT_OK
