"""Starters: how the engine makes a node run chef-client once (see :mod:`wizard.chef.converge`).

- :class:`SshStarter`, for the installed nodes: OpenSSH's ``ssh`` as root to the node's
  admin-network address, with the admin node's own key (:func:`admin_ssh_key`), which every
  node's installer puts in root's ``authorized_keys``. Crowbar's deployer did the same.
- :class:`LocalStarter`, for the admin node itself (a Chef node too: it holds dns-server and
  the like): ``chef-client -c <state>/chef-client/client.rb``, the client
  :func:`admin_client_config` sets up.
- :class:`ByNode`: one starter for most nodes, another for some (the admin node).

Whatever a starter returns, the run happened only if the node recorded it on the Chef server:
chef-client's exit status and output are not the truth, only what the engine says when the
node recorded nothing. So a starter returns the last lines of the output whatever the exit
status, and raises :class:`OSError` only when the run could not be started (the node cannot
be reached, chef-client is missing). Output is kept in bounded memory (a run prints a lot)
and, when the caller gives up (its timeout cancels :meth:`start`), the process is killed and
reaped before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import re
import shlex
import signal
import tempfile
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from wizard.base import ownedfs
from wizard.base.escaping import ruby_string
from wizard.base.yamlfile import write_atomic
from wizard.chef.converge import Starter
from wizard.chef.node import public_pem

TAIL_LINES = 20
"""How many of the last lines of a run's output a starter returns."""
LINE_WIDTH = 1000
"""Characters kept of one output line (the rest is cut, marked with ``…``)."""
_CHUNK = 1 << 16
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
"""Terminal escape sequences (CSI such as colors, OSC, two-byte ones) chef-client may print."""
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NODE_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")

SSH_DIR = "ssh"
SSH_KEY = "id_ed25519"
KNOWN_HOSTS = "known_hosts"
KEY_COMMENT = "crowbar-wizard-admin"
"""The comment of the admin node's public key line (how it reads in a node's authorized_keys)."""
CLIENT_DIR = "chef-client"
CONNECT_TIMEOUT = 15
"""Seconds ssh waits for a node's TCP connection and SSH handshake."""
ALIVE_INTERVAL, ALIVE_COUNT = 15, 4
"""A node that stops answering mid-run (powered off) ends the run after about a minute."""


# --- output -----------------------------------------------------------------------------------


