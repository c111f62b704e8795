""":class:`SshStarter` against a real OpenSSH ``sshd`` on 127.0.0.1 (a free high port, its own
host key, config and authorized keys in the test's directory, ``-D -e``) and the real ``ssh``
client.

What stands in: for chef-client (no package of it exists here), a small shell script the
starter runs as its remote command, which prints numbered lines to its output and errors and
exits with the status it is given; for the wizard's state directory, a temp directory whose
name holds a space and ``%h`` (ssh splits paths at spaces and expands ``%`` tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import need
from tests.proc import alive
from tests.terminal import wait_listening
from wizard.chef.starters import SshStarter, admin_ssh_key, known_hosts_path
from wizard.lab.goiardi import free_port

pytestmark = pytest.mark.slow
NODE = "d52-54-00-12-34-56.crowbar.example"


@dataclass
class Sshd:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (sshd's per-connection children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def start_sshd(directory: Path, authorized: str) -> Sshd:
    """sshd -D -e on 127.0.0.1:PORT, with a host key of its own made in ``directory`` and
    ``authorized`` (public key lines) as the authorized keys of every user."""
    binary = "/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else need("sshd")
    directory.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(directory / "host")], check=True)
    (directory / "authorized_keys").write_text(authorized)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {directory / 'host'}",
        f"AuthorizedKeysFile {directory / 'authorized_keys'}", "UsePAM no",
        "StrictModes no", "PidFile none", "PasswordAuthentication no",
        "PermitRootLogin prohibit-password", ""]))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    process = subprocess.Popen([binary, "-D", "-e", "-f", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, process, 10)
    except BaseException:
        stop_sshd(Sshd(port, directory, process))
        raise
    return Sshd(port, directory, process)


def stop_sshd(server: Sshd) -> None:
    """The listener and any connection's sshd still running."""
    for pid in children(server.process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state dir 100%h"
    path.mkdir()
    return path


@pytest.fixture
def sshd(tmp_path: Path, state: Path) -> Iterator[Sshd]:
    """An sshd that lets the admin node's key (made in ``state``) in."""
    server = start_sshd(tmp_path / "sshd", admin_ssh_key(state) + "\n")
    try:
        yield server
    finally:
        stop_sshd(server)


def stand_in(directory: Path, *, lines: int = 50, status: int = 0, block: Path | None = None
             ) -> list[str]:
    """A chef-client stand-in: ``lines`` numbered lines, every tenth to its errors, then
    exit ``status``; with ``block``, it writes its pid there and waits (on the node, for the
    test to kill it). The remote command that runs it."""
    script = directory / "chef-client stand-in"
    body = [f"i=1; while [ $i -le {lines} ]; do",
            '  if [ $((i % 10)) -eq 0 ]; then echo "error $i" >&2; else echo "line $i"; fi',
            "  i=$((i + 1)); done"]
    if block is not None:
        body += [f"echo $$ > {shlex.quote(str(block))}.tmp",
                 f"mv {shlex.quote(str(block))}.tmp {shlex.quote(str(block))}",
                 "exec sleep 600"]
    script.write_text("#!/bin/sh\n" + "\n".join(body) + f"\nexit {status}\n")
    script.chmod(0o755)
    return [str(script)]


def starter(state: Path, port: int, command: list[str], **options: object) -> SshStarter:
    return SshStarter(state, {NODE: "127.0.0.1"}, port=port, command=command,
                      connect_timeout=10, **options)  # type: ignore[arg-type]


def test_a_run_returns_the_tail_of_its_output_and_records_the_host_key(
        sshd: Sshd, state: Path, tmp_path: Path) -> None:
    out = asyncio.run(starter(state, sshd.port, stand_in(tmp_path, lines=50)).start(NODE))
    assert out.splitlines() == [f"error {i}" if i % 10 == 0 else f"line {i}"
                                for i in range(31, 51)]
    entries = known_hosts_path(state).read_text().splitlines()
    assert len(entries) == 1 and entries[0].startswith(f"{NODE} ssh-ed25519 "), entries
    host = (sshd.directory / "host.pub").read_text().split()[1]
    assert entries[0].split()[2] == host
    again = asyncio.run(starter(state, sshd.port, stand_in(tmp_path, lines=3)).start(NODE))
    assert again == "line 1\nline 2\nline 3"


def test_chef_clients_failure_returns_its_output(
        sshd: Sshd, state: Path, tmp_path: Path) -> None:
    """chef-client's exit status is not the truth (the Chef server is): a failed run returns
    its output like any other."""
    for status in (1, 3, 213):
        out = asyncio.run(starter(state, sshd.port,
                                  stand_in(tmp_path, lines=2, status=status)).start(NODE))
        assert out == "line 1\nline 2"


def test_a_port_nothing_listens_on_is_an_oserror_naming_the_node(
        state: Path, tmp_path: Path) -> None:
    admin_ssh_key(state)
    port = free_port()
    with pytest.raises(OSError) as caught:
        asyncio.run(starter(state, port, stand_in(tmp_path)).start(NODE))
    message = str(caught.value)
    assert message.startswith(f"{NODE}: ssh to root@127.0.0.1 port {port} failed: ")
    assert "Connection refused" in message


def test_a_node_that_does_not_have_the_admin_key_is_an_oserror(
        tmp_path: Path, state: Path) -> None:
    other = tmp_path / "someone else"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    server = start_sshd(tmp_path / "sshd", (tmp_path / "someone else.pub").read_text())
    try:
        admin_ssh_key(state)
        with pytest.raises(OSError, match=f"^{NODE}: ssh to .*Permission denied"):
            asyncio.run(starter(state, server.port, stand_in(tmp_path)).start(NODE))
    finally:
        stop_sshd(server)


def test_a_changed_host_key_is_refused_until_the_node_is_forgotten(
        sshd: Sshd, state: Path, tmp_path: Path) -> None:
    """The node's first key is trusted (accept-new), a different one later is not: another
    sshd, another host key, answering for the same node."""
    command = stand_in(tmp_path, lines=1)
    assert asyncio.run(starter(state, sshd.port, command).start(NODE)) == "line 1"
    impostor = start_sshd(tmp_path / "impostor", admin_ssh_key(state) + "\n")
    try:
        moved = starter(state, impostor.port, command)
        with pytest.raises(OSError) as caught:
            asyncio.run(moved.start(NODE))
        assert str(caught.value).startswith(f"{NODE}: ssh to root@127.0.0.1 port "
                                            f"{impostor.port} failed: ")
        assert "host key is not the one it had" in str(caught.value)
        assert len(known_hosts_path(state).read_text().splitlines()) == 1, "not replaced"
        assert moved.forget(NODE) and not moved.forget(NODE)
        assert asyncio.run(moved.start(NODE)) == "line 1", "a reinstalled node's new key"
    finally:
        stop_sshd(impostor)


def test_cancelling_a_run_kills_and_reaps_ssh(
        sshd: Sshd, state: Path, tmp_path: Path) -> None:
    """The engine's timeout cancels :meth:`start`: ssh (its pid recorded by a wrapper that
    execs it) is gone, not even a zombie, when the cancellation is through. chef-client on
    the node goes on (no terminal to hang up); the test ends it."""
    remote_pid, ssh_pid = tmp_path / "remote.pid", tmp_path / "ssh.pid"
    wrapper = tmp_path / "ssh-wrapper"
    wrapper.write_text(f"#!/bin/sh\necho $$ > {shlex.quote(str(ssh_pid))}\nexec ssh \"$@\"\n")
    wrapper.chmod(0o755)
    run = starter(state, sshd.port, stand_in(tmp_path, lines=5, block=remote_pid),
                  ssh=str(wrapper))

    async def go() -> None:
        task = asyncio.create_task(run.start(NODE))
        deadline = time.monotonic() + 30
        while not remote_pid.exists():  # the run is under way on the node
            assert not task.done() and time.monotonic() < deadline
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(go())
        pid = int(ssh_pid.read_text())
        assert not alive(pid)
        assert not Path(f"/proc/{pid}").exists(), "reaped"
    finally:
        if remote_pid.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(remote_pid.read_text()), signal.SIGKILL)
