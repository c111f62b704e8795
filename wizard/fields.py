"""Validated string types shared by the answers model: addresses, ranges, MACs, names, URLs.

Each type keeps its value as a plain (normalised) string, so the model dumps back to YAML
unchanged, and raises a ``ValueError`` whose text is the whole message an operator reads.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

import netaddr
from pydantic import AfterValidator, BeforeValidator, Field

_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_TAG = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}$")
_NIC_SPEC = re.compile(r"^[+?-]?(1g|10g|25g|40g|50g|100g)[1-9][0-9]?$")


def parse_ipv4(text: str) -> netaddr.IPAddress:
    """Parse a dotted-quad IPv4 address, or raise ``ValueError`` naming the text."""
    try:
        return netaddr.IPAddress(text, version=4)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise ValueError(f"{text!r} is not an IPv4 address") from None


def parse_range(text: str) -> tuple[netaddr.IPAddress, netaddr.IPAddress]:
    """Parse ``FIRST-LAST`` (inclusive, FIRST <= LAST) into two addresses."""
    first, sep, last = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not an address range: write FIRST-LAST")
    start, end = parse_ipv4(first.strip()), parse_ipv4(last.strip())
    if start > end:
        raise ValueError(f"range {text} runs backwards: {start} comes after {end}")
    return start, end


def parse_block(text: str) -> netaddr.IPRange:
    """Parse an address block given as ``CIDR`` or ``FIRST-LAST``."""
    if "/" in text:
        net = parse_cidr(text)
        return netaddr.IPRange(net.first, net.last)
    start, end = parse_range(text)
    return netaddr.IPRange(start, end)


def parse_cidr(text: str) -> netaddr.IPNetwork:
    """Parse ``ADDRESS/PREFIX`` with no host bits set."""
    address, sep, prefix = text.partition("/")
    if not sep or not prefix.isdigit() or not 0 <= int(prefix) <= 32:
        raise ValueError(f"{text!r} is not a CIDR block such as 10.20.0.0/16")
    net = netaddr.IPNetwork(f"{parse_ipv4(address)}/{int(prefix)}")
    if net.ip != net.network:
        raise ValueError(f"{text} has host bits set: the block is {net.cidr}")
    return net


def _ipv4(text: str) -> str:
    return str(parse_ipv4(text))


def _subnet(text: str) -> str:
    if "/" in text:
        return str(parse_cidr(text))
    return _ipv4(text)


def _range(text: str) -> str:
    start, end = parse_range(text)
    return f"{start}-{end}"


def _block(text: str) -> str:
    if "/" in text:
        return str(parse_cidr(text))
    return _range(text)


def _mac(text: str) -> str:
    try:
        mac = netaddr.EUI(text, version=48, dialect=netaddr.mac_unix_expanded)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise ValueError(f"{text!r} is not a MAC address such as 52:54:00:12:34:56") from None
    if int(mac) == 0 or mac.words[0] & 1:
        raise ValueError(f"{mac} is not a usable NIC address (zero or multicast)")
    return str(mac)


def _matching(pattern: re.Pattern[str], what: str, rule: str):
    def check(text: str) -> str:
        if not pattern.match(text):
            raise ValueError(f"{text!r} is not a valid {what}: {rule}")
        return text

    return check


def _domain(text: str) -> str:
    labels = text.rstrip(".").split(".")
    if len(text) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(
            f"{text!r} is not a valid DNS domain: dot-separated labels of lowercase "
            "letters, digits and '-'"
        )
    return text


def _host_or_ip(text: str) -> str:
    try:
        return _ipv4(text)
    except ValueError:
        return _domain(text)


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "ftp") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) or ftp URL")
    return text


def _interface(text: str) -> str:
    if _NIC_SPEC.match(text) or _IFNAME.match(text):
        return text
    raise ValueError(
        f"{text!r} is neither a NIC by speed and order (1g1, 10g2, ?1g1) nor an interface name"
    )


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


_Str = Annotated[str, BeforeValidator(_stripped)]

IPv4 = Annotated[_Str, AfterValidator(_ipv4), Field(json_schema_extra={"format": "ipv4"})]
"""A dotted-quad IPv4 address."""
Subnet = Annotated[_Str, AfterValidator(_subnet)]
"""A network address, as CIDR (10.0.0.0/24) or bare (10.0.0.0, with a netmask beside it)."""
AddressRange = Annotated[_Str, AfterValidator(_range)]
"""An inclusive ``FIRST-LAST`` range of IPv4 addresses."""
AddressBlock = Annotated[_Str, AfterValidator(_block)]
"""Either a CIDR block or a ``FIRST-LAST`` range."""
Mac = Annotated[_Str, AfterValidator(_mac)]
"""A unicast MAC address, normalised to lowercase colon form."""
HostName = Annotated[
    _Str,
    AfterValidator(
        _matching(_HOST_LABEL, "host name", "lowercase letters, digits and '-', at most 63")
    ),
]
Identifier = Annotated[
    _Str,
    AfterValidator(
        _matching(_IDENTIFIER, "name", "a lowercase letter, then letters, digits or '_'")
    ),
]
valid_tag = _matching(_TAG, "name", "a lowercase letter, then letters, digits, '_' or '-'")
Tag = Annotated[_Str, AfterValidator(valid_tag)]
Domain = Annotated[_Str, AfterValidator(_domain)]
HostOrIP = Annotated[_Str, AfterValidator(_host_or_ip)]
Url = Annotated[_Str, AfterValidator(_url), Field(json_schema_extra={"format": "uri"})]
Interface = Annotated[_Str, AfterValidator(_interface)]
