"""Tiny package mirrors on disk, laid out and compressed as real ones, for the mirror check.

A Debian or Ubuntu mirror is ``dists/<suite>/<component>/binary-amd64/Packages[.xz|.gz]``
with real stanzas; a Rocky or Alma mirror is ``<repo>/x86_64/os/repodata/repomd.xml``
naming a gzipped ``primary.xml.gz`` in createrepo's namespaces. Each holds packages whose
names or fields come close to ``chef`` (``ruby-chef-config``, ``chef-zero``, a
``Depends: chef``), so only a package named exactly ``chef`` counts. Serve the directory
with :func:`serve` (python's own ``http.server``, in a process of its own).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import subprocess
import sys
from pathlib import Path

from tests.terminal import wait_listening
from wizard.lab.goiardi import free_port

NEAR_MISSES = ["ruby-chef-config", "chef-zero", "ohai"]
"""Packages every fake mirror has: their names or fields mention chef."""


def _stanza(name: str) -> str:
    return (f"Package: {name}\nSource: chef\nVersion: 18.2.7-1\nArchitecture: all\n"
            f"Maintainer: Debian Ruby Team <ruby@example.org>\nDepends: ruby, chef (>= 18)\n"
            f"Filename: pool/main/c/chef/{name}_18.2.7-1_all.deb\nSize: 1024\n"
            f"Description: {name}, near chef\n")


def apt_component(root: Path, suite: str, component: str, packages: list[str],
                  index: str = "Packages.xz") -> Path:
    """``packages`` as a component's index, compressed as ``index`` is named."""
    directory = root / "dists" / suite / component / "binary-amd64"
    directory.mkdir(parents=True, exist_ok=True)
    text = "\n".join(_stanza(name) for name in packages).encode()
    if index.endswith(".xz"):
        text = lzma.compress(text)
    elif index.endswith(".gz"):
        text = gzip.compress(text)
    (directory / index).write_bytes(text)
    return directory / index


def rpm_repo(root: Path, repo: str, packages: list[str]) -> Path:
    """A repository of ``packages``: repomd.xml and the primary index it names."""
    repodata = root / repo / "x86_64" / "os" / "repodata"
    repodata.mkdir(parents=True, exist_ok=True)
    entries = "".join(
        f'<package type="rpm"><name>{name}</name><arch>noarch</arch>'
        f'<version epoch="0" ver="18.2.7" rel="1.el9"/><summary>{name}, near chef</summary>'
        f'<format><rpm:requires><rpm:entry name="chef"/></rpm:requires></format></package>'
        for name in packages)
    primary = gzip.compress(
        (f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/'
         f'metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" '
         f'packages="{len(packages)}">{entries}</metadata>\n').encode())
    digest = hashlib.sha256(primary).hexdigest()
    (repodata / f"{digest}-primary.xml.gz").write_bytes(primary)
    (repodata / "repomd.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/'
        'repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm"><revision>1</revision>'
        f'<data type="primary"><checksum type="sha256">{digest}</checksum>'
        f'<location href="repodata/{digest}-primary.xml.gz"/></data></repomd>\n')
    return repodata


def serve(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``python -m http.server`` on a free port of 127.0.0.1 serving ``directory``, once it
    listens: the process and its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
         str(directory), str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, process)
    return process, port
