"""``crowbar-wizard ssh-setup``: make OpenSSH's sshd run the wizard for one user.

The block is a ``Match User`` section: the wizard is the user's forced command, logins are
by key only, a terminal is given, and nothing is forwarded but the one local port the
browser view (``serve-web``) listens on. With ``--write`` it goes into a file of its own
under ``/etc/ssh/sshd_config.d/`` (Debian's sshd_config includes them), checked by
``sshd -t`` first; sshd itself is not reloaded.

Every value that reaches the block is checked and quoted here, never pasted: sshd_config
is line-based and keeps the first value of a directive, so a newline in ``--directory``
would add directives ahead of the real ones. Control characters are refused; the forced
command is built from words, each quoted for the shell sshd runs it with and for
sshd_config's own tokenizer (:func:`sshd_word`).
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wizard.base.yamlfile import write_atomic
from wizard.cli.exits import EXIT_FAILED, EXIT_INVALID, EXIT_OK

USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
DROP_IN = Path("/etc/ssh/sshd_config.d/crowbar-wizard.conf")
WEB_PORT = 8000
"""The port serve-web listens on by default, reached through ``ssh -L``."""


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    setup = commands.add_parser(
        "ssh-setup", help="an sshd_config block that makes the wizard a user's SSH login",
        description="Print the sshd_config block that makes OpenSSH run the wizard for USER: "
        "ForceCommand crowbar-wizard, key logins only, a terminal, no forwarding but "
        f"127.0.0.1:{WEB_PORT} for serve-web. With --write, install it as {DROP_IN} "
        "(checked with `sshd -t` first), then reload sshd yourself "
        "(`systemctl reload ssh`). The user needs an account and an authorized key.",
        formatter_class=formatter)
    setup.add_argument("--user", required=True, help="the account that gets the wizard")
    setup.add_argument("--directory", type=Path,
                       help="where the wizard starts (its answers/); default the user's home")
    setup.add_argument("--command", dest="forced_command",
                       help="the wizard's command line, split into words as the shell "
                       "does (quotes group words; no variables or operators) "
                       "(default: this crowbar-wizard)")
    setup.add_argument("--write", action="store_true", help="install the block as --path")
    setup.add_argument("--path", type=Path, default=DROP_IN, help=f"default {DROP_IN}")
    setup.set_defaults(handler=_setup)


def wizard_command() -> str:
    found = shutil.which("crowbar-wizard", path=str(Path(sys.executable).parent))
    return found or shutil.which("crowbar-wizard") or "crowbar-wizard"


class SetupError(ValueError):
    """An option that cannot go into sshd_config; the message names the option."""


def check_value(option: str, value: str) -> None:
    """:class:`SetupError` if ``value`` (given as ``option``) holds a control character."""
    for index, char in enumerate(value, 1):
        if unicodedata.category(char) == "Cc":
            raise SetupError(f"{option} holds a control character (U+{ord(char):04X} at "
                             f"character {index}); sshd_config is one directive a line")


def sshd_word(value: str) -> str:
    r"""``value`` as one word for the shell that runs ForceCommand (``$SHELL -c``), written
    so sshd_config's tokenizer also finds its quotes balanced.

    sshd keeps the rest of a ForceCommand line as it is, but first splits the line by its
    own rules, where a backslash escapes a quote even inside single quotes: ``'a\'``
    (:func:`shlex.quote` of ``a\``) is an unterminated quote to sshd. So runs of other
    characters go in single quotes, and each quote or backslash is double-quoted on its
    own (``"'"``, ``"\\"``), which the shell and sshd both read as balanced.
    """
    quoted = {"'": "\"'\"", "\\": '"\\\\"'}
    return "".join(quoted.get(piece, f"'{piece}'")
                   for piece in re.split(r"(['\\])", value) if piece) or "''"


def command_words(command: str) -> list[str]:
    """``--command`` split into words as a POSIX shell would; :class:`SetupError` if not."""
    check_value("--command", command)  # before splitting, which takes a newline for a space
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise SetupError(f"--command {command!r} is not a command line: {exc}") from None
    if not words:
        raise SetupError("--command is empty")
    return words


def match_block(user: str, command: Sequence[str], directory: Path | None = None) -> str:
    """The ``Match User`` block for ``user``: ``command`` (its words) is the forced command,
    started in ``directory`` when given. Raises :class:`SetupError` for a control character
    in any value (checked here, so no caller can skip it)."""
    values = [("--user", user), ("--directory", str(directory or "")),
              *(("--command", word) for word in command)]
    for option, value in values:
        check_value(option, value)
    if not USER_NAME.fullmatch(user):
        raise SetupError(f"--user {user!r} is not a user name (lowercase letters, digits, "
                         "_ and -)")
    run = " ".join(sshd_word(word) for word in command)
    forced = f"exec {run}" if directory is None else (
        f"cd {sshd_word(str(directory))} && exec {run}")
    return "\n".join([
        "# Crowbar Wizard: the wizard is what sshd runs for this user "
        "(crowbar-wizard ssh-setup)",
        f"Match User {user}",
        f"    ForceCommand {forced}",
        "    PasswordAuthentication no",
        "    KbdInteractiveAuthentication no",
        "    PubkeyAuthentication yes",
        "    PermitTTY yes",
        "    AllowTcpForwarding local",
        f"    PermitOpen 127.0.0.1:{WEB_PORT}",
        "    AllowAgentForwarding no",
        "    AllowStreamLocalForwarding no",
        "    X11Forwarding no",
        "    PermitTunnel no",
        "    GatewayPorts no",
        "",
    ])


def _setup(args: argparse.Namespace) -> int:
    try:
        command = (command_words(args.forced_command) if args.forced_command is not None
                   else [wizard_command()])
        block = match_block(args.user, command, args.directory)
    except SetupError as exc:
        print(f"ssh-setup: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if not args.write:
        print(block, end="")
        return EXIT_OK
    tested = check_block(block)
    if tested.returncode != 0:
        print(f"ssh-setup: sshd refuses the block: {tested.stderr.strip()}", file=sys.stderr)
        return EXIT_FAILED
    args.path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.path, block, mode=0o644)
    print(f"wrote {args.path}; reload sshd to use it (systemctl reload ssh)")
    return EXIT_OK


def check_block(block: str) -> subprocess.CompletedProcess[str]:
    """``sshd -t`` on the block (with a throwaway host key, so no system key is read)."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    with tempfile.TemporaryDirectory() as directory:
        key = Path(directory) / "host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, capture_output=True)
        config = Path(directory) / "sshd_config"
        config.write_text(f"HostKey {key}\nPidFile none\nUsePAM no\n{block}")
        return subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True,
                              text=True, check=False)
