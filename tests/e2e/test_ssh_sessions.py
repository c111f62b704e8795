"""The wizard over real OpenSSH: a private sshd on a loopback port, configured with the
block ``crowbar-wizard ssh-setup`` prints, and the real ``ssh`` client on a pty (80x24).

Logins by key get the wizard; a password login is refused; a second login observes;
killing the controller's ssh client mid-deploy leaves the deploy running to the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.terminal import PtySession, set_size, wait_listening
from wizard.cli.ssh import match_block
from wizard.engine.journal import Journal, holder
from wizard.lab.control import Lab
from wizard.lab.goiardi import free_port

pytestmark = pytest.mark.slow
EXAMPLE = Path("answers/examples/lab-small.yaml").resolve()
CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass
class Sshd:
    port: int
    key: Path
    known_hosts: Path
    home: Path


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """sshd -D on 127.0.0.1:PORT with its own host key and authorized keys; the wizard is
    root's forced command, started in ``tmp_path/the home`` (a space to quote) with state
    and lab kept there."""
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(binary).exists():
        if os.environ.get("CI"):
            pytest.fail("sshd is not installed (./dev installs openssh-server)")
        pytest.skip("sshd is not installed (./dev installs openssh-server)")
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(tmp_path / name)], check=True)
    (tmp_path / "authorized_keys").write_text((tmp_path / "client.pub").read_text())
    home = tmp_path / "the home"
    (home / "answers").mkdir(parents=True)
    (home / "answers" / "lab.yaml").write_text(EXAMPLE.read_text())
    wizard = shutil.which("crowbar-wizard", path=str(Path(sys.executable).parent))
    command = ["env", f"PYTHONPATH={CHECKOUT}",  # this checkout's code, whatever is installed
               f"CROWBAR_STATE_DIR={tmp_path / 'state'}",
               f"CROWBAR_LAB_DIR={tmp_path / 'lab'}", str(wizard)]
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {tmp_path / 'host'}",
        f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}", "UsePAM no",
        "StrictModes no", "PidFile none", "PasswordAuthentication no",
        match_block("root", command, home)]))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    daemon = subprocess.Popen([binary, "-D", "-e", "-f", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, daemon, 10)
        yield Sshd(port, tmp_path / "client", tmp_path / "known_hosts", home)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        Lab(tmp_path / "lab").down()


def ssh_args(server: Sshd, *extra: str) -> list[str]:
    return ["ssh", "-p", str(server.port), "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "BatchMode=yes",
            *extra, "root@127.0.0.1"]


def login(server: Sshd) -> PtySession:
    """``ssh -tt`` by key, on an 80x24 pty."""
    return PtySession.start(ssh_args(server, "-tt", "-i", str(server.key),
                                     "-o", "IdentitiesOnly=yes"),
                            os.environ | {"TERM": "xterm-256color"})


def test_a_key_login_gets_the_wizard_at_its_size_a_password_login_is_refused(
        sshd: Sshd) -> None:
    first = login(sshd)
    try:
        first.wait_for(b"Crowbar Wizard")
        first.wait_for(b"Review & save")
        assert b"\x1b[25;" not in first.screen, "drawn at the client's 80x24"
        set_size(first.master, 30, 100)
        first.process.send_signal(signal.SIGWINCH)  # as the terminal tells its shell
        first.wait_for(b"\x1b[30;")  # the client's terminal grew: redrawn to its new size
    finally:
        first.close()
    refused = subprocess.run(ssh_args(sshd, "-o", "PubkeyAuthentication=no",
                                      "-o", "PreferredAuthentications=password"),
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_a_second_login_observes_and_a_dropped_controller_leaves_the_deploy_running(
        sshd: Sshd, tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab")
    lab.up(6, seed=8, network="127.79.64.0/24")
    journal = tmp_path / "lab" / "apply" / "lab" / "journal.db"
    first = login(sshd)
    second: PtySession | None = None
    try:
        first.wait_for(b"Review & save")
        first.read(1)
        second = login(sshd)
        second.wait_for(b"Observing (read-only)")
        second.keys(b"x")  # an edit key: it says why it does nothing
        second.wait_for(b"Read-only:")
        first.keys(b"\x0e")  # ctrl+n: Deploy, its first button focused
        first.wait_for(b"Deploy on the lab")
        first.read(1)
        first.keys(b"\r")
        deadline = time.monotonic() + 60
        while holder(journal) is None:
            assert time.monotonic() < deadline, bytes(first.screen[-800:])
            first.read(0.1)
        os.killpg(first.process.pid, signal.SIGKILL)  # the controller's link drops
        first.close()
        while holder(journal) is not None:  # the deploy goes on without it
            assert time.monotonic() < deadline + 120
            time.sleep(0.2)
        with Journal.open(journal, lock=False) as reader:
            assert {state for state, _ in reader.states().values()} == {"ready"}
            assert len(reader.states()) == 7, "6 nodes and the admin node"
        second.close()
        second = login(sshd)  # comes back: control is free again, the deploy shown
        second.keys(b"\x0e")
        second.wait_for(b"7 ready")  # 6 nodes and the admin node
    finally:
        first.close()
        if second is not None:
            second.close()


def test_f2_takes_control_over_and_the_other_session_observes(sshd: Sshd) -> None:
    first = login(sshd)
    second: PtySession | None = None
    try:
        first.wait_for(b"Review & save")
        first.read(1)
        second = login(sshd)
        second.wait_for(b"Observing (read-only)")
        second.read(1)
        second.keys(b"\x1bOQ")  # F2
        second.wait_for(b"Take control from root")
        second.keys(b"\r")  # the focused button: Take control
        second.wait_for(b"you have control")
        first.wait_for(b"another session")  # its notice (wrapped in a toast)
        first.wait_for(b"Observing (read-only)")
        assert first.process.poll() is None and second.process.poll() is None
    finally:
        first.close()
        if second is not None:
            second.close()
