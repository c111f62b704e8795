"""Build the discovery image (``linux`` and ``initrd``) from the admin node's Debian mirror.

The image is Debian's own kernel with an initramfs of Debian's static busybox, ipmitool,
dmidecode and ethtool (with the shared libraries they need), the kernel modules for common
server NICs, disks, bonding, VLANs and in-band IPMI, and the provisioner barclamp's
``discovery/init.sh``. Nothing comes from anywhere but the packages apt fetches.

Builds are reproducible (:mod:`.cpio`) and cached: an image is named by the SHA-256 of the
package files it is made of and of this builder's own sources, so a build with the same
packages and builder is a copy from the cache, and a new kernel in the mirror is a new image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from wizard.base.ownedfs import copy_file, real_dir
from wizard.provisioning.media import cpio, debs, elf
from wizard.provisioning.media.debs import DebError, Package

TOOLS = {"ipmitool": "ipmitool", "dmidecode": "dmidecode", "ethtool": "ethtool"}
"""The programs the image carries besides busybox (in ``usr/bin``), by package."""
BUSYBOX = ("busybox-static", "busybox")
KERNEL_META = "linux-image-amd64"
LIB_DIRS = ("lib/x86_64-linux-gnu/", "usr/lib/x86_64-linux-gnu/")
LOADER = "ld-linux-x86-64.so.2"
MODULES = {
    # NICs: virtual, then Intel, Broadcom, Mellanox, QLogic, Emulex, Realtek, VMware
    "virtio_net": "", "virtio_pci": "", "e1000": "", "e1000e": "", "igb": "", "igc": "",
    "ixgbe": "", "i40e": "", "ice": "", "tg3": "", "bnx2": "", "bnx2x": "", "bnxt_en": "",
    "mlx4_en": "", "mlx5_core": "", "qede": "", "be2net": "", "r8169": "", "vmxnet3": "",
    # disks
    "virtio_blk": "", "virtio_scsi": "", "ahci": "", "ata_piix": "", "nvme": "", "sd_mod": "",
    "megaraid_sas": "", "mpt3sas": "", "hpsa": "", "smartpqi": "", "aacraid": "",
    # the node's network as planned (no bond until one is asked for), and the in-band BMC
    "bonding": "max_bonds=0", "8021q": "", "ipmi_si": "", "ipmi_devintf": "", "ipmi_ssif": "",
}
"""Kernel modules the init loads at boot (with these parameters), with what they depend on."""
REQUIRED_MODULES = {"virtio_net", "bonding", "8021q", "ipmi_si", "ipmi_devintf"}
"""Modules without which the image is refused; any other one a kernel lacks is skipped."""
SCRIPTS = {"init": "init.sh", "etc/udhcpc.sh": "udhcpc.sh"}
KEPT_IMAGES = 3
"""Images the cache keeps (a kernel update makes a new one; an older one may be in use)."""


@dataclass(frozen=True)
class Image:
    """A built image in the cache: its two files and what it is made of."""

    key: str
    directory: Path
    info: dict[str, object]

    @property
    def linux(self) -> Path:
        return self.directory / "linux"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd"


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/crowbar-wizard`` (``~/.cache/crowbar-wizard``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crowbar-wizard"


def packages() -> list[Package]:
    """The package files the image is made of, at the mirror's candidate versions."""
    kernel = _kernel_package()
    libraries = debs.closure(sorted(TOOLS), keep=lambda name: name.startswith("lib")
                             and name not in ("libc-bin", "libc-l10n"))
    return debs.resolve(sorted({kernel, BUSYBOX[0], *libraries}))


def _kernel_package() -> str:
    for name in debs.closure([KERNEL_META], keep=lambda name: name.startswith("linux-image-")):
        if name != KERNEL_META and name.endswith("-amd64") and "unsigned" not in name:
            return name
    raise DebError(f"{KERNEL_META} depends on no kernel image here")


def image_key(package_files: list[Package]) -> str:
    """The image's name: its packages and this builder, hashed."""
    digest = hashlib.sha256()
    for package in sorted(package_files, key=lambda package: package.file):
        digest.update(f"{package.file} {package.sha256}\n".encode())
    for source in _builder_sources():
        digest.update(source)
    return digest.hexdigest()[:24]


