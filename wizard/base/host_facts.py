"""What an operator checks before trusting a login: this machine's addresses and the
fingerprints of its SSH host keys (as ``ssh-keygen -l`` prints them)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

SSH_DIR = Path("/etc/ssh")


def addresses() -> list[str]:
    """``IFACE ADDRESS/PREFIX`` for every address but loopback's."""
    try:
        out = subprocess.run(["ip", "-j", "address", "show"], capture_output=True, text=True,
                             timeout=5, check=True).stdout
        interfaces = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    return [f"{each['ifname']} {info['local']}/{info['prefixlen']}"
            for each in interfaces if each.get("ifname") != "lo"
            for info in each.get("addr_info", [])
            if info.get("scope") != "link" and "local" in info]


def fingerprint(public_key: str) -> str:
    """``SHA256:...`` of an OpenSSH public key line."""
    blob = base64.b64decode(public_key.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def host_keys(directory: Path = SSH_DIR) -> list[str]:
    """``TYPE SHA256:...`` for each SSH host key of this machine."""
    keys = []
    for path in sorted(directory.glob("ssh_host_*_key.pub")):
        try:
            line = path.read_text()
            kind = path.name.removeprefix("ssh_host_").removesuffix("_key.pub").upper()
            keys.append(f"{kind} {fingerprint(line)}")
        except (OSError, ValueError, IndexError):
            continue
    return keys
