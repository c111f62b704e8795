"""Whether the package mirror lists the Chef client the installers install.

Every installer installs chef-client from the deployment's own mirror
(``provisioning.mirror``), as the package :data:`CHEF_PACKAGE`, when a Chef server is
configured. Debian itself has no such package: a plain mirror of it leaves every node
without its Chef client, which the node reports only at the end of its install. So
``pxe preflight`` asks the mirror's package indexes first, as the installed system's apt or
dnf reads them:

- Debian and Ubuntu: ``dists/<suite>/<component>/binary-amd64/Packages.xz`` (else
  ``.gz``, else plain) for each component the installed system's sources list
  (:data:`APT_COMPONENTS`);
- Rocky and Alma: each repository's ``repodata/repomd.xml`` (:data:`RPM_REPOS`, as the
  kickstart names them), then the ``primary`` index it points to.

The mirror is asked directly, as the nodes ask it (no proxy from the environment), and
what it answers is read with care: files as stored (no content coding), streamed and
bounded (:data:`MAX_INDEX_BYTES` as sent, :data:`MAX_UNPACKED_BYTES` unpacked), each request
with a timeout and the whole check within a deadline; a mirror that cannot be asked is a
:class:`MirrorError` saying why in one line.
"""

from __future__ import annotations

import bz2
import lzma
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from typing import Protocol

import httpx

from wizard.answers import OS_FAMILIES

CHEF_PACKAGE = "chef"
"""The package every installer template installs (the tests check they agree)."""
APT_COMPONENTS = {"debian": ("main",), "ubuntu": ("main", "restricted", "universe", "multiverse")}
"""What the installed system's apt reads: d-i's apt-setup enables main (non-free-firmware,
also enabled, holds firmware only); subiquity writes all four of Ubuntu's."""
APT_INDEXES = ("Packages.xz", "Packages.gz", "Packages")
"""A component's package index, in the order asked for (apt's own preference)."""
RPM_REPOS = ("BaseOS", "AppStream")
"""The repositories the kickstart installs from (``<mirror>/<repo>/x86_64/os``)."""
TIMEOUT = 10.0
"""Seconds to connect, and between two pieces of an answer."""
DEADLINE = 120.0
"""Seconds the whole check may take (Ubuntu's universe index is ~20 MB)."""
MAX_INDEX_BYTES = 128 * 1024 * 1024
"""An index as downloaded: Debian's main Packages is ~10 MB as .xz, ~50 MB plain."""
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
"""An index unpacked, read as it streams (a small archive must not unpack without end)."""
MAX_REPOMD_BYTES = 1024 * 1024
_STEP = 1024 * 1024
"""The most one piece of an archive unpacks to at a time."""
_REPO_NS = "{http://linux.duke.edu/metadata/repo}"


class MirrorError(Exception):
    """The mirror could not be asked: unreachable, an error answer, no index, too big."""


class MirrorUnsupported(MirrorError):
    """The mirror is fine as far as anyone knows, but this check cannot read it."""


class _Missing(Exception):
    """An index the mirror does not have (404)."""


class _Decompressor(Protocol):
    """xz's or bzip2's: what it has not unpacked yet it keeps (``needs_input`` is false)."""

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


def find_package(mirror: str, os_id: str, package: str = CHEF_PACKAGE, *,
                 timeout: float = TIMEOUT, deadline: float = DEADLINE) -> str | None:
    """The URL of an index of ``mirror`` that lists ``package`` for ``os_id``, or None
    when none of the indexes the installed system reads lists it. Raises
    :class:`MirrorError`."""
    base = mirror.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise MirrorUnsupported(f"{base.split(':', 1)[0]} mirrors are not asked")
    family, release = OS_FAMILIES[os_id]
    fetch = _Fetch(httpx.Client(timeout=timeout, follow_redirects=True, trust_env=False),
                   time.monotonic() + deadline, deadline)
    with fetch.client:
        if family != "rhel":
            return _apt_lists(fetch, base, release, APT_COMPONENTS[family],
                              f"\nPackage: {package}\n".encode())
        for repo in RPM_REPOS:
            primary = _primary(fetch, f"{base}/{repo}/x86_64/os")
            if _lists(fetch, primary, f"<name>{package}</name>".encode()):
                return primary
        return None


def searched(os_id: str) -> str:
    """Where :func:`find_package` looks for ``os_id``, in words."""
    family, release = OS_FAMILIES[os_id]
    if family == "rhel":
        return " and ".join(RPM_REPOS)
    return f"dists/{release}/{','.join(APT_COMPONENTS[family])}/binary-amd64"


