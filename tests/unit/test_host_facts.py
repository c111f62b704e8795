"""The addresses and SSH host key fingerprints F1 shows."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from wizard.base.host_facts import fingerprint, host_keys


def test_fingerprints_are_what_ssh_keygen_prints(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (./dev installs openssh-client)")
    for kind in ("ed25519", "rsa"):
        key = tmp_path / f"ssh_host_{kind}_key"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
        listed = subprocess.run(["ssh-keygen", "-lf", f"{key}.pub"], capture_output=True,
                                text=True, check=True).stdout.split()[1]
        assert fingerprint(Path(f"{key}.pub").read_text()) == listed
    (tmp_path / "ssh_host_dsa_key.pub").write_text("not a key\n")
    found = host_keys(tmp_path)
    assert [line.split()[0] for line in found] == ["ED25519", "RSA"], "bad files skipped"

