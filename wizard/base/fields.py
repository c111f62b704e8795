"""Validated string types shared by the answers model: addresses, ranges, MACs, names, URLs.

Each type keeps its value as a plain (normalised) string, so the model dumps back to YAML
unchanged, and raises a ``ValueError`` whose text is the whole message an operator reads.

Values end up in files that run as root (dnsmasq's config, boot scripts, kickstarts,
preseeds), so the typed parsers here accept only what their kind of value can hold: a URL
has no quote, space or ``$``; an SSH key is a key; kernel parameters are plain words.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import uuid
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

import netaddr
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from pydantic import AfterValidator, BeforeValidator, Field

_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_TAG = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}$")
_NIC_SPEC = re.compile(r"^[+?-]?(1g|10g|25g|40g|50g|100g)[1-9][0-9]?$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""C0 and C1 controls, DEL, and the Unicode line and paragraph separators."""
_CONTROL_NAMES = {"\t": "a tab", "\n": "a line break", "\r": "a carriage return"}
_URL_BAD = re.compile(r"[^A-Za-z0-9._~:/?\[\]@!&*+,;=%-]")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DNS_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_CONSOLE = re.compile(r"^(tty[A-Za-z]{0,8}|hvc|xvc|lp)[0-9]{1,3}(,[0-9]{2,7}([noe]([5-8]r?)?)?)?$")
_KERNEL_PARAM = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.,:/=+@%~-]*$")
_PATH = re.compile(r"^(/[A-Za-z0-9._+@-]+)+/?$")
KERNEL_PARAMS_MAX = 1024
SSH_KEY_TYPES = {
    "ssh-ed25519": 2, "ssh-rsa": 3, "ecdsa-sha2-nistp256": 3, "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3, "sk-ssh-ed25519@openssh.com": 3,
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,
}
"""The public key types OpenSSH accepts, and how many fields each key blob holds."""


def control_character(text: str) -> str | None:
    """Why ``text`` cannot be a value of a one-line-per-directive file, or None when it can.

    C0 and C1 controls (line breaks and tabs among them), DEL and the Unicode line and
    paragraph separators: each ends or bends a line in some format a value is written to.
    """
    match = CONTROL_CHARACTERS.search(text)
    if match is None:
        return None
    char = match.group()
    what = _CONTROL_NAMES.get(char, "a control character")
    return (f"holds {what} (U+{ord(char):04X}) at character {match.start() + 1}: a value is "
            "one line of printable text")


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


def _matching(pattern: re.Pattern[str], what: str, rule: str) -> Callable[[str], str]:
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


def url(text: str) -> str:
    """An http(s) or ftp URL of printable URL characters only, with a real host name.

    Quotes, spaces, ``$``, ``#``, parentheses and backslashes are refused (percent-encode
    them): the URL is written into iPXE scripts, kickstarts and preseeds as it is.
    """
    bad = _URL_BAD.search(text)
    if bad:
        raise ValueError(f"{text!r} is not a usable URL: {bad.group()!r} is not allowed in a "
                         "URL (percent-encode it)")
    if _PERCENT.search(text):
        raise ValueError(f"{text!r} is not a usable URL: a '%' starts no %XX escape")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "ftp") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) or ftp URL")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise ValueError(f"{text!r} has an invalid port") from None
    host = parts.hostname
    if not (netaddr.valid_ipv4(host) or netaddr.valid_ipv6(host)
            or all(_DNS_LABEL.match(label) for label in host.rstrip(".").split("."))):
        raise ValueError(f"{text!r} does not name a host: {host!r}")
    return text


def _ssh_fields(blob: bytes) -> list[bytes]:
    """An SSH wire-format blob as its length-prefixed fields; ValueError if it is not one."""
    fields, at = [], 0
    while at < len(blob):
        if at + 4 > len(blob):
            raise ValueError("truncated")
        (size,) = struct.unpack(">I", blob[at:at + 4])
        if at + 4 + size > len(blob):
            raise ValueError("truncated")
        fields.append(blob[at + 4:at + 4 + size])
        at += 4 + size
    return fields


