"""The starters' parts that need no daemon: the output tail, the admin node's keys and
client.rb (read back by Ruby and OpenSSH's own tools), ssh's command line (read back by
``ssh -G``), and :class:`LocalStarter` with a stand-in chef-client.

What stands in for chef-client (no package of it exists here): a shell script named
``chef-client`` in a temp directory put on the starter's PATH, which prints its arguments
and numbered lines and exits with a chosen status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.integration.conftest import need
from tests.proc import alive
from wizard.base.escaping import EscapeError
from wizard.base.ownedfs import LinkError
from wizard.chef.converge import Starter
from wizard.chef.node import public_pem
from wizard.chef.starters import (
    ByNode,
    LocalStarter,
    OutputTail,
    SshStarter,
    admin_client_config,
    admin_ssh_key,
    client_rb,
    known_hosts_path,
    ssh_key_path,
)

NODE = "n1.crowbar.example"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --- output tail -----------------------------------------------------------------------------


def test_the_tail_keeps_the_last_lines_whatever_the_chunks() -> None:
    data = b"".join(b"line %d\n" % i for i in range(1, 1001))
    tail = OutputTail(lines=5)
    for at in range(0, len(data), 7):  # lines split across chunks
        tail.feed(data[at:at + 7])
    tail.close()
    assert tail.lines() == [f"line {i}" for i in range(996, 1001)]


def test_a_last_line_without_newline_counts_and_utf8_split_across_chunks_decodes() -> None:
    tail = OutputTail()
    text = "Récipe ✓ done\nno newline".encode()
    cut = text.index("✓".encode()) + 1
    tail.feed(text[:cut])
    tail.feed(text[cut:])
    tail.close()
    assert tail.lines() == ["Récipe ✓ done", "no newline"]


def test_colors_and_control_characters_are_taken_out() -> None:
    tail = OutputTail()
    tail.feed(b"\x1b[0m\x1b[32m- install\x1b[0m package\r\n\x1b]0;title\x07bell\x07 \x00x\n")
    tail.close()
    assert tail.lines() == ["- install package", "bell x"]


def test_a_long_line_is_cut_and_memory_stays_bounded() -> None:
    tail = OutputTail(lines=2, width=50)
    for _ in range(1000):
        tail.feed(b"x" * 10_000)  # 10 MB on one line
        assert tail._size <= 100
    tail.feed(b"\nshort\n")
    tail.close()
    assert tail.lines() == ["x" * 50 + "…", "short"]


# --- the admin node's SSH key ---------------------------------------------------------------


def test_the_ssh_key_is_made_once_private_and_openssh_reads_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    line = admin_ssh_key(state)
    key = ssh_key_path(state)
    assert mode(key) == 0o600 and mode(key.parent) == 0o700
    assert mode(key.with_name("id_ed25519.pub")) == 0o644
    assert key.with_name("id_ed25519.pub").read_text() == line + "\n"
    assert line.startswith("ssh-ed25519 ") and line.endswith(" crowbar-wizard-admin")
    derived = subprocess.run([need("ssh-keygen"), "-y", "-f", str(key)], capture_output=True,
                             text=True, check=True).stdout.split()
    assert derived[:2] == line.split()[:2]
    before = key.read_bytes()
    assert admin_ssh_key(state) == line and key.read_bytes() == before, "made once"
    assert not [p for p in key.parent.iterdir() if p.name.startswith(".")], "no temp left"


def test_the_ssh_key_is_not_written_through_a_link(tmp_path: Path) -> None:
    state, elsewhere = tmp_path / "state", tmp_path / "elsewhere"
    state.mkdir()
    elsewhere.mkdir()
    (state / "ssh").symlink_to(elsewhere)
    with pytest.raises(LinkError):
        admin_ssh_key(state)
    (state / "ssh").unlink()
    (state / "ssh").mkdir()
    (state / "ssh" / "id_ed25519").symlink_to(elsewhere / "key")  # dangling
    with pytest.raises(LinkError):
        admin_ssh_key(state)
    assert list(elsewhere.iterdir()) == []


# --- ssh's command line ------------------------------------------------------------------------


def test_ssh_reads_the_paths_whole_from_a_state_directory_with_space_and_percent(
        tmp_path: Path) -> None:
    """``ssh -G`` (prints the configuration it would use) reads the command line back."""
    state = tmp_path / "my state 100%h"
    argv = SshStarter(state, {NODE: "192.168.124.81"}, port=2222).argv(NODE)
    assert argv[-3:] == ["--", "192.168.124.81", "chef-client 2>&1"]
    shown = subprocess.run([need("ssh"), "-G", *argv[1:-3], "192.168.124.81"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    config = dict(line.split(" ", 1) for line in shown)
    assert config["userknownhostsfile"] == str(known_hosts_path(state))
    # shown before its %-expansion (tests/integration/test_ssh_starter.py logs in with it)
    assert config["identityfile"] == str(ssh_key_path(state)).replace("%", "%%")
    assert config["globalknownhostsfile"] == "/dev/null"
    assert config["user"] == "root" and config["port"] == "2222"
    assert config["hostkeyalias"] == NODE
    assert config["stricthostkeychecking"] == "accept-new" and config["batchmode"] == "yes"
    assert config["identitiesonly"] == "yes" and config["forwardagent"] == "no"


def test_the_remote_command_is_quoted_for_the_remote_shell(tmp_path: Path) -> None:
    argv = SshStarter(tmp_path, {NODE: "10.0.0.5"},
                      command=["/opt/my tools/chef-client", "-o", "role[x]; rm"]).argv(NODE)
    assert shlex.split(argv[-1]) == ["/opt/my tools/chef-client", "-o", "role[x]; rm",
                                     "2>&1"]


@pytest.mark.parametrize("name", ['state"quote', "state\\slash", "state\nline"])
def test_a_state_path_ssh_cannot_take_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(OSError, match="ssh cannot be given a path"):
        SshStarter(tmp_path / name, {NODE: "10.0.0.5"}).argv(NODE)


def test_a_node_without_an_address_or_key_is_an_oserror(tmp_path: Path) -> None:
    starter = SshStarter(tmp_path, {NODE: "10.0.0.5"})
    with pytest.raises(OSError, match=r"^n2\.crowbar\.example: no admin-network address"):
        asyncio.run(starter.start("n2.crowbar.example"))
    with pytest.raises(OSError, match=f"^{NODE}: the admin node's SSH key .* is missing"):
        asyncio.run(starter.start(NODE))


def test_forgetting_a_node_drops_only_its_host_key(tmp_path: Path) -> None:
    known = known_hosts_path(tmp_path)
    known.parent.mkdir()
    known.write_text(f"{NODE} ssh-ed25519 AAAA1\nn10.crowbar.example ssh-ed25519 AAAA2\n"
                     f"{NODE} ecdsa-sha2-nistp256 AAAA3\n")
    starter = SshStarter(tmp_path, {})
    assert starter.forget(NODE)
    assert known.read_text() == "n10.crowbar.example ssh-ed25519 AAAA2\n"
    assert not starter.forget(NODE) and not SshStarter(tmp_path / "none", {}).forget(NODE)


# --- the admin node's own Chef client --------------------------------------------------------


def ruby_reads(config: Path) -> dict[str, str]:
    """The settings a client.rb makes, as Ruby evaluates it (each setting a method call, as
    in Chef's config DSL)."""
    program = ("require 'json'; $s = {}; "
               "%w[chef_server_url node_name client_key].each { |m| "
               "define_method(m) { |v| $s[m] = v } }; "
               "eval(File.read(ARGV[0])); print JSON.generate($s)")
    out = subprocess.run([need("ruby"), "-e", program, str(config)], capture_output=True,
                         text=True, check=True).stdout
    read: dict[str, str] = json.loads(out)
    return read


def test_the_client_config_says_server_name_and_key(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config, public = admin_client_config(state, "https://chef.example:443/", "admin.example",
                                         "crowbar")
    assert config == state / "chef-client" / "client.rb"
    key = config.with_name("client.pem")
    assert ruby_reads(config) == {
        "chef_server_url": "https://chef.example:443/organizations/crowbar",
        "node_name": "admin.example", "client_key": str(key)}
    assert mode(key) == 0o600 and mode(key.parent) == 0o700
    assert public is not None and public == public_pem(key.read_text())
    serialization.load_pem_public_key(public.encode())
    before = key.read_bytes()
    again, none = admin_client_config(state, "https://other.example", "admin.example", None)
    assert again == config and none is None and key.read_bytes() == before, "key made once"
    assert ruby_reads(config)["chef_server_url"] == "https://other.example"


def test_the_client_config_escapes_what_ruby_would_read_otherwise(tmp_path: Path) -> None:
    """A quote, a backslash and ``#{...}`` interpolation reach Ruby as the characters they
    are (the node name is checked long before; the state directory is the operator's)."""
    state = tmp_path / 'st"ate \\ #{`touch pwned`} #$x'
    awkward = 'admin"; system("touch pwned"); "#{1+1}\\'
    config, _ = admin_client_config(state, "http://127.0.0.1:4545", awkward)
    assert ruby_reads(config) == {"chef_server_url": "http://127.0.0.1:4545",
                                  "node_name": awkward,
                                  "client_key": str(state / "chef-client" / "client.pem")}
    assert not Path("pwned").exists() and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("value", ["admin\nlog_level :debug", "admin\x00", "admin\u2028x"])
def test_a_control_character_cannot_reach_the_client_config(value: str) -> None:
    with pytest.raises(EscapeError):
        client_rb("https://chef.example", value, Path("/k"))


def test_the_client_key_is_not_written_through_a_link(tmp_path: Path) -> None:
    state, elsewhere = tmp_path / "state", tmp_path / "elsewhere"
    (state / "chef-client").mkdir(parents=True)
    elsewhere.mkdir()
    (state / "chef-client" / "client.pem").symlink_to(elsewhere / "client.pem")
    with pytest.raises(LinkError):
        admin_client_config(state, "https://chef.example", "admin.example")
    assert list(elsewhere.iterdir()) == []


# --- LocalStarter ------------------------------------------------------------------------------


def stand_in(directory: Path, body: str, status: int = 0) -> dict[str, str]:
    """``chef-client`` in ``directory``; the environment that puts it first on PATH."""
    directory.mkdir(exist_ok=True)
    script = directory / "chef-client"
    script.write_text(f"#!/bin/sh\n{body}\nexit {status}\n")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{directory}:{os.environ.get('PATH', os.defpath)}"}


def test_the_local_starter_runs_chef_client_with_its_config(tmp_path: Path) -> None:
    env = stand_in(tmp_path / "bin", 'echo "args: $*"; i=1; while [ $i -le 30 ]; do '
                   'echo "line $i"; i=$((i + 1)); done; echo oops >&2', status=1)
    config = tmp_path / "my client.rb"
    out = asyncio.run(LocalStarter(config, env=env).start("admin.example"))
    assert out.splitlines() == [*(f"line {i}" for i in range(12, 31)), "oops"], (
        "its failure returns its output's tail")
    env = stand_in(tmp_path / "bin", 'printf "%s|" "$@"')
    assert asyncio.run(LocalStarter(config, env=env).start("admin.example")) == (
        f"-c|{config}|")


def test_a_missing_chef_client_says_it_is_not_installed(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    starter = LocalStarter(tmp_path / "client.rb", env={"PATH": str(empty)})
    with pytest.raises(OSError) as caught:
        asyncio.run(starter.start("admin.example"))
    message = str(caught.value)
    assert message.startswith("chef-client is not installed on the admin node: ")
    assert str(empty) in message and "Chef Infra Client" in message


def test_cancelling_a_local_run_kills_chef_client_and_what_it_started(tmp_path: Path) -> None:
    """chef-client and a process it started (a package manager, say), both in the run's
    process group, are gone when the cancellation is through."""
    pids = tmp_path / "pids"
    env = stand_in(tmp_path / "bin",
                   f"sleep 600 & echo $$ $! > {shlex.quote(str(pids))}.tmp; "
                   f"mv {shlex.quote(str(pids))}.tmp {shlex.quote(str(pids))}; wait")
    starter = LocalStarter(tmp_path / "client.rb", env=env)

    async def go() -> None:
        task = asyncio.create_task(starter.start("admin.example"))
        deadline = time.monotonic() + 30
        while not pids.exists():
            assert not task.done() and time.monotonic() < deadline
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started: list[int] = []
    try:
        asyncio.run(go())
        started = [int(pid) for pid in pids.read_text().split()]
        chef, child = started
        assert not Path(f"/proc/{chef}").exists(), "killed and reaped"
        deadline = time.monotonic() + 10
        while alive(child):  # killed; init reaps it when it will
            assert time.monotonic() < deadline, "the process chef-client started is killed"
            time.sleep(0.02)
    finally:
        for pid in started or ([int(p) for p in pids.read_text().split()]
                               if pids.exists() else []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_by_node_sends_the_admin_node_to_its_own_starter() -> None:
    class Says:
        def __init__(self, name: str):
            self.name = name

        async def start(self, node: str) -> str:
            return f"{self.name} ran {node}"

    starter: Starter = ByNode(Says("ssh"), {"admin.example": Says("local")})
    assert asyncio.run(starter.start("admin.example")) == "local ran admin.example"
    assert asyncio.run(starter.start("n1.example")) == "ssh ran n1.example"