def _builder_sources() -> list[bytes]:
    here = Path(__file__).parent
    own = [(here / name).read_bytes() for name in ("build.py", "cpio.py", "debs.py", "elf.py")]
    return own + [_script(name) for name in sorted(SCRIPTS.values())] + [
        json.dumps(MODULES, sort_keys=True).encode()]


def _script(name: str) -> bytes:
    return files("wizard.barclamps").joinpath("provisioner", "discovery", name).read_bytes()


def build(cache: Path, progress: Callable[[str], None], *, rebuild: bool = False) -> Image:
    """The image for the mirror's current packages: from the cache, or built into it."""
    progress("resolving packages with apt")
    package_files = packages()
    key = image_key(package_files)
    target = cache / "images" / key
    if not rebuild and (target / "image.json").is_file():
        progress(f"image {key} is in the cache")
        return Image(key, target, json.loads((target / "image.json").read_text()))
    debs.fetch(package_files, cache / "debs", progress)
    by_name = {package.name: cache / "debs" / package.file for package in package_files}
    entries: list[cpio.Entry] = []
    progress("unpacking the kernel and its modules")
    kernel_package = next(p for p in package_files if p.name.startswith("linux-image-"))
    linux, kernel_version, modules, missing = _kernel(by_name[kernel_package.name])
    entries += modules
    progress("unpacking busybox, ipmitool, dmidecode, ethtool and their libraries")
    entries += _programs(by_name)
    entries += [cpio.regular(path, _script(name), executable=True)
                for path, name in SCRIPTS.items()]
    info: dict[str, object] = {
        "key": key, "kernel": kernel_version,
        "packages": {package.name: package.version for package in package_files},
        "skipped_modules": missing,
    }
    entries.append(cpio.regular("etc/crowbar-image.json",
                                json.dumps(info, indent=1, sort_keys=True).encode()))
    progress(f"writing the initramfs ({len(entries)} files)")
    initrd = cpio.archive(entries)
    info |= {"linux_bytes": len(linux), "initrd_bytes": len(initrd),
             "initrd_sha256": hashlib.sha256(initrd).hexdigest(),
             "linux_sha256": hashlib.sha256(linux).hexdigest()}
    _store(target, {"linux": linux, "initrd": initrd,
                    "image.json": json.dumps(info, indent=1, sort_keys=True).encode() + b"\n"})
    prune_cache(cache, target, {package.file for package in package_files})
    return Image(key, target, info)


def prune_cache(cache: Path, kept: Path, files: set[str]) -> None:
    """Keep the cache from growing with every kernel update: the newest images (this one
    among them) and the package files of this one."""
    images = sorted((path for path in (cache / "images").iterdir()
                     if path.is_dir() and not path.name.startswith(".")),
                    key=lambda path: path.stat().st_mtime, reverse=True)
    for old in [image for image in images if image != kept][KEPT_IMAGES - 1:]:
        shutil.rmtree(old, ignore_errors=True)
    for deb in (cache / "debs").glob("*.deb"):
        if deb.name not in files:
            deb.unlink(missing_ok=True)