class OutputTail:
    """The last lines of a byte stream, kept in bounded memory: at most ``lines`` lines of at
    most ``width`` characters each, decoded as UTF-8 (bad bytes replaced), terminal escapes
    and other control characters taken out (the engine shows the lines)."""

    def __init__(self, lines: int = TAIL_LINES, width: int = LINE_WIDTH):
        self._lines: deque[str] = deque(maxlen=lines)
        self._width = width
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []
        self._size = 0
        self._cut = False

    def feed(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        *complete, rest = text.split("\n")
        for piece in complete:
            self._add(piece)
            self._end_line()
        self._add(rest)

    def close(self) -> None:
        """The stream ended: a last line without its newline is a line too."""
        self._add(self._decoder.decode(b"", final=True))
        if self._partial or self._cut:
            self._end_line()

    def _add(self, piece: str) -> None:
        room = self._width * 2 - self._size  # escapes still to strip: keep twice the width
        if len(piece) > room:
            piece, self._cut = piece[:max(room, 0)], True
        if piece:
            self._partial.append(piece)
            self._size += len(piece)

    def _end_line(self) -> None:
        line = _CONTROLS.sub("", _ESCAPES.sub("", "".join(self._partial))).rstrip()
        if self._cut or len(line) > self._width:
            line = line[:self._width] + "…"
        self._lines.append(line)
        self._partial, self._size, self._cut = [], 0, False

    def lines(self) -> list[str]:
        return list(self._lines)

    def text(self) -> str:
        return "\n".join(self._lines)


async def run_to_end(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                     lines: int = TAIL_LINES) -> tuple[int, OutputTail]:
    """Run ``argv`` (no shell; input empty; its own session, so a Ctrl-C at the terminal
    is the wizard's to handle) to its end: its exit status and the tail of its output and
    errors, interleaved as printed. Raises :class:`OSError` when it cannot start. When the
    caller is cancelled, the process and whatever it started in its process group are
    killed and the process reaped before the cancellation goes on."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        env=dict(env) if env is not None else None)
    tail = OutputTail(lines)
    try:
        assert process.stdout is not None
        while chunk := await process.stdout.read(_CHUNK):
            tail.feed(chunk)
        status = await process.wait()
    except BaseException:
        if process.returncode is None:  # not reaped yet: its pid is still its group's id
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise
    tail.close()
    return status, tail


# --- the admin node's SSH key -----------------------------------------------------------------


def _create_once(path: Path, data: bytes, mode: int) -> bool:
    """Make ``path`` hold ``data`` unless it exists: written whole to a temp file, then
    linked into place (a link never replaces anything, a dangling symlink included). Whether
    this call made it (False: it was there, or another process made it first)."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        try:
            os.link(temp, path, follow_symlinks=False)
        except FileExistsError:
            return False
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(temp)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True


def ssh_key_path(state_dir: Path) -> Path:
    """Where the admin node's SSH private key is (see :func:`admin_ssh_key`)."""
    return Path(state_dir) / SSH_DIR / SSH_KEY


def known_hosts_path(state_dir: Path) -> Path:
    """The host keys of the nodes, as first seen (see :class:`SshStarter`)."""
    return Path(state_dir) / SSH_DIR / KNOWN_HOSTS


def admin_ssh_key(state_dir: Path) -> str:
    """The admin node's SSH public key line (``ssh-ed25519 AAAA… crowbar-wizard-admin``),
    its key pair made the first time: ``<state>/ssh/id_ed25519`` (0600, in a 0700
    directory; the public line beside it as ``id_ed25519.pub``). Every node's installer puts
    the line in root's ``authorized_keys`` (``ProvisionerSite(admin_ssh_key=...)``), for
    :class:`SshStarter`. Nothing is written through a symbolic link inside the state
    directory (:class:`wizard.base.ownedfs.LinkError`)."""
    state_dir = Path(state_dir)
    path = ssh_key_path(state_dir)
    ownedfs.real_dir(path.parent, state_dir, 0o700)
    if not os.path.lexists(path):
        key = ed25519.Ed25519PrivateKey.generate()
        _create_once(path, key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.OpenSSH,
                                             serialization.NoEncryption()), 0o600)
    try:
        loaded = serialization.load_ssh_private_key(ownedfs.read_text(path).encode(), None)
    except ValueError:
        raise OSError(f"{path} is not an unencrypted OpenSSH private key; move it away and "
                      "a new one is made (then reinstall the nodes, or add its .pub line to "
                      "their root's authorized_keys)") from None
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise OSError(f"{path} is not an ed25519 key")
    public = loaded.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                              serialization.PublicFormat.OpenSSH).decode()
    line = f"{public} {KEY_COMMENT}"
    public_path = path.with_name(f"{SSH_KEY}.pub")
    try:
        written = ownedfs.read_text(public_path)
    except FileNotFoundError:
        written = None
    if written != f"{line}\n":
        write_atomic(public_path, f"{line}\n", mode=0o644)
    return line


def existing_admin_ssh_key(state_dir: Path) -> str | None:
    """The admin node's SSH public key line if :func:`admin_ssh_key` made it, else None
    (for what must change nothing: a dry run, a preview)."""
    try:
        return ownedfs.read_text(ssh_key_path(state_dir).with_name(f"{SSH_KEY}.pub")).strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


# --- over SSH ---------------------------------------------------------------------------------


def _ssh_path(path: Path) -> str:
    """A path as an ``ssh -o`` value: double-quoted (a space would split it into several
    files), ``%`` doubled (ssh expands ``%h`` and the like in these paths)."""
    text = str(path)
    if any(char in text for char in '"\\') or _CONTROLS.search(text) or "\n" in text:
        raise OSError(f"{text!r}: ssh cannot be given a path holding a quote, a backslash or a "
                      "control character; choose another state directory")
    return '"' + text.replace("%", "%%") + '"'


