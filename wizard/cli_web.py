"""``crowbar-wizard serve-web``: the same wizard in a browser, through textual-serve.

Every browser tab gets its own wizard process. They observe unless the server was started
with ``--control``; then a tab takes part in control like any other session (one at a
time). Listen on loopback and reach it through ``ssh -L``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from wizard.exits import EXIT_INVALID, EXIT_OK


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    web = commands.add_parser(
        "serve-web", help="serve the wizard to a browser (textual-serve)",
        description="Serve the wizard over HTTP and websockets: each browser tab runs its "
        "own wizard, read-only unless --control is given. Keep it on loopback and reach it "
        "through SSH: `ssh -L 8000:127.0.0.1:8000 crowbar@ADMIN`, then open "
        "http://127.0.0.1:8000/.", formatter_class=formatter)
    web.add_argument("file", type=Path, nargs="?", metavar="FILE",
                     help="the answers file the wizard opens")
    web.add_argument("--listen", default="127.0.0.1:8000", metavar="HOST:PORT",
                     help="where to listen (default 127.0.0.1:8000)")
    web.add_argument("--control", action="store_true",
                     help="let browser sessions take control (else they only observe)")
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
    from textual_serve.server import Server

    print(f"serving the wizard on http://{args.listen}/ ("
          f"{'sessions may take control' if args.control else 'read-only'}); Ctrl-C stops",
          flush=True)
    Server(wizard_command(args.file, args.control), host=host, port=int(port),
           title="Crowbar Wizard").serve()
    return EXIT_OK