def _store(target: Path, contents: dict[str, bytes]) -> None:
    """Write the image's files beside ``target`` and rename them into place at once."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, data in contents.items():
            (staging / name).write_bytes(data)
            os.chmod(staging / name, 0o644)
        os.chmod(staging, 0o755)
        if target.exists():  # a --rebuild, or another build of the same image just now
            shutil.rmtree(target)
        staging.rename(target)
    except OSError:
        if not (target / "image.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone when renamed


def _kernel(deb: Path) -> tuple[bytes, str, list[cpio.Entry], list[str]]:
    """The kernel, its version, the wanted modules (and a load list), modules it lacks."""
    infos: dict[str, tuple[str, list[str]]] = {}  # name: (path, depends)
    builtin: set[str] = set()
    kernel = b""
    for member in debs.members(deb, lambda path: path.endswith((".ko", "modules.builtin"))
                               or path.startswith("boot/vmlinuz-")):
        assert member.data is not None or member.link is not None
        if member.path.startswith("boot/vmlinuz-") and member.data:
            kernel, version = member.data, member.path.removeprefix("boot/vmlinuz-")
        elif member.path.endswith("modules.builtin") and member.data:
            builtin = {_module_name(line) for line in member.data.decode().split()}
        elif member.data:
            depends = elf.modinfo(member.data).get("depends", [""])[0]
            infos[_module_name(member.path)] = (member.path, [d for d in depends.split(",")
                                                              if d])
    if not kernel:
        raise DebError(f"{deb.name} holds no kernel")
    wanted = [name for name in MODULES if _module_name(name) in infos]
    missing = sorted(name for name in MODULES
                     if _module_name(name) not in infos and _module_name(name) not in builtin)
    lacking = sorted(set(missing) & REQUIRED_MODULES)
    if lacking:
        raise DebError(f"kernel {version} has no module {', '.join(lacking)}")
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or name not in infos:
            return
        for dependency in infos[name][1]:
            visit(_module_name(dependency))
        order.append(name)

    for name in wanted:
        visit(_module_name(name))
    paths = {infos[name][0] for name in order}
    entries = [cpio.regular(member.path, member.data or b"")
               for member in debs.members(deb, paths.__contains__)]
    params = {_module_name(name): value for name, value in MODULES.items()}
    load = "".join(f"{name} /{infos[name][0]} {params.get(name, '')}".rstrip() + "\n"
                   for name in order)
    entries.append(cpio.regular("etc/modules.load", load.encode()))
    return kernel, version, entries, missing


def _module_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".ko").replace("-", "_")


def _programs(by_name: dict[str, Path]) -> list[cpio.Entry]:
    """busybox, the tools and every shared library they need, in ``lib/x86_64-linux-gnu``."""
    entries: list[cpio.Entry] = []
    programs: list[bytes] = []
    for package, program in [BUSYBOX, *TOOLS.items()]:
        found = list(debs.members(by_name[package],
                                  re.compile(rf"(^|/)s?bin/{re.escape(program)}$").search))
        if not found or found[0].data is None:
            raise DebError(f"{package} has no program {program}")
        where = "bin" if package == BUSYBOX[0] else "usr/bin"  # the init runs /bin/busybox
        entries.append(cpio.regular(f"{where}/{program}", found[0].data, executable=True))
        programs.append(found[0].data)
    libraries = _library_index(by_name)
    placed: dict[str, bytes] = {}
    queue = [name for program in programs for name in elf.needed(program)]
    while queue:
        name = queue.pop()
        if name in placed:
            continue
        if name not in libraries:
            raise DebError(f"no package of the image holds {name}")
        placed[name] = libraries[name]
        queue += elf.needed(placed[name])
    entries += [cpio.regular(f"{LIB_DIRS[0]}{name}", data, executable=True)
                for name, data in placed.items()]
    entries.append(cpio.symlink(f"lib64/{LOADER}", f"/{LIB_DIRS[0]}{LOADER}"))
    return entries


def _library_index(by_name: dict[str, Path]) -> dict[str, bytes]:
    """Every shared library of the library packages by file name, links resolved."""
    data: dict[str, bytes] = {}
    links: dict[str, str] = {}
    for package, deb in sorted(by_name.items()):
        if not package.startswith("lib"):
            continue
        for member in debs.members(deb, lambda path: path.startswith(LIB_DIRS)
                                   and ".so" in path):
            name = member.path.rsplit("/", 1)[-1]
            if member.data is not None:
                data[name] = member.data
            elif member.link:
                links[name] = member.link.rsplit("/", 1)[-1]
    for name, target in links.items():
        for _ in range(8):  # a chain of links, never a loop
            if target in data:
                data.setdefault(name, data[target])
                break
            if target not in links:
                break
            target = links[target]
    return data


MISSING_HINT = "build it with: crowbar-wizard media build {directory}"


def installed(directory: Path) -> dict[str, object] | None:
    """What ``image.json`` says of the discovery image in ``DIR/media/discovery`` (None when
    there is no whole image)."""
    media = directory / "media" / "discovery"
    try:
        info = json.loads((media / "image.json").read_text())
    except (OSError, ValueError):
        return None
    whole = all((media / name).is_file() for name in ("linux", "initrd"))
    return info if whole and isinstance(info, dict) else None


def install(image: Image, directory: Path) -> Path:
    """Copy the image into ``DIR/media/discovery`` (what ``pxe serve`` serves)."""
    target = real_dir(directory / "media" / "discovery", directory)
    for name in ("linux", "initrd", "image.json"):
        copy_file(image.directory / name, target / name, 0o644)
    return target