def ssh_public_key(text: str) -> str:
    """An OpenSSH public key line, ``TYPE BASE64 [COMMENT]``, parsed: a known type, a blob
    that decodes to a key of that type, a comment (if any) on the same line.

    Options in front of the key (``command=...``, ``from=...``) are refused: the keys are
    written to root's authorized_keys on every node, where an option would change what
    logging in with the key does.
    """
    fields = text.split(None, 2)
    head = f"{text[:24]!r}..." if len(text) > 24 else repr(text)
    if not fields or fields[0] not in SSH_KEY_TYPES:
        first = fields[0] if fields else ""
        hint = ("options before the key type are not supported" if "=" in first or "," in first
                else "it does not start with a key type such as ssh-ed25519, ssh-rsa or "
                "ecdsa-sha2-nistp256")
        raise ValueError(f"{head} is not an OpenSSH public key line: {hint}")
    if len(fields) < 2:
        raise ValueError(f"{head} is not an OpenSSH public key line: the key is missing")
    kind, blob = fields[0], fields[1]
    try:
        parts = _ssh_fields(base64.b64decode(blob, validate=True))
    except (binascii.Error, ValueError):
        raise ValueError(f"{head}: the key is not valid base64 of an SSH key") from None
    if not parts or parts[0] != kind.encode():
        raise ValueError(f"{head}: the key encoded in it is not of type {kind}")
    if len(parts) != SSH_KEY_TYPES[kind]:
        raise ValueError(f"{head}: the {kind} key is truncated or has extra data")
    if not kind.startswith("sk-"):
        try:
            load_ssh_public_key(f"{kind} {blob}".encode())
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError(f"{head}: the {kind} key does not parse") from None
    return " ".join(fields)


def console(text: str) -> str:
    """A kernel console, ``DEVICE[,BAUD[PARITY[BITS[r]]]]`` such as ``ttyS1,115200n8``."""
    if not _CONSOLE.match(text):
        raise ValueError(f"{text!r} is not a kernel console such as ttyS1,115200 or ttyS0,9600n8")
    return text


def kernel_params(text: str) -> str:
    """Kernel command-line parameters separated by spaces, each of plain characters.

    No quotes, ``$``, ``;``, ``|``, ``&``, ``#`` or backslashes: the line goes into iPXE
    scripts and pxelinux configs, and no parameter needs them.
    """
    if len(text) > KERNEL_PARAMS_MAX:
        raise ValueError(f"kernel parameters are at most {KERNEL_PARAMS_MAX} characters")
    for word in text.split(" "):
        if word and not _KERNEL_PARAM.match(word):
            raise ValueError(
                f"{word!r} is not a kernel parameter: letters, digits and _ . , : / = + @ % ~ -"
            )
    return text


def host_port(text: str) -> str:
    """``HOST`` or ``HOST:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return _host_or_ip(text)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} has an invalid port {port!r}")
    return f"{_host_or_ip(host)}:{int(port)}"


def dns_record(text: str) -> str:
    """``NAME=ADDRESS``: an A record, NAME inside the site's domain."""
    name, sep, address = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not a record: write NAME=ADDRESS")
    return f"{_domain(name.strip())}={_ipv4(address.strip())}"


def absolute_path(text: str) -> str:
    """An absolute path of plain characters (letters, digits, ``. _ + @ -``)."""
    if not _PATH.match(text):
        raise ValueError(f"{text!r} is not an absolute path of letters, digits and . _ + @ -")
    return text


def uuid_text(text: str) -> str:
    """A UUID, in its canonical lowercase form."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValueError(f"{text!r} is not a UUID") from None


FORMATS: dict[str, Callable[[str], str]] = {
    "ipv4": _ipv4, "cidr": lambda text: str(parse_cidr(text)), "host": _host_or_ip,
    "host_port": host_port, "url": url,
    "dns_record": dns_record, "ssh_public_key": ssh_public_key, "console": console,
    "kernel_params": kernel_params, "path": absolute_path, "uuid": uuid_text,
}
"""Parsers a barclamp attribute (or each item of a list attribute) can be typed with."""


def _interface(text: str) -> str:
    if _NIC_SPEC.match(text) or _IFNAME.match(text):
        return text
    raise ValueError(
        f"{text!r} is neither a NIC by speed and order (1g1, 10g2, ?1g1) nor an interface name"
    )


def printable(value: object) -> object:
    """``value``, or ``ValueError`` when it is a string holding a control character."""
    if isinstance(value, str):
        problem = control_character(value)
        if problem:
            raise ValueError(problem)
    return value


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


_Str = Annotated[str, BeforeValidator(_stripped), BeforeValidator(printable)]
"""A string with surrounding spaces stripped, after refusing any control character (a
trailing line break too: the value is not silently a different one)."""

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
Url = Annotated[_Str, AfterValidator(url), Field(json_schema_extra={"format": "uri"})]
Interface = Annotated[_Str, AfterValidator(_interface)]
SshPublicKey = Annotated[_Str, AfterValidator(ssh_public_key)]
"""One OpenSSH public key line, parsed (see :func:`ssh_public_key`)."""
