"""The discovery image builder's parts, read back by the real tools: cpio archives by GNU
cpio, ELF files as binutils writes and reads them, Debian packages as dpkg-deb builds them."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import need
from wizard.provisioning.media import cpio, debs, elf
from wizard.provisioning.media.build import KEPT_IMAGES, prune_cache
from wizard.provisioning.media.debs import DebError


def test_initramfs_is_what_gnu_cpio_extracts_whatever_the_entry_order(tmp_path: Path) -> None:
    need("cpio")
    entries = [cpio.regular("usr/bin/tool", b"#!/bin/sh\necho hi\n", executable=True),
               cpio.regular("etc/odd", b"123"),  # not a multiple of 4: padded
               cpio.symlink("lib64/ld.so", "/lib/x86_64-linux-gnu/ld.so"),
               cpio.directory("run")]
    data = cpio.archive(entries)
    assert cpio.archive(list(reversed(entries))) == data  # one order, one timestamp: same bytes
    out = tmp_path / "out"
    out.mkdir()
    listed = subprocess.run(["cpio", "-i", "--make-directories", "--no-absolute-filenames",
                             "--quiet"], input=gzip.decompress(data), cwd=out,
                            capture_output=True, check=True)
    assert listed.returncode == 0
    assert (out / "usr/bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.access(out / "usr/bin/tool", os.X_OK)
    assert (out / "etc/odd").read_bytes() == b"123"
    assert not os.access(out / "etc/odd", os.X_OK)
    assert os.readlink(out / "lib64/ld.so") == "/lib/x86_64-linux-gnu/ld.so"
    assert (out / "run").is_dir() and (out / "usr").is_dir()  # parents made by the archive
    table = subprocess.run(["cpio", "-t", "-v", "--quiet"], input=gzip.decompress(data),
                           capture_output=True, check=True).stdout.decode()
    assert {tuple(line.split()[2:4]) for line in table.splitlines()} == {("root", "root")}


def test_needed_libraries_are_the_ones_readelf_names() -> None:
    need("readelf")
    program = Path("/bin/ls").resolve()
    dynamic = subprocess.run(["readelf", "-d", str(program)], capture_output=True, text=True,
                             check=True).stdout
    expected = [line.split("[")[1].split("]")[0] for line in dynamic.splitlines()
                if "(NEEDED)" in line]
    assert expected and elf.needed(program.read_bytes()) == expected


def test_modinfo_is_read_from_the_section_binutils_wrote(tmp_path: Path) -> None:
    need("objcopy")
    need("as")
    (tmp_path / "empty.s").write_text(".text\n")
    subprocess.run(["as", "-o", tmp_path / "m.o", tmp_path / "empty.s"], check=True)
    (tmp_path / "modinfo").write_bytes(b"alias=pci:v00008086d*\0depends=mdio,libphy\0"
                                       b"alias=pci:v000014E4d*\0name=mine\0")
    subprocess.run(["objcopy", "--add-section", f".modinfo={tmp_path / 'modinfo'}",
                    tmp_path / "m.o", tmp_path / "mine.ko"], check=True)
    info = elf.modinfo((tmp_path / "mine.ko").read_bytes())
    assert info["depends"] == ["mdio,libphy"] and info["name"] == ["mine"]
    assert info["alias"] == ["pci:v00008086d*", "pci:v000014E4d*"]
    with pytest.raises(elf.ElfError):
        elf.modinfo(b"#!/bin/sh\n")


@pytest.mark.parametrize("compression", ["xz", "gzip", "none"])
def test_package_members_are_read_without_installing(tmp_path: Path, compression: str) -> None:
    need("dpkg-deb")
    deb = _package(tmp_path, compression)
    found = {m.path: m for m in debs.members(deb, lambda path: "bin/" in path)}
    assert found["usr/bin/hello"].data == b"hello\n"
    assert found["usr/sbin/hi"].link == "../bin/hello" and found["usr/sbin/hi"].data is None
    assert "usr/share/doc/x/README" not in found


def test_a_compression_the_builder_cannot_read_is_named(tmp_path: Path) -> None:
    need("dpkg-deb")
    deb = _package(tmp_path, "zstd")
    with pytest.raises(DebError, match=r"data\.tar\.zst is a compression"):
        list(debs.members(deb, bool))
    (tmp_path / "not.deb").write_bytes(b"PK\x03\x04")
    with pytest.raises(DebError, match="not a Debian package"):
        list(debs.members(tmp_path / "not.deb", bool))


def _package(tmp_path: Path, compression: str) -> Path:
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: x\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test\n")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/hello").write_bytes(b"hello\n")
    (root / "usr/sbin").mkdir()
    (root / "usr/sbin/hi").symlink_to("../bin/hello")
    (root / "usr/share/doc/x").mkdir(parents=True)
    (root / "usr/share/doc/x/README").write_text("readme\n")
    deb = tmp_path / "x.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", root, deb],
                   check=True, capture_output=True)
    return deb


def test_the_cache_keeps_the_newest_images_and_the_packages_in_use(tmp_path: Path) -> None:

    images = tmp_path / "images"
    for age, name in enumerate(["new", "older", "oldest", "ancient", "kept"]):
        (images / name).mkdir(parents=True)
        os.utime(images / name, (1_000_000 - age * 1000,) * 2)
    (tmp_path / "debs").mkdir()
    for deb in ("in-use_1_amd64.deb", "replaced_1_amd64.deb"):
        (tmp_path / "debs" / deb).write_bytes(b"x")
    prune_cache(tmp_path, images / "kept", {"in-use_1_amd64.deb"})
    assert KEPT_IMAGES == 3
    assert sorted(path.name for path in images.iterdir()) == ["kept", "new", "older"]
    assert [path.name for path in (tmp_path / "debs").iterdir()] == ["in-use_1_amd64.deb"]
