"""Just enough of ELF to build an initramfs: a binary's shared libraries and a module's modinfo.

The image takes its programs from Debian packages without installing them, so nothing runs
``ldd`` or ``depmod``: the libraries a program needs (``DT_NEEDED``) and the modules a kernel
module depends on (``depends=`` in ``.modinfo``) are read from the files themselves.
Only 64-bit little-endian ELF is read, which is every amd64 file.
"""

from __future__ import annotations

import struct

SHT_DYNAMIC = 6
DT_NEEDED = 1


class ElfError(ValueError):
    """Not a 64-bit little-endian ELF file, or a truncated one."""


def _sections(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """``(name offset, type, file offset, size, link)`` of every section."""
    if data[:6] != b"\x7fELF\x02\x01":
        raise ElfError("not a 64-bit little-endian ELF file")
    try:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        sections = []
        for index in range(shnum):
            name, kind, _flags, _addr, offset, size, link = struct.unpack_from(
                "<IIQQQQI", data, shoff + index * shentsize)
            if offset + size > len(data) and kind != 8:  # 8: SHT_NOBITS holds no bytes
                raise ElfError("a section runs past the end of the file")
            sections.append((name, kind, offset, size, link))
        return sections
    except struct.error:
        raise ElfError("truncated ELF file") from None


def _string(data: bytes, table: tuple[int, int, int, int, int], offset: int) -> str:
    start = table[2] + offset
    return data[start:data.index(b"\0", start)].decode()


def needed(data: bytes) -> list[str]:
    """The shared libraries a program or library names (``DT_NEEDED``), in order."""
    sections = _sections(data)
    names = []
    for _name, kind, offset, size, link in sections:
        if kind != SHT_DYNAMIC:
            continue
        for entry in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, entry)
            if tag == 0:
                break
            if tag == DT_NEEDED:
                names.append(_string(data, sections[link], value))
    return names


def modinfo(data: bytes) -> dict[str, list[str]]:
    """A kernel module's ``.modinfo`` as ``{key: [values]}`` (``alias`` has many)."""
    sections = _sections(data)
    header, = struct.unpack_from("<H", data, 0x3E)  # the section names' string table
    info: dict[str, list[str]] = {}
    for name, _kind, offset, size, _link in sections:
        if _string(data, sections[header], name) != ".modinfo":
            continue
        for item in data[offset:offset + size].split(b"\0"):
            key, sep, value = item.decode("utf-8", "replace").partition("=")
            if sep:
                info.setdefault(key, []).append(value)
    return info