class _Fetch:
    """The mirror's answers as streams, within one deadline for the whole check."""

    def __init__(self, client: httpx.Client, end: float, deadline: float):
        self.client = client
        self._end = end
        self._deadline = deadline

    def stream(self, url: str, limit: int) -> Iterator[bytes]:
        """``url``'s body, piece by piece; :class:`_Missing` for a 404."""
        try:
            with self.client.stream("GET", url,
                                    headers={"Accept-Encoding": "identity"}) as response:
                if response.status_code == 404:
                    raise _Missing(url)
                if response.status_code != 200:
                    raise MirrorError(f"{url} answered {response.status_code} "
                                      f"{response.reason_phrase}")
                size = 0
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise MirrorError(f"{url} is larger than {limit} bytes")
                    if time.monotonic() > self._end:
                        raise MirrorError(f"reading {url} took past the check's "
                                          f"{self._deadline:g} s")
                    yield chunk
        except httpx.HTTPError as exc:
            raise MirrorError(f"{url}: {str(exc) or type(exc).__name__}") from None


def _apt_lists(fetch: _Fetch, base: str, suite: str, components: tuple[str, ...],
               needle: bytes) -> str | None:
    """The first component index that lists ``needle`` (a ``Package:`` line)."""
    indexes = 0
    for component in components:
        directory = f"{base}/dists/{suite}/{component}/binary-amd64"
        for name in APT_INDEXES:
            try:
                if _lists(fetch, f"{directory}/{name}", needle):
                    return f"{directory}/{name}"
            except _Missing:
                continue
            indexes += 1
            break
    if not indexes:
        raise MirrorError(f"{base}/dists/{suite}/ has no package index "
                          f"({' or '.join(APT_INDEXES)}) for {', '.join(components)}")
    return None


def _primary(fetch: _Fetch, repo: str) -> str:
    """The URL of ``repo``'s primary index, as its ``repodata/repomd.xml`` names it."""
    url = f"{repo}/repodata/repomd.xml"
    try:
        text = b"".join(fetch.stream(url, MAX_REPOMD_BYTES))
    except _Missing:
        raise MirrorError(f"{url} is missing: {repo} is not a repository") from None
    try:
        location = ET.fromstring(text).find(
            f"{_REPO_NS}data[@type='primary']/{_REPO_NS}location")
    except ET.ParseError as exc:
        raise MirrorError(f"{url} is not XML: {exc}") from None
    href = location.get("href", "") if location is not None else ""
    if not href or "://" in href or href.startswith("/") or ".." in href.split("/"):
        raise MirrorError(f"{url} names no primary index in the repository")
    return f"{repo}/{href}"


def _lists(fetch: _Fetch, url: str, needle: bytes) -> bool:
    """Whether the index at ``url`` (unpacked as its name says) holds ``needle``; it is
    read only as far as it takes to find it."""
    seen, tail = 0, b"\n"
    for piece in _unpacked(fetch.stream(url, MAX_INDEX_BYTES), url):
        seen += len(piece)
        if seen > MAX_UNPACKED_BYTES:
            raise MirrorError(f"{url} unpacks to more than {MAX_UNPACKED_BYTES} bytes")
        window = tail + piece
        if needle in window:
            return True
        tail = window[-len(needle):]
    return False


def _unpacked(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    """``chunks`` unpacked by the compression ``url``'s name ends in, a bounded piece at a
    time."""
    decompressor: _Decompressor
    if url.endswith(".xz"):
        decompressor = lzma.LZMADecompressor()
    elif url.endswith(".bz2"):
        decompressor = bz2.BZ2Decompressor()
    elif url.endswith(".gz"):
        return _inflated(chunks, url)
    elif url.endswith((".zst", ".zck")):
        raise MirrorUnsupported(f"{url} is compressed in a way this check cannot read")
    else:
        return chunks
    return _decompressed(chunks, decompressor, url)


def _decompressed(chunks: Iterator[bytes], decompressor: _Decompressor,
                  url: str) -> Iterator[bytes]:
    """xz or bzip2, a bounded piece at a time."""
    try:
        for chunk in chunks:
            yield decompressor.decompress(chunk, _STEP)
            while not decompressor.needs_input and not decompressor.eof:
                yield decompressor.decompress(b"", _STEP)
    except (lzma.LZMAError, OSError, EOFError) as exc:
        raise MirrorError(f"{url} cannot be unpacked: {exc}") from None


def _inflated(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    """gzip, a bounded piece at a time: zlib hands back the input it has not unpacked yet."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        for chunk in chunks:
            data = chunk
            while data:
                yield decompressor.decompress(data, _STEP)
                data = decompressor.unconsumed_tail
        yield decompressor.flush()
    except zlib.error as exc:
        raise MirrorError(f"{url} cannot be unpacked: {exc}") from None