class SshStarter:
    """chef-client on a node over SSH: ``ssh root@<its admin address> chef-client``.

    ssh reads no configuration file (``-F none``: what the admin node's root has in
    ``~/.ssh/config`` does not change how nodes are reached), uses only the admin node's own
    key (:func:`admin_ssh_key`; no agent, nothing forwarded), never asks anything
    (``BatchMode``), and says only errors (``LogLevel=ERROR``), so what it prints is the
    remote command's output.

    Host keys are trusted on first use. A node's first SSH connection is its first converge,
    right after its install; its host key is then recorded in ``<state>/ssh/known_hosts``,
    under the node's name (``HostKeyAlias``, so a node keeps its entry whatever its address),
    and a different key later is refused (``StrictHostKeyChecking=accept-new``): ssh exits
    255 and :meth:`start` raises :class:`OSError` saying so. A node reinstalled has a new host
    key: :meth:`forget` its old one when it installs.

    What this leaves to an attacker on the admin network who answers for a node's address
    before its first converge (spoofed ARP or DHCP): ssh takes them for the node from then
    on. They are sent the command (``chef-client``), and can say anything back, or nothing;
    they can stop converges of that node. They cannot make the engine believe the node
    converged: that is read from the Chef server, where only the node's own client key (made
    on the node, never sent) can record a run. They get no use of the admin node's key: it
    never leaves the admin node, and what it signs to log in is bound to that one connection
    (relaying it to the real node fails), and nothing (agent, ports) is forwarded. Once a
    node's key is recorded, a later impersonation is refused, loudly.

    ssh's own failures (refused, timed out, authentication, changed host key) exit 255, and
    so would a remote command exiting 255 (chef-client does not): both raise
    :class:`OSError` with the last lines ssh printed. Any other exit status returns the tail.
    Cancelling :meth:`start` kills ssh; chef-client on the node has no terminal and goes on
    to its end (it holds a lock a second run waits for), recording its run for the request
    it was started for, which the next converge's new request does not take for its own.
    """

    def __init__(self, state_dir: Path, addresses: Mapping[str, str], *, user: str = "root",
                 port: int = 22, command: Sequence[str] = ("chef-client",),
                 connect_timeout: float = CONNECT_TIMEOUT, ssh: str = "ssh"):
        """``addresses``: each node's admin-network address by its FQDN (its Chef node's
        name). ``command`` runs on the node (its words quoted for the remote shell, its errors
        sent to its output there)."""
        self.state_dir = Path(state_dir)
        self.addresses = dict(addresses)
        self.user, self.port = user, port
        self.command = list(command)
        self.connect_timeout = connect_timeout
        self.ssh = ssh

    def argv(self, node: str) -> list[str]:
        """The ssh command line that runs chef-client on ``node``; :class:`OSError` when
        no address is known for it."""
        address = self.addresses.get(node)
        if address is None:
            raise OSError(f"{node}: no admin-network address is known for it to be reached "
                          "over SSH")
        if not _NODE_NAME.fullmatch(node):
            raise OSError(f"{node!r} cannot name a host key (letters, digits, '.' and '-')")
        options = {
            "BatchMode": "yes", "LogLevel": "ERROR",
            "ConnectTimeout": str(max(1, round(self.connect_timeout))),
            "ServerAliveInterval": str(ALIVE_INTERVAL), "ServerAliveCountMax": str(ALIVE_COUNT),
            "StrictHostKeyChecking": "accept-new", "HostKeyAlias": node,
            "UserKnownHostsFile": _ssh_path(known_hosts_path(self.state_dir)),
            "GlobalKnownHostsFile": "/dev/null", "UpdateHostKeys": "no", "CheckHostIP": "no",
            "IdentityFile": _ssh_path(ssh_key_path(self.state_dir)),
            "IdentitiesOnly": "yes", "IdentityAgent": "none",
            "PasswordAuthentication": "no", "KbdInteractiveAuthentication": "no",
            "ForwardAgent": "no", "ForwardX11": "no", "ClearAllForwardings": "yes",
            "ControlMaster": "no", "ControlPath": "none", "RequestTTY": "no",
            "User": self.user, "Port": str(self.port),
        }
        # its errors joined to its output on the node: over SSH they travel apart, and
        # would arrive out of order
        remote = " ".join(shlex.quote(word) for word in self.command) + " 2>&1"
        return [self.ssh, "-F", "none", "-n", *(arg for name, value in options.items()
                                                 for arg in ("-o", f"{name}={value}")),
                "--", address, remote]

    async def start(self, node: str) -> str:
        argv = self.argv(node)
        key = ssh_key_path(self.state_dir)
        if not key.is_file():
            raise OSError(f"{node}: the admin node's SSH key {key} is missing (it is made "
                          "before the nodes install, which trust it)")
        try:
            status, tail = await run_to_end(argv)
        except FileNotFoundError:
            raise OSError(f"{node}: the ssh client ({self.ssh}) is not installed on the admin "
                          "node (Debian and Ubuntu: apt install openssh-client)") from None
        if status == 255:
            said = "; ".join(line for line in tail.lines()[-3:] if line) or "no message"
            if any("has changed and you have requested strict checking" in line
                   for line in tail.lines()):
                known = shlex.quote(str(known_hosts_path(self.state_dir)))
                said = (f"its SSH host key is not the one it had at its first converge; if it "
                        f"was reinstalled since, forget the old one (ssh-keygen -f {known} "
                        f"-R {node}), if not, something else answers at its address")
            raise OSError(f"{node}: ssh to {self.user}@{self.addresses[node]} port "
                          f"{self.port} failed: {said}")
        return tail.text()

    def forget(self, node: str) -> bool:
        """Drop ``node``'s recorded host key (it is being reinstalled, with a new one): its
        next connection trusts what it presents. Whether there was one."""
        path = known_hosts_path(self.state_dir)
        try:
            lines = ownedfs.read_text(path).splitlines(keepends=True)
        except FileNotFoundError:
            return False
        kept = [line for line in lines if line.split(None, 1)[:1] != [node]]
        if len(kept) == len(lines):
            return False
        write_atomic(path, "".join(kept), mode=0o600)
        return True


