"""``crowbar-wizard ssh-setup``: what reaches sshd_config, read back by the real sshd.

Hostile values (a newline that would start a directive of its own, other control
characters) are refused with exit 2 and one line; awkward but honest ones (spaces, quotes,
backslashes, ``#``) are quoted so that ``sshd -t`` accepts the block, ``sshd -T`` reads
the ForceCommand back, and that command, run as sshd runs it (the user's shell with
``-c``), starts the wizard in the right directory.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from wizard.cli.main import main
from wizard.cli.ssh import check_block, match_block

AWKWARD = "it's a dir #1 \"x\" $HOME `id`; && \\"
"""A directory name that is legal but means something to sshd_config or to the shell."""


def sshd_binary() -> str:
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(binary).exists():
        if os.environ.get("CI"):
            pytest.fail("sshd is not installed (./dev installs openssh-server)")
        pytest.skip("sshd is not installed (./dev installs openssh-server)")
    return binary


@pytest.mark.parametrize(("option", "value"), [
    ("--directory", "/srv/crowbar\nForceCommand /bin/sh"),
    ("--directory", "/srv/crowbar\rPermitOpen any"),
    ("--directory", "/srv/\x1b[2Jcrowbar"),
    ("--command", "/usr/bin/crowbar-wizard\nForceCommand /bin/sh"),
    ("--command", "/usr/bin/crowbar-wizard\x00"),
    ("--command", "/usr/bin/crowbar-wizard\t--observe"),
])
def test_control_characters_are_refused_with_one_line(
        option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "crowbar-wizard.conf"
    assert main(["ssh-setup", "--user", "crowbar", option, value]) == 2
    assert main(["ssh-setup", "--user", "crowbar", option, value, "--write",
                 "--path", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    assert lines[0].startswith(f"ssh-setup: {option} ") and "control character" in lines[0]
    assert not target.exists(), "nothing written"


@pytest.mark.parametrize("command", ["'unbalanced", ""])
def test_a_command_that_is_no_command_line_is_refused(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ssh-setup", "--user", "crowbar", "--command", command]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "--command" in err


def test_paths_with_spaces_and_quotes_reach_the_shell_intact(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """sshd accepts the block written with --write; its ForceCommand, as ``sshd -T`` reads
    it, run by the user's shell, starts the wizard (a path with spaces and a quote) in the
    directory given (spaces, quotes, a backslash, ``#``, shell operators)."""
    sshd = sshd_binary()
    directory = tmp_path / AWKWARD
    directory.mkdir()
    bin_dir = tmp_path / "my bin's"
    bin_dir.mkdir()
    wizard = bin_dir / "crowbar wizard"
    report = tmp_path / "report"
    wizard.write_text(f"#!/bin/sh\npwd > {shlex.quote(str(report))}\n"
                      f"printf '%s\\n' \"$@\" >> {shlex.quote(str(report))}\n")
    wizard.chmod(0o755)
    conf = tmp_path / "sshd_config.d" / "crowbar-wizard.conf"
    command = shlex.join([str(wizard), "--observe", "two words"])
    assert main(["ssh-setup", "--user", "root", "--directory", str(directory),
                 "--command", command, "--write", "--path", str(conf)]) == 0, \
        capsys.readouterr().err
    block = conf.read_text()
    assert block == match_block("root", [str(wizard), "--observe", "two words"], directory)
    assert check_block(block).returncode == 0

    key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                   check=True, capture_output=True)
    config = tmp_path / "sshd_config"
    config.write_text(f"HostKey {key}\nPidFile none\nUsePAM no\nInclude {conf}\n")
    effective = subprocess.run([sshd, "-T", "-f", str(config), "-C",
                                "user=root,host=admin,addr=127.0.0.1"],
                               capture_output=True, text=True, check=True).stdout
    forced = [line.removeprefix("forcecommand ") for line in effective.splitlines()
              if line.startswith("forcecommand ")]
    assert len(forced) == 1
    assert "permitopen 127.0.0.1:8000" in effective.splitlines()
    shell = pwd.getpwnam("root").pw_shell or "/bin/sh"
    subprocess.run([shell, "-c", forced[0]], check=True, cwd="/", timeout=30)
    assert report.read_text().splitlines() == [str(directory), "--observe", "two words"]
