"""IPMI FRU (Field Replaceable Unit) data: encoding for the lab's BMCs, decoding for discovery.

Decoding uses pyghmi's parser. Hardware inventory that IPMI has no standard field for (CPU
cores, memory, disks, NIC MACs) travels as ``key=value`` custom fields of the product area,
which is how the lab's BMCs publish it; a real BMC simply has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyghmi.ipmi.fru import FRU


def _field(text: str) -> bytes:
    data = text.encode("ascii")[:63]
    return bytes([0xC0 | len(data)]) + data


def _area(body: bytes) -> bytes:
    """Close an info area: end marker, pad to 8 bytes, checksum."""
    body += b"\xc1"
    body += b"\x00" * ((-(len(body) + 1)) % 8)
    length = (len(body) + 1) // 8
    body = body[:1] + bytes([length]) + body[2:]
    return body + bytes([(-sum(body)) & 0xFF])


def encode_fru(manufacturer: str, product: str, model: str, serial: str,
               extra: list[str]) -> bytes:
    """A FRU image with a board and a product area (the system's identity and extras)."""
    board = _area(b"\x01\x00\x00" + b"\x00\x00\x00" + _field(manufacturer) + _field(product)
                  + _field(serial) + _field(model) + _field(""))
    product_area = _area(b"\x01\x00\x00" + _field(manufacturer) + _field(product)
                         + _field(model) + _field("1.0") + _field(serial) + _field("")
                         + _field("") + b"".join(_field(e) for e in extra))
    board_offset = 1
    product_offset = board_offset + len(board) // 8
    header = bytes([1, 0, 0, board_offset, product_offset, 0, 0])
    header += bytes([(-sum(header)) & 0xFF])
    return header + board + product_area


@dataclass
class FruInfo:
    """What discovery keeps from a FRU image."""

    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    extra: dict[str, list[str]] = field(default_factory=dict)


def decode_fru(data: bytes) -> FruInfo:
    """Parse a FRU image; fields it lacks stay None."""
    info = FRU(rawdata=bytearray(data)).info or {}

    def text(*keys: str) -> str | None:
        for key in keys:
            value = info.get(key)
            if isinstance(value, bytes):
                value = value.decode("ascii", "replace")
            if value:
                return str(value).strip()
        return None

    extra: dict[str, list[str]] = {}
    for item in info.get("product_extra", []) or []:
        item = item.decode("ascii", "replace") if isinstance(item, bytes) else str(item)
        key, sep, value = item.partition("=")
        if sep:
            extra.setdefault(key.strip(), []).append(value.strip())
    return FruInfo(
        manufacturer=text("Manufacturer", "Board manufacturer"),
        model=text("Product name", "Model", "Board product name"),
        serial=text("Serial Number", "Board serial number"),
        extra=extra,
    )