# --- on the admin node ------------------------------------------------------------------------


def client_config_path(state_dir: Path) -> Path:
    return Path(state_dir) / CLIENT_DIR / "client.rb"


def client_rb(server_url: str, node_name: str, client_key: Path,
              organization: str | None = None) -> str:
    """The text of a client.rb: the server (the organization's URL when it has one), the
    node's name, its key; each value a double-quoted Ruby string. Raises
    :class:`wizard.base.escaping.EscapeError` for a value no Ruby string can hold here (a
    control character)."""
    url = server_url.rstrip("/")
    if organization:
        url = f"{url}/organizations/{organization}"
    return "".join(f"{name} {ruby_string(value)}\n" for name, value in (
        ("chef_server_url", url), ("node_name", node_name), ("client_key", str(client_key))))


def admin_client_config(state_dir: Path, server_url: str, node_name: str,
                        organization: str | None = None) -> tuple[Path, str | None]:
    """The admin node's own Chef client: ``<state>/chef-client/client.rb`` (written every
    time, all or nothing) and its private key ``client.pem`` (RSA, 0600, made the first time).

    Returns the config's path and, when the key was made by this call, its public half (PEM):
    the engine registers the API client ``node_name`` with it (:func:`wizard.chef.node.
    register_client`), as the admin node does for a node whose install sends its key. Nothing
    is written through a symbolic link inside the state directory."""
    state_dir = Path(state_dir)
    config = client_config_path(state_dir)
    ownedfs.real_dir(config.parent, state_dir, 0o700)
    key_path = config.with_name("client.pem")
    text = client_rb(server_url, node_name, key_path, organization)
    made = None
    if not os.path.lexists(key_path):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()).decode()
        if _create_once(key_path, private.encode(), 0o600):
            made = private
    if made is None:
        ownedfs.read_text(key_path)  # there, readable, and not a link out of the tree
    write_atomic(config, text, mode=0o644)
    return config, public_pem(made) if made is not None else None


class LocalStarter:
    """chef-client on the admin node itself: ``chef-client -c <config>`` (see
    :func:`admin_client_config`), as the wizard's user (root, as chef-client needs). Its
    exit status, like a node's, is not the truth: :meth:`start` returns the output's tail."""

    def __init__(self, config: Path, *, command: Sequence[str] = ("chef-client",),
                 env: Mapping[str, str] | None = None):
        self.config = Path(config)
        self.command = list(command)
        self.env = env

    async def start(self, node: str) -> str:
        try:
            _status, tail = await run_to_end([*self.command, "-c", str(self.config)],
                                             env=self.env)
        except (FileNotFoundError, PermissionError) as exc:
            path = (self.env or os.environ).get("PATH", os.defpath)
            why = ("is not executable" if isinstance(exc, PermissionError)
                   else f"is not on its PATH ({path})")
            raise OSError(
                f"chef-client is not installed on the admin node: {self.command[0]!r} {why}; "
                f"install Chef Infra Client (or Cinc Client) there to converge "
                f"{node}'s roles") from None
        return tail.text()


class ByNode:
    """``default`` for every node but those ``others`` names (by FQDN), which have their own
    (the admin node: a :class:`LocalStarter`)."""

    def __init__(self, default: Starter, others: Mapping[str, Starter]):
        self.default = default
        self.others = dict(others)

    async def start(self, node: str) -> str:
        return await self.others.get(node, self.default).start(node)
