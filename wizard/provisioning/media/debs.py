"""Debian packages as the image builder uses them: resolved and fetched by apt, read by Python.

apt resolves which packages (and versions) the image needs and fetches them from the
mirror the admin node already uses, into a cache kept across builds; each file is checked
against the SHA-256 apt's signed index gives. Packages are never installed: their data
archives are read here, taking only the files the image needs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import re
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_URI_LINE = re.compile(
    r"^'(?P<uri>[^']+)' (?P<file>\S+) (?P<size>\d+) SHA256:(?P<sha256>[0-9a-f]{64})$")
APT_QUIET = ["-o", "APT::Sandbox::User=root", "-q"]


class DebError(Exception):
    """apt could not resolve or fetch a package, or a file is not the package apt named."""


@dataclass(frozen=True)
class Package:
    """One package file as apt's index names it."""

    name: str
    file: str
    size: int
    sha256: str

    @property
    def version(self) -> str:
        return self.file.split("_")[1].replace("%3a", ":")


def closure(roots: list[str], keep: Callable[[str], bool]) -> list[str]:
    """``roots`` and every package they depend on (not recommend) that ``keep`` takes."""
    result = _apt(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                   "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
                   "--no-pre-depends", *roots])
    names = {line for line in result.splitlines()
             if line and not line.startswith((" ", "<"))}
    missing = [root for root in roots if root not in names]
    if missing:
        raise DebError(f"apt knows no package {', '.join(missing)}: run 'apt-get update'")
    return sorted(name for name in names if name in roots or keep(name))


def resolve(names: list[str]) -> list[Package]:
    """The package files apt would fetch for ``names`` (its candidate versions)."""
    result = _apt(["apt-get", *APT_QUIET, "download", "--print-uris", *names])
    packages = []
    for line in result.splitlines():
        match = _URI_LINE.match(line.strip())
        if match:
            file = match["file"]
            packages.append(Package(file.split("_")[0], file, int(match["size"]),
                                    match["sha256"]))
    found = {package.name for package in packages}
    missing = sorted(set(names) - found)
    if missing:
        raise DebError(f"apt has no download for {', '.join(missing)}")
    return sorted(packages, key=lambda package: package.name)


def fetch(packages: list[Package], cache: Path, progress: Callable[[str], None]) -> None:
    """Put every package file into ``cache`` (those there already and intact are kept)."""
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [package for package in packages if not _intact(cache / package.file, package)]
    if wanted:
        megabytes = sum(package.size for package in wanted) / 1e6
        progress(f"downloading {len(wanted)} packages ({megabytes:.0f} MB) from the mirror")
        _apt(["apt-get", *APT_QUIET, "download", *(f"{p.name}={p.version}" for p in wanted)],
             cwd=cache)
    for package in wanted:
        if not _intact(cache / package.file, package):
            raise DebError(f"{package.file}: not the file apt's index names (SHA-256 differs)")


def _intact(path: Path, package: Package) -> bool:
    try:
        if path.stat().st_size != package.size:
            return False
    except FileNotFoundError:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() == package.sha256


def _apt(command: list[str], cwd: Path | None = None) -> str:
    env = os.environ | {"LC_ALL": "C"}
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    except FileNotFoundError:
        raise DebError(f"{command[0]} is not here: the discovery image is built from Debian "
                       "packages on a Debian admin node") from None
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()
        raise DebError(f"{' '.join(command[:2])} failed: {detail[-1] if detail else '?'}")
    return result.stdout


# --- reading a .deb -----------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A file or link in a package's data archive (``path`` without the leading ``./``)."""

    path: str
    link: str | None
    data: bytes | None


def members(deb: Path, wanted: Callable[[str], object]) -> Iterator[Member]:
    """The data-archive members of ``deb`` whose path ``wanted`` takes: regular files with
    their bytes, symbolic links with their target."""
    with tarfile.open(fileobj=_data_archive(deb), mode="r|") as archive:
        for info in archive:
            path = info.name.removeprefix("./")
            if not wanted(path):
                continue
            if info.issym():
                yield Member(path, info.linkname, None)
            elif info.isfile():
                extracted = archive.extractfile(info)
                assert extracted is not None
                yield Member(path, None, extracted.read())


def _data_archive(deb: Path) -> io.BufferedIOBase:
    """The decompressed ``data.tar`` stream of a .deb (an ar archive)."""
    file = open(deb, "rb")  # noqa: SIM115 - handed to the stream that reads it
    if file.read(8) != b"!<arch>\n":
        file.close()
        raise DebError(f"{deb.name} is not a Debian package")
    while header := file.read(60):
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58])
        if name.startswith("data.tar"):
            body = io.BufferedReader(_Window(file, size))
            if name == "data.tar.xz":
                return lzma.LZMAFile(body)
            if name == "data.tar.gz":
                return gzip.GzipFile(fileobj=body)
            if name == "data.tar":
                return body
            file.close()
            raise DebError(f"{deb.name}: {name} is a compression this builder does not read")
        file.seek(size + size % 2, os.SEEK_CUR)
    file.close()
    raise DebError(f"{deb.name} has no data archive")


class _Window(io.RawIOBase):
    """``size`` bytes of ``file`` from where it stands."""

    def __init__(self, file: io.BufferedReader, size: int):
        self._file = file
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        count = self._file.readinto(memoryview(buffer)[:min(len(buffer), self._left)])
        self._left -= count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()
