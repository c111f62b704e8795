"""``crowbar-wizard serve-web``: the same wizard in a browser, through textual-serve.

Every browser tab gets its own wizard process. They observe unless the server was started
with ``--control``; then a tab takes part in control like any other session (one at a
time). Listen on loopback and reach it through ``ssh -L``. Only the URL printed at start
(it holds a random token) opens the wizard; other hosts' pages are refused and sessions are
capped (:mod:`wizard.cli.webserver`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from wizard.cli.argtypes import positive
from wizard.cli.exits import EXIT_INVALID, EXIT_OK

DEFAULT_MAX_SESSIONS = 4
DEFAULT_REQUEST_TIMEOUT = 10
"""Each session is a wizard process (about 100 MB): a handful of people watching a deploy."""


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    web = commands.add_parser(
        "serve-web", help="serve the wizard to a browser (textual-serve)",
        description="Serve the wizard over HTTP and websockets: each browser tab runs its "
        "own wizard, read-only unless --control is given. Keep it on loopback and reach it "
        "through SSH: `ssh -L 8000:127.0.0.1:8000 crowbar@ADMIN`, then open the URL it "
        "prints (http://127.0.0.1:8000/?token=...): without its token nothing is served. "
        "Pages of other sites (another Origin) and other host names are refused.",
        formatter_class=formatter)
    web.add_argument("file", type=Path, nargs="?", metavar="FILE",
                     help="the answers file the wizard opens")
    web.add_argument("--listen", default="127.0.0.1:8000", metavar="HOST:PORT",
                     help="where to listen (default 127.0.0.1:8000)")
    web.add_argument("--control", action="store_true",
                     help="let browser sessions take control (else they only observe)")
    web.add_argument("--max-sessions", type=positive, default=DEFAULT_MAX_SESSIONS,
                     metavar="N", help="browser sessions at once, each a wizard process "
                     f"(default {DEFAULT_MAX_SESSIONS}); more are refused")
    web.add_argument("--request-timeout", type=positive, default=DEFAULT_REQUEST_TIMEOUT,
                     metavar="SECONDS", help="how long a client may take to send a whole "
                     "request, and stay idle between requests, before its connection is "
                     f"closed (default {DEFAULT_REQUEST_TIMEOUT}); an open session is not "
                     "idle")
    web.set_defaults(handler=_serve_web)


def wizard_command(file: Path | None, control: bool) -> str:
    """The command each browser session runs."""
    words = [sys.executable, "-m", "wizard.cli", "wizard", "--web"]
    if not control:
        words.append("--observe")
    if file is not None:
        words.append(str(file.resolve()))
    return shlex.join(words)


def _serve_web(args: argparse.Namespace) -> int:
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"serve-web: --listen {args.listen!r} is not HOST:PORT", file=sys.stderr)
        return EXIT_INVALID
    from wizard.cli.webserver import GuardedServer  # textual-serve: only serve-web pays

    server = GuardedServer(wizard_command(args.file, args.control), host=host.strip("[]"),
                           port=int(port), title="Crowbar Wizard",
                           max_sessions=args.max_sessions,
                           request_timeout=args.request_timeout)
    print(f"serving the wizard on {server.url} ("
          f"{'sessions may take control' if args.control else 'read-only'}, at most "
          f"{args.max_sessions} at once); open that URL, keep it to yourself; Ctrl-C stops",
          flush=True)
    server.serve()
    return EXIT_OK
