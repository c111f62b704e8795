"""Checkers from Debian packages that must not be installed here, unpacked into a cache.

chrony's package conflicts with the machine's own time daemon (systemd-timesyncd):
installing it to check a chrony.conf would change how this machine keeps time. Its .deb
is fetched with apt and unpacked instead; the binary runs from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "crowbar-wizard" / "test-tools"


def unpacked(package: str, binary: str) -> Path:
    """``binary`` (an absolute path inside ``package``), from the package unpacked into the
    cache on first use; raises ``RuntimeError`` saying why when apt cannot fetch it."""
    target = cache_root() / package
    found = target / binary.lstrip("/")
    if found.is_file():
        return found
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{package}-", dir=target.parent))
    try:
        fetched = subprocess.run(["apt-get", "download", package], cwd=work,
                                 capture_output=True, text=True, timeout=300, check=False)
        debs = sorted(work.glob(f"{package}_*.deb"))
        if fetched.returncode != 0 or not debs:
            raise RuntimeError(f"apt-get download {package} failed: {fetched.stderr.strip()} "
                               "(./dev deps runs apt-get update when apt has no lists)")
        root = work / "root"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True, timeout=120)
        try:
            root.rename(target)  # another test run may have unpacked it meanwhile: fine
        except OSError:
            if not found.is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return found
