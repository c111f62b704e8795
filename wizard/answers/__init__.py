"""The answers file: one pydantic model for everything the wizard asks, saved as YAML.

``load`` reads and fully validates a file (structure with pydantic, then the rules that span
fields with :func:`check`), raising one :class:`AnswersError` that lists every problem as
``FILE:LINE:COL: path: message``. ``save`` writes atomically, keeping the loaded file's key
order and comments, and makes a file holding an inline secret mode 0600.
"""

from __future__ import annotations

import functools
import os
import stat
import zoneinfo
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import netaddr
from pydantic import BaseModel as _PydanticModel
from pydantic import (
    Field,
    PlainSerializer,
    PrivateAttr,
    SerializationInfo,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from wizard.answers import node_network, proposals
from wizard.answers.proposals import Proposal
from wizard.base.fields import (
    AddressBlock,
    Domain,
    HostName,
    HostOrIP,
    Identifier,
    Interface,
    IPv4,
    Mac,
    SshPublicKey,
    Tag,
    Url,
    parse_block,
    parse_ipv4,
)
from wizard.base.model import Model
from wizard.base.problems import AnswersError, Finding, Loc, Problem, did_you_mean, format_loc
from wizard.base.secrets import Secret, SecretError
from wizard.base.yamlfile import Document, dump, merge, read_document, write_atomic
from wizard.catalog import default_catalog
from wizard.network import Conduit, Network, RangeName, check_networks

SCHEMA_VERSION = 1
IPMI_MAX_USER = 16
IPMI_MAX_PASSWORD = 20


def _dump_secret(value: Secret, info: SerializationInfo) -> str:
    """Secrets dump masked, except when saving (context ``{"reveal": True}``)."""
    context = info.context or {}
    return value.get_secret_value() if context.get("reveal") else str(value)


SecretValue = Annotated[Secret, PlainSerializer(_dump_secret)]
"""A secret: inline text, ``env:NAME`` or ``file:PATH``."""


class Site(Model):
    """The deployment as a whole."""

    name: Tag
    domain: Domain
    timezone: str = "UTC"
    ntp_servers: list[HostOrIP] = Field(default_factory=list)
    dns_forwarders: list[IPv4] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: a tzdata directory (IsADirectoryError) or a name too long for a path
            zones = zoneinfo.available_timezones()
            region = sorted(zone for zone in zones if zone.startswith(f"{value}/"))
            if region:
                raise ValueError(f"{value!r} is a region, not a time zone: name one of its "
                                 f"zones, such as {region[0]!r}") from None
            if zones:
                hint = did_you_mean(value, zones) or " (e.g. UTC, Europe/Berlin)"
                raise ValueError(f"unknown time zone {value!r}{hint}") from None
        return value


class Admin(Model):
    """The admin node: runs the wizard, DHCP/TFTP, the provisioner and the Chef server."""

    hostname: HostName
    address: IPv4
    interface: Interface = "eth0"


class Bmc(Model):
    """How to reach the nodes' BMCs."""

    network: Identifier = "bmc"
    username: str = Field("root", min_length=1, max_length=IPMI_MAX_USER)
    password: SecretValue
    port: int = Field(623, ge=1, le=65535, description="IPMI (RMCP+) UDP port of the BMCs")


DiscoveryMethod = Literal["ipmi", "pxe"]


class Discovery(Model):
    """How new nodes are found: IPMI sweep of BMC ranges, PXE-booted inventory, or both."""

    methods: list[DiscoveryMethod] = Field(
        default_factory=lambda: list[DiscoveryMethod](["ipmi", "pxe"]), min_length=1
    )
    bmc_ranges: list[AddressBlock] = Field(default_factory=list)


class Nic(Model):
    """One NIC of a node, as its discovery image saw it."""

    mac: Mac
    speed_mbps: int | None = Field(
        None, ge=1, description="Link speed in Mb/s; unknown (no link) matches any speed."
    )
    name: Interface | None = Field(
        None, description="The kernel's name for it, for conduits that name interfaces."
    )


class Hardware(Model):
    """What a node is made of, as discovered (drives role placement and conduits)."""

    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    cpu_cores: int = Field(ge=1)
    memory_gb: int = Field(ge=1)
    disks: int = Field(0, ge=0)
    virtualization: bool = True
    nics: list[Nic] | None = Field(
        None, max_length=64,
        description="Every NIC in bus order, when discovered: conduits resolve against "
        "them (without them, against the node's macs, in order, of unknown speed).",
    )

    @field_validator("nics")
    @classmethod
    def _one_entry_per_nic(cls, nics: list[Nic] | None) -> list[Nic] | None:
        for attr in ("mac", "name"):
            values = [getattr(nic, attr) for nic in nics or () if getattr(nic, attr)]
            repeated = sorted({value for value in values if values.count(value) > 1})
            if repeated:
                raise ValueError(f"NIC {attr} {repeated[0]} is listed twice")
        return nics


class Node(Model):
    """A server: its NICs, BMC and what it is meant to become."""

    name: HostName
    macs: list[Mac] = Field(min_length=1)
    bmc_address: IPv4 | None = None
    addresses: dict[Identifier, IPv4] = Field(
        default_factory=dict, description="Pinned addresses by network name."
    )
    hardware: Hardware | None = None
    roles: list[Tag] = Field(
        default_factory=list,
        description="Intended roles (controller, compute, storage, network, ...), which decide "
        "the networks a node joins and guide role allocation.",
    )


OS_FAMILIES = {
    "ubuntu-24.04": ("ubuntu", "noble"), "ubuntu-22.04": ("ubuntu", "jammy"),
    "debian-12": ("debian", "bookworm"), "rocky-9": ("rhel", "9"), "alma-9": ("rhel", "9"),
}
"""Each OS the nodes may get: its family (which installer) and release (suite, major)."""


class Provisioning(Model):
    """The operating system the nodes get, and where its installer comes from."""

    os: Literal["ubuntu-24.04", "ubuntu-22.04", "debian-12", "rocky-9", "alma-9"] = (
        "ubuntu-24.04"
    )
    mirror: Url
    kernel_url: Url | None = None
    initrd_url: Url | None = None
    ssh_authorized_keys: list[SshPublicKey] = Field(default_factory=list)


class Chef(Model):
    """Where Chef objects go: a Chef server (URL, client, key) or a chef-repo export."""

    server_url: Url | None = None
    organization: Tag | None = None
    client_name: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$")
    key: SecretValue | None = None
    export_path: str | None = Field(None, min_length=1)
    cookbooks_path: str | None = Field(
        None, min_length=1,
        description="A directory of vendored cookbooks (what berks vendor writes from the "
        "Berksfile chef export writes: the upstream cookbooks the barclamps declare), "
        "uploaded and pinned with those the barclamps ship by chef push and apply.")


class Answers(Model):
    """Everything the wizard needs to take bare servers to a running cluster."""

    schema_version: Literal[1]
    site: Site
    admin: Admin
    conduits: dict[Identifier, Conduit] = Field(default_factory=dict)
    networks: dict[Identifier, Network]
    bmc: Bmc
    discovery: Discovery = Field(default_factory=Discovery)
    provisioning: Provisioning
    chef: Chef
    barclamps: dict[Identifier, Proposal] = Field(default_factory=dict)
    nodes: list[Node] = Field(default_factory=list)

    _document: Document | None = PrivateAttr(default=None)

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version_is_an_integer(cls, value: Any) -> Any:
        """``Literal[1]`` alone takes ``true`` and ``1.0`` for 1."""
        if isinstance(value, bool | float):
            raise ValueError(f"write the number {SCHEMA_VERSION}, not {str(value).lower()}")
        return value

    def secrets(self) -> list[tuple[Loc, Secret]]:
        """Every secret set in the answers, with where it sits."""
        chef = [(("chef", "key"), self.chef.key)] if self.chef.key is not None else []
        return [(("bmc", "password"), self.bmc.password), *chef]

    def problem(self, loc: Loc, message: str) -> Problem:
        """A :class:`Problem` at ``loc`` of the file these answers were read from."""
        if self._document is None:
            return Problem("(unsaved answers)", 1, 1, format_loc(loc), message)
        return self._document.problem(loc, message)

    def nodes_needing(self, network: str) -> list[Node]:
        """Nodes that take an address on ``network``: selected by it, or pinned to it."""
        selector = self.networks[network].node_addresses
        is_bmc = network == self.bmc.network
        return [
            node
            for node in self.nodes
            if selector == "all"
            or (isinstance(selector, list) and not set(selector).isdisjoint(node.roles))
            or network in node.addresses
            or (is_bmc and node.bmc_address is not None)
        ]


# --- cross-field rules ---------------------------------------------------------------------


def check(
    answers: Answers, valid: Collection[str] = (), *, complete: bool = True
) -> list[Finding]:
    """Every rule that spans fields.

    ``valid`` names the top-level sections that passed validation when some did not (then
    ``answers`` holds only those): each rule runs when all the sections it reads are valid.
    With ``complete`` false, barclamps or role assignments still to be filled in by
    allocation are not problems.
    """
    usable = set(valid or Answers.model_fields)
    findings = [
        finding
        for sections, rule in _RULES
        if usable.issuperset(sections)
        for finding in rule(answers)
    ]
    if usable.issuperset(("barclamps", "nodes", "admin")):
        findings += proposals.check(answers, default_catalog(), complete=complete)
    return findings


def _inside(answers: Answers, network: str,
            range_name: RangeName | None) -> netaddr.IPRange | None:
    """The named range of a network (or its whole subnet) when the network is usable."""
    net = answers.networks.get(network)
    if net is None:
        return None
    try:
        cidr = net.cidr()
    except ValueError:
        return None
    block = net.block(range_name) if range_name else None
    return block if block is not None else netaddr.IPRange(cidr.first, cidr.last)


def _check_admin_and_bmc(answers: Answers) -> Iterator[Finding]:
    if "admin" not in answers.networks:
        yield Finding(("networks",), "no 'admin' network: the admin node and PXE need one")
    else:
        block = _inside(answers, "admin", "admin")
        address = parse_ipv4(answers.admin.address)
        if block is not None and address not in block:
            yield Finding(
                ("admin", "address"),
                f"{address} is outside the admin network's admin range {block}",
            )
    if answers.bmc.network not in answers.networks:
        yield Finding(
            ("bmc", "network"), f"network {answers.bmc.network!r} is not in networks"
        )
    else:
        subnet = _inside(answers, answers.bmc.network, None)
        for index, text in enumerate(answers.discovery.bmc_ranges):
            block = parse_block(text)
            if subnet is not None and (block.first < subnet.first or block.last > subnet.last):
                yield Finding(
                    ("discovery", "bmc_ranges", index),
                    f"{text} is not inside the {answers.bmc.network} network ({subnet.cidrs()[0]})",
                )
    password = answers.bmc.password
    yield from _check_secret(("bmc", "password"), password)
    if password.is_inline and len(password.get_secret_value().encode()) > IPMI_MAX_PASSWORD:
        yield Finding(
            ("bmc", "password"), f"IPMI 2.0 passwords are at most {IPMI_MAX_PASSWORD} bytes"
        )


def _check_nodes(answers: Answers) -> Iterator[Finding]:
    names: dict[str, Loc] = {answers.admin.hostname: ("admin", "hostname")}
    macs: dict[str, Loc] = {}
    ips: dict[str, Loc] = {answers.admin.address: ("admin", "address")}
    for name, net in answers.networks.items():
        if net.router is not None:
            ips.setdefault(net.router, ("networks", name, "router"))

    def claim(table: dict[str, Loc], value: str, loc: Loc, what: str) -> Iterator[Finding]:
        if value in table:
            yield Finding(loc, f"{what} {value} is already used by {format_loc(table[value])}")
        else:
            table[value] = loc

    for index, node in enumerate(answers.nodes):
        at: Loc = ("nodes", index)
        yield from claim(names, node.name, (*at, "name"), "name")
        for i, mac in enumerate(node.macs):
            yield from claim(macs, mac, (*at, "macs", i), "MAC")
        if node.bmc_address is not None:
            yield from _check_pinned(
                answers, answers.bmc.network, node.bmc_address, (*at, "bmc_address")
            )
            yield from claim(ips, node.bmc_address, (*at, "bmc_address"), "address")
        for network, address in node.addresses.items():
            loc = (*at, "addresses", network)
            if network not in answers.networks:
                yield Finding(loc, f"network {network!r} is not in networks")
                continue
            yield from _check_pinned(answers, network, address, loc)
            yield from claim(ips, address, loc, "address")


def _check_pinned(answers: Answers, network: str, address: str, loc: Loc) -> Iterator[Finding]:
    block = _inside(answers, network, "host")
    if block is not None and parse_ipv4(address) not in block:
        yield Finding(loc, f"{address} is outside the {network} network's host range {block}")


def _check_capacity(answers: Answers) -> Iterator[Finding]:
    for name, net in answers.networks.items():
        needing = len(answers.nodes_needing(name))
        if not needing:
            continue
        host, block = net.ranges.get("host"), net.block("host")
        if host is None or block is None:
            yield Finding(
                ("networks", name, "node_addresses"),
                f"{needing} nodes need an address on {name}, which has no host range",
            )
            continue
        size = block.size
        if needing > size:
            yield Finding(
                ("networks", name, "ranges", "host"),
                f"host range {host} holds {_count(size, 'address')} but {needing} nodes need "
                f"one on {name}: {needing - size} short",
            )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith("s") else f"{n} {noun}s"


def _check_secret(loc: Loc, secret: Secret | None) -> Iterator[Finding]:
    if secret is not None:
        try:
            secret.check()
        except SecretError as exc:
            yield Finding(loc, str(exc))


def _check_services(answers: Answers) -> Iterator[Finding]:
    chef = answers.chef
    yield from _check_secret(("chef", "key"), chef.key)
    if chef.server_url is None and chef.export_path is None:
        yield Finding(("chef",), "set server_url (with client_name and key) or export_path")
    if chef.server_url is not None:
        for field in ("client_name", "key"):
            if getattr(chef, field) is None:
                yield Finding(("chef", field), f"a Chef server needs {field}")
    prov = answers.provisioning
    if (prov.kernel_url is None) != (prov.initrd_url is None):
        given, missing = ("kernel_url", "initrd_url")
        if prov.kernel_url is None:
            given, missing = missing, given
        yield Finding(("provisioning", given), f"{given} needs {missing} too")


_RULES: list[tuple[tuple[str, ...], Callable[[Answers], Iterable[Finding]]]] = [
    (("networks", "conduits"), lambda a: check_networks(a.networks, a.conduits)),
    (("admin", "networks", "bmc", "discovery"), _check_admin_and_bmc),
    (("admin", "networks", "bmc", "nodes"), _check_nodes),
    (("networks", "bmc", "nodes"), _check_capacity),
    (("networks", "conduits", "bmc", "nodes"), lambda a: node_network.check_conduits(a)),
    (("chef", "provisioning"), _check_services),
]
"""Cross-field rules and the top-level sections each reads."""


def _valid_sections(data: dict[str, Any], errors: list[Any]) -> tuple[Answers, set[str]]:
    """The sections of ``data`` without errors, validated on their own, in a partial model."""
    broken = {error["loc"][0] for error in errors if error["loc"]}
    sections: dict[str, Any] = {}
    for name in Answers.model_fields:
        if name in broken or name not in data:
            continue
        sections[name] = _section_adapter(name).validate_python(data[name])
    valid = set(Answers.model_fields) - broken
    return Answers.model_construct(**sections), valid


@functools.cache
def _section_adapter(name: str) -> TypeAdapter[Any]:
    annotation = Answers.model_fields[name].annotation
    assert annotation is not None  # every field of Answers has one
    return TypeAdapter(annotation)


# --- files ---------------------------------------------------------------------------------


def load(path: str | os.PathLike[str], *, complete: bool = True) -> Answers:
    """Read and validate an answers file; raise :class:`AnswersError` listing every problem.

    ``complete=False`` accepts barclamps and roles still to be allocated (see ``check``).
    """
    return from_document(read_document(Path(path)), complete=complete)


def from_document(doc: Document, *, complete: bool = True) -> Answers:
    """Validate a parsed answers document."""
    version = doc.data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version != SCHEMA_VERSION:
        newer = "a newer crowbar-wizard" if version > SCHEMA_VERSION else "an older one"
        raise AnswersError([doc.problem(
            ("schema_version",),
            f"this crowbar-wizard reads version {SCHEMA_VERSION}; the file is version "
            f"{version}, written by {newer}",
        )])
    try:
        answers = Answers.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors()
        partial, valid = _valid_sections(doc.data, errors)
        problems = [doc.validation_problem(error, _suggest) for error in errors]
        problems += [doc.problem(f.loc, f.message)
                     for f in check(partial, valid, complete=complete)]
        raise AnswersError(problems) from None
    findings = check(answers, complete=complete)
    if findings:
        raise AnswersError([doc.problem(f.loc, f.message) for f in findings])
    answers._document = doc
    return answers


_ALIASES = {
    "gateway": "router", "vlan_id": "vlan", "mask": "netmask", "mac": "macs",
    "bmc_ip": "bmc_address", "ipmi_address": "bmc_address", "role": "roles",
    "hostname": "name", "ntp": "ntp_servers", "dns": "dns_forwarders", "user": "username",
}
"""Names operators reach for from other tools, and the key they mean here."""


_RETIRED = {
    "validator_key": " (no longer used: nodes never get the validator key, the admin node "
    "registers each node's own Chef client key with chef.key; remove it)",
    "validator_name": " (no longer used: the admin node registers nodes' Chef clients "
    "itself; remove it)",
}
"""Keys earlier versions read, and why they are gone."""


def _suggest(loc: Loc) -> str:
    """`` (did you mean 'subnet'?)`` or the list of keys allowed where an unknown key sits."""
    if tuple(loc[:-1]) == ("chef",) and str(loc[-1]) in _RETIRED:
        return _RETIRED[str(loc[-1])]
    fields = _fields_at(Answers, loc[:-1])
    if not fields:
        return ""
    alias = _ALIASES.get(str(loc[-1]))
    if alias in fields:
        return f" (did you mean {alias!r}?)"
    return did_you_mean(str(loc[-1]), fields) or f" (expected one of: {', '.join(fields)})"


def _fields_at(model: type[_PydanticModel], loc: Loc) -> list[str]:
    """Field names of the model that validates the value at ``loc`` below ``model``."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, _PydanticModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) in (list, dict):
            annotation = get_args(annotation)[-1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, _PydanticModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the one type that matters."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) not in (list, dict) and len(args) == 1:
            annotation = args[0]
            continue
        return annotation


def to_data(answers: Answers) -> dict[str, Any]:
    """The answers as plain YAML-ready data, secrets as written (inline or reference).

    A key is written when it was set (read from the file or assigned) or holds something
    other than its default, so an edit made in place (``node.addresses[net] = ip`` on a
    field left at its default) is never lost.
    """
    dump = functools.partial(answers.model_dump, mode="json", context={"reveal": True})
    kept: dict[str, Any] = _kept(dump(), dump(exclude_unset=True), dump(exclude_defaults=True))
    return kept


def _kept(full: Any, *wanted: Any) -> Any:
    """``full`` limited to the keys present in any of ``wanted`` (same shape, fewer keys)."""
    if isinstance(full, dict):
        return {
            key: _kept(value, *(w.get(key) if isinstance(w, dict) else None for w in wanted))
            for key, value in full.items()
            if any(isinstance(w, dict) and key in w for w in wanted)
        }
    if isinstance(full, list):
        return [
            _kept(item, *(w[i] if isinstance(w, list) and i < len(w) else None for w in wanted))
            for i, item in enumerate(full)
        ]
    return full


def unresolved_secrets(answers: Answers) -> list[Finding]:
    """References (``env:``/``file:``) that cannot be resolved here and now: the BMC
    password, the Chef key and every barclamp attribute of type ``secret``."""
    findings = []
    for loc, secret in [*answers.secrets(), *_attribute_secrets(answers)]:
        try:
            secret.reveal()
        except SecretError as exc:
            findings.append(Finding(loc, str(exc)))
    return findings


def _attribute_secrets(answers: Answers) -> Iterator[tuple[Loc, Secret]]:
    """The secret attributes set in the selected barclamps (always references)."""
    catalog = default_catalog()
    for name, proposal in answers.barclamps.items():
        if name not in catalog:
            continue
        for key, value in proposal.attributes.items():
            attr = catalog[name].attributes.get(key)
            if attr is not None and attr.type == "secret" and isinstance(value, str):
                yield ("barclamps", name, "attributes", key), Secret(value)


def has_inline_secret(answers: Answers) -> bool:
    return any(secret.is_inline for _, secret in answers.secrets())


def save(answers: Answers, path: str | os.PathLike[str], *, header: str | None = None) -> None:
    """Write ``answers`` to ``path`` atomically; the old file survives any failure.

    A file that was loaded keeps its key order and comments. ``header`` is a comment put at
    the top of a new document. Inline secrets make the file mode 0600.
    """
    path = Path(path)
    data = to_data(answers)
    source = answers._document
    tree = merge(source.round_trip_tree() if source is not None else None, data)
    if header and source is None:
        tree.yaml_set_start_comment(header)
    if has_inline_secret(answers):
        mode = 0o600
    else:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = 0o644
    text = dump(tree)
    write_atomic(path, text, mode=mode)
    answers._document = Document(data, text, str(path), tree)
