"""The provisioner's directory: everything dnsmasq and the HTTP service serve, written at once.

::

    DIR/.crowbar-wizard-pxe          marks a directory this tool wrote
    DIR/token.key                    the callback-token key (0600, kept across renders)
    DIR/dnsmasq/                     dnsmasq.conf, hosts/nodes (see wizard.provisioning.dnsmasq)
    DIR/tftp/                        boot loaders; pxelinux.cfg/default and 01-<mac> per node
    DIR/http/boot/<mac>.ipxe         each node's iPXE script as rendered (served live by state)
    DIR/http/boot/default.ipxe       what an unknown machine gets
    DIR/http/install/<node>.<file>   its installer's answer files (0600: they may hold secrets;
                                     one directory, not one per node: 10,000 directories cost
                                     more to create than the files in them)
    DIR/media/                       kernels and initrds the operator provides (never touched)

Generated parts (``tftp/pxelinux.cfg``, ``http``) are written beside the old ones and swapped
in by rename, so a failure leaves the previous render whole. The dnsmasq config goes through
:meth:`wizard.provisioning.dnsmasq.Dnsmasq.install` (checked by dnsmasq first) when dnsmasq is here.
Nothing is written through a symbolic link inside DIR (see :mod:`wizard.base.ownedfs`): a link
where a directory is written into is refused, one where a generated part or a boot loader
goes is replaced.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wizard.base.ownedfs import copy_file, read_text, real_dir, touch, write_new
from wizard.provisioning.render import (
    boot_loaders,
    boot_script,
    dnsmasq_config,
    install_files,
    pxelinux_name,
    reservations,
)
from wizard.provisioning.site import ProvisionerSite

MARKER = ".crowbar-wizard-pxe"
LOADER_SOURCES = {
    "undionly.kpxe": ("/usr/lib/ipxe/undionly.kpxe", "ipxe"),
    "ipxe.efi": ("/usr/lib/ipxe/ipxe.efi", "ipxe"),
    "lpxelinux.0": ("/usr/lib/PXELINUX/lpxelinux.0", "pxelinux"),
    "ldlinux.c32": ("/usr/lib/syslinux/modules/bios/ldlinux.c32", "syslinux-common"),
}
"""Boot loaders copied into the TFTP root: where Debian installs each, and its package."""


class TreeError(Exception):
    """The directory is not one this tool may write."""


@dataclass
class RenderSummary:
    """What a render wrote."""

    nodes: int = 0
    files: int = 0
    loaders: list[str] = field(default_factory=list)
    missing_loaders: list[str] = field(default_factory=list)


def token_key(directory: Path) -> bytes:
    """The directory's token key, made (0600) on first use."""
    path = directory / "token.key"
    try:
        return bytes.fromhex(read_text(path).strip())
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    write_new(path, key.hex() + "\n", 0o600)
    return key


def prepare(directory: Path) -> None:
    """Refuse a non-empty directory that this tool did not write; mark it as ours."""
    marker = directory / MARKER
    if directory.exists() and any(directory.iterdir()) and not os.path.lexists(marker):
        raise TreeError(f"{directory} holds files crowbar-wizard did not write; "
                        "give an empty or new directory")
    directory.mkdir(parents=True, exist_ok=True)
    touch(marker)  # a link there is refused
    for part in ("dnsmasq/hosts", "tftp"):
        real_dir(directory / part, directory)
    if not os.path.lexists(directory / "media"):  # a link to the images elsewhere is fine:
        (directory / "media").mkdir()              # media is only read


def render_tree(site: ProvisionerSite, directory: Path) -> RenderSummary:
    """Write boot scripts, install files, pxelinux configs and loaders into ``directory``.

    The dnsmasq config is not written here (see :func:`dnsmasq_files`).
    """
    summary = RenderSummary(nodes=len(site.nodes))
    tftp = real_dir(directory / "tftp", directory)
    http = _fresh(directory / "http")
    pxelinux = _fresh(tftp / "pxelinux.cfg")
    try:
        _render_into(site, http, pxelinux, summary)
    except BaseException:
        shutil.rmtree(http, ignore_errors=True)
        shutil.rmtree(pxelinux, ignore_errors=True)
        raise
    _swap(http, directory / "http")
    _swap(pxelinux, directory / "tftp" / "pxelinux.cfg")
    summary.loaders, summary.missing_loaders = _copy_loaders(site, tftp)
    return summary


def tree_files(site: ProvisionerSite) -> Iterator[tuple[str, str, str, bool]]:
    """Every generated file: (``http`` or ``pxelinux``, path inside it, text, private).

    pxelinux configs are made only when BIOS machines boot pxelinux (``bios_boot``).
    """
    pxelinux = site.attributes["bios_boot"] == "pxelinux"
    state = None  # a render is the deployment's start: every node is to be installed
    for name, node in site.nodes.items():
        for mac in node.macs:
            yield "http", f"boot/{mac}.ipxe", boot_script(site, mac, state), False
            if pxelinux:
                yield ("pxelinux", pxelinux_name(mac),
                       boot_script(site, mac, state, "pxelinux"), False)
        for file, text in install_files(site, node).items():
            yield "http", f"install/{name}.{file}", text, True
    unknown = "00:00:00:00:00:00"
    yield "http", "boot/default.ipxe", boot_script(site, unknown, None), False
    if pxelinux:
        yield "pxelinux", "default", boot_script(site, unknown, None, "pxelinux"), False


def _render_into(site: ProvisionerSite, http: Path, pxelinux: Path,
                 summary: RenderSummary) -> None:
    roots = {"http": str(http), "pxelinux": str(pxelinux)}
    os.mkdir(f"{http}/boot")
    os.mkdir(f"{http}/install")
    for root, path, text, private in tree_files(site):
        _write(f"{roots[root]}/{path}", text, private=private)
        summary.files += 1


def dnsmasq_files(site: ProvisionerSite, directory: Path) -> tuple[str, str]:
    """The dnsmasq config and reservations for a tree in ``directory``."""
    config = dnsmasq_config(site, dnsmasq_dir=directory / "dnsmasq",
                            tftp_root=directory / "tftp")
    return config, reservations(site)


def _fresh(target: Path) -> Path:
    """A new, unpredictably named directory beside ``target`` to build its next version in."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new.", dir=target.parent))
    os.chmod(staging, 0o755)
    return staging


def _swap(staging: Path, target: Path) -> None:
    """Put ``staging`` in place of ``target``: whatever is there, a link too, is moved aside
    (never followed) and removed."""
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    try:
        if os.path.lexists(target):
            target.rename(old / target.name)
        staging.rename(target)
    finally:
        shutil.rmtree(old, ignore_errors=True)  # removes a link, not what it points to


def _write(path: str, text: str, *, private: bool = False) -> None:
    write_new(Path(path), text, 0o600 if private else 0o644)


def _copy_loaders(site: ProvisionerSite, tftp: Path) -> tuple[list[str], list[str]]:
    wanted = set(boot_loaders(site).values())
    if "lpxelinux.0" in wanted:
        wanted.add("ldlinux.c32")
    copied, missing = [], []
    for name in sorted(wanted):
        source, package = LOADER_SOURCES[name]
        target = tftp / name
        if target.is_file() and not target.is_symlink():  # the operator's own build stays
            copied.append(name)
        elif Path(source).exists():
            copy_file(Path(source), target, 0o644)  # a link there is replaced, not followed
            copied.append(name)
        else:
            missing.append(f"{name} (Debian package {package})")
    return copied, missing
