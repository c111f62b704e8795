"""The OS installers' answer files, rendered from the example answers and checked for behaviour.

Kickstarts go through pykickstart's ``ksvalidator``, preseeds through debconf's
``debconf-set-selections --checkonly``, and autoinstall user-data through a check of the
top-level keys and types subiquity documents, and each post-install step (late_command,
late-commands, %post) through the shell its installer runs it with (``sh -n``, ``bash -n``);
each validator also gets a negative control.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from wizard.answers import OS_FAMILIES, Answers, load
from wizard.catalog import default_catalog
from wizard.provisioning.mirror import CHEF_PACKAGE
from wizard.provisioning.render import install_files
from wizard.provisioning.site import ProvisionerSite

EXAMPLES = Path(__file__).parents[2] / "answers" / "examples"
OSES = list(OS_FAMILIES)
KEYS = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDTnhKF4dXG8xSatgZHn28pPMKhbLeZn60JyXL2ZKZke "
        "admin@crowbar",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNi9tWb9zDCWWbI"
        "/fi+laNA6AR60LzX1/goTaQ8sCfsyaLUJtZ7ideAMAFfJt5B9RSiG75b0RPU+4tfB7//AWb8= ops@laptop"]
HASH = "$6$crowbarsalt$Zx8bq5V0Jc2M9c1nTQb8p1X3tWkqf7o8cQ4bqkVhYJ0sY1b6uKzqjM0jM1wK6m4v0"
VARIANTS: dict[str, dict[str, Any]] = {
    "example": {},
    "hash-org-serial": {"root_hash": HASH, "serial": "ttyS1,115200",
                        "chef": {"organization": "acme"}},
    "no-chef": {"chef": {"server_url": None}},
}
AUTOINSTALL_TYPES: dict[str, type | tuple[type, ...]] = {
    "version": int, "interactive-sections": list, "early-commands": list, "locale": str,
    "refresh-installer": dict, "keyboard": dict, "source": dict, "network": dict,
    "proxy": (str, type(None)), "apt": dict, "storage": dict, "identity": dict,
    "active-directory": dict, "ubuntu-pro": dict, "ssh": dict, "codecs": dict, "drivers": dict,
    "oem": dict, "snaps": list, "debconf-selections": str, "packages": list, "kernel": dict,
    "kernel-crash-dumps": dict, "timezone": str, "updates": str, "shutdown": str,
    "late-commands": list, "error-commands": list, "reporting": dict, "user-data": dict,
    "zdevs": list,
}
"""Subiquity's documented top-level autoinstall keys and the YAML type each takes."""
DEBCONF_TYPES = {"select", "boolean", "string", "multiselect", "note", "password", "text",
                 "title", "seen"}
SELECTION = re.compile(r"^(\S+)\s+(\S+)\s+(\S+)(?:\s(.*))?$")


def _answers(os_id: str = "ubuntu-24.04", example: str = "lab-small", root_hash: str | None = None,
             serial: str | None = None, chef: dict[str, Any] | None = None) -> Answers:
    """An example's answers installing ``os_id`` from a mirror of its own, with SSH keys."""
    answers = load(EXAMPLES / f"{example}.yaml")
    mirror = f"http://{answers.admin.address}:8091/{os_id.split('-')[0]}"
    update: dict[str, Any] = {"provisioning": answers.provisioning.model_copy(
        update={"os": os_id, "mirror": mirror, "ssh_authorized_keys": KEYS})}
    proposal = answers.barclamps["provisioner"]
    attributes = dict(proposal.attributes)
    if root_hash is not None:
        attributes["root_password_hash"] = root_hash
    if serial is not None:
        attributes["serial_console"] = serial
    update["barclamps"] = {**answers.barclamps,
                           "provisioner": proposal.model_copy(update={"attributes": attributes})}
    if chef is not None:
        update["chef"] = answers.chef.model_copy(update=chef)
    return answers.model_copy(update=update)


def _render(answers: Answers, admin_ssh_key: str | None = None
            ) -> tuple[dict[str, str], dict[str, Any]]:
    """The first node's install files and the context they were rendered from."""
    site = ProvisionerSite(answers, default_catalog(), b"k" * 32, admin_ssh_key=admin_ssh_key)
    node = next(iter(site.nodes.values()))
    return install_files(site, node), site.install_context(node)


def post_commands(family: str, files: dict[str, str]) -> list[str]:
    """The post-install step as its installer runs it: each command under a shell
    (:data:`SHELLS`), in order, until one fails. Debian's late_command is one command (its
    continuation lines joined as debconf joins them), kickstart's %post one script."""
    if family == "ubuntu":
        return yaml.safe_load(files["user-data"])["autoinstall"]["late-commands"]
    if family == "debian":
        late = next(line for line in _selections(files["preseed.cfg"])
                    if line.startswith("d-i preseed/late_command string "))
        return [late.split(" string ", 1)[1].strip()]
    return [files["ks.cfg"].split("\n%post", 1)[1].split("\n", 1)[1].split("\n%end", 1)[0]]


SHELLS = {"debian": "sh", "ubuntu": "sh", "rhel": "bash"}
"""What runs each family's post-install commands: d-i's busybox ash and subiquity's dash
are POSIX shells (dash stands in for ash here), anaconda runs %post with bash."""


def _last_command(family: str, files: dict[str, str]) -> str:
    """The command the post-install step ends with when everything in it works: its last
    one, or the last of the ``else`` branch it ends with."""
    tail = post_commands(family, files)[-1].rstrip()
    if tail.endswith("fi"):
        tail = tail[tail.rindex("else") + len("else"):-len("fi")]
    return re.split(r" && |\n", tail.strip(" ;\n"))[-1].strip(" ;")


def _selections(text: str) -> list[str]:
    """A preseed's selection lines, continuations joined as debconf-set-selections joins them."""
    lines = re.sub(r"\\\n", "", text).splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def autoinstall_problems(autoinstall: dict[str, Any]) -> list[str]:
    """What subiquity would reject in an ``autoinstall`` mapping: unknown keys, wrong types."""
    problems = [f"{key}: unknown autoinstall key" for key in autoinstall
                if key not in AUTOINSTALL_TYPES]
    problems += [f"{key}: not a {kind}" for key, kind in AUTOINSTALL_TYPES.items()
                 if key in autoinstall and not isinstance(autoinstall[key], kind)]
    version = autoinstall.get("version")
    if type(version) is not int or version != 1:
        problems.append("version: must be the integer 1")
    for key in ("early-commands", "late-commands", "error-commands"):
        if not all(isinstance(cmd, str) for cmd in autoinstall.get(key, [])):
            problems.append(f"{key}: every command must be a string")
    ssh = autoinstall.get("ssh", {})
    if not isinstance(ssh.get("install-server", False), bool):
        problems.append("ssh.install-server: not a bool")
    keys = ssh.get("authorized-keys", [])
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)):
        problems.append("ssh.authorized-keys: not a list of strings")
    if "storage" in autoinstall and not isinstance(
            autoinstall["storage"].get("layout", {}).get("name"), str):
        problems.append("storage.layout.name: missing")
    for entry in autoinstall.get("apt", {}).get("primary", []):
        if not isinstance(entry.get("uri"), str):
            problems.append("apt.primary: an entry without a uri")
    return problems


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("os_id", ["rocky-9", "alma-9"])
def test_kickstart_passes_ksvalidator(os_id: str, variant: str, tmp_path: Path) -> None:
    """pykickstart's ksvalidator accepts the rendered ks.cfg as RHEL 9 syntax, warning-free."""
    files, _ = _render(_answers(os_id, **VARIANTS[variant]))
    rc, out = _ksvalidate(tmp_path, files["ks.cfg"])
    assert (rc, out) == (0, [])


def test_ksvalidator_rejects_a_broken_kickstart(tmp_path: Path) -> None:
    """Negative control: an unknown command makes ksvalidator fail."""
    files, _ = _render(_answers("rocky-9"))
    rc, out = _ksvalidate(tmp_path, files["ks.cfg"].replace("\nskipx\n", "\nfrobnicate --now\n"))
    assert rc != 0 and out


def _ksvalidate(tmp_path: Path, text: str) -> tuple[int, list[str]]:
    """ksvalidator's exit code and its messages (less the 'Checking kickstart file' banner)."""
    path = tmp_path / "ks.cfg"
    path.write_text(text)
    ksvalidator = Path(sys.executable).parent / "ksvalidator"
    result = subprocess.run([str(ksvalidator), "-v", "RHEL9", str(path)],
                            capture_output=True, text=True, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return result.returncode, [line for line in lines
                               if line.strip() and not line.startswith("Checking kickstart file")]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("os_id", ["ubuntu-24.04", "ubuntu-22.04"])
def test_autoinstall_user_data_is_what_subiquity_reads(os_id: str, variant: str) -> None:
    """user-data is #cloud-config whose autoinstall keys and types subiquity documents, sets the
    hostname, gives root the keys, uses the mirror and ends its late-commands with the callback."""
    files, ctx = _render(_answers(os_id, **VARIANTS[variant]))
    assert files["user-data"].splitlines()[0] == "#cloud-config"
    autoinstall = yaml.safe_load(files["user-data"])["autoinstall"]
    assert autoinstall_problems(autoinstall) == []
    user_data = autoinstall["user-data"]
    assert (user_data["hostname"], user_data["fqdn"]) == (ctx["node"]["name"], ctx["node"]["fqdn"])
    assert autoinstall["ssh"]["authorized-keys"] == KEYS
    assert user_data["users"][0]["name"] == "root"
    assert user_data["users"][0]["ssh_authorized_keys"] == KEYS
    assert autoinstall["apt"]["primary"][0]["uri"] == ctx["mirror"]
    last = autoinstall["late-commands"][-1]
    assert ctx["callbacks"]["installed"] in last and ctx["node"]["token"] in last
    meta = yaml.safe_load(files["meta-data"])
    assert meta["local-hostname"] == ctx["node"]["name"] and meta["instance-id"]


@pytest.mark.parametrize("mutation", [
    {"bogus-section": {}}, {"version": "1"}, {"version": True}, {"late-commands": [["ls"]]},
    {"ssh": {"install-server": "yes"}}, {"storage": {"layout": {}}},
])
def test_autoinstall_check_rejects_what_subiquity_would(mutation: dict[str, Any]) -> None:
    """Negative control: an unknown key or a wrong type fails the autoinstall check."""
    files, _ = _render(_answers())
    autoinstall = yaml.safe_load(files["user-data"])["autoinstall"] | mutation
    assert autoinstall_problems(autoinstall)


def _debconf(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("debconf-set-selections") or "/usr/bin/debconf-set-selections"
    if not Path(binary).exists():
        if os.environ.get("CI"):
            pytest.fail("debconf-set-selections is missing (install the debconf package)")
        pytest.skip("debconf-set-selections is not installed")
    return subprocess.run([binary, "--checkonly", str(path)], capture_output=True, text=True,
                          check=False)


@pytest.mark.parametrize("variant", VARIANTS)
def test_preseed_is_debconf_selections(variant: str, tmp_path: Path) -> None:
    """Every preseed line is 'owner question type [value]' and debconf-set-selections
    --checkonly accepts the file without a warning."""
    files, _ = _render(_answers("debian-12", **VARIANTS[variant]))
    for line in _selections(files["preseed.cfg"]):
        match = SELECTION.match(line.strip())
        assert match and match[3] in DEBCONF_TYPES, line
    path = tmp_path / "preseed.cfg"
    path.write_text(files["preseed.cfg"])
    result = _debconf(path)
    assert (result.returncode, result.stderr) == (0, "")


def test_debconf_rejects_a_malformed_line(tmp_path: Path) -> None:
    """Negative control: a line without a type makes debconf-set-selections fail."""
    files, _ = _render(_answers("debian-12"))
    path = tmp_path / "preseed.cfg"
    path.write_text(files["preseed.cfg"] + "d-i broken/question\n")
    assert _debconf(path).returncode != 0


@pytest.mark.parametrize("variant", ["example", "no-chef"])
@pytest.mark.parametrize("os_id", OSES)
def test_answer_files_carry_node_mirror_keys_and_callback(os_id: str, variant: str) -> None:
    """Every family names the node, uses the mirror, installs each key for root and calls the
    admin node back, with the node's token, as the post-install step's last command (with a
    Chef server: the last of the branch taken once chef-client is installed and registered)."""
    files, ctx = _render(_answers(os_id, **VARIANTS[variant]))
    text = "\n".join(files.values())
    for expected in (ctx["node"]["name"], ctx["node"]["token"], ctx["callbacks"]["installed"],
                     *KEYS):
        assert expected in text
    if ctx["os"]["family"] == "debian":
        _, _, host, directory = ctx["mirror"].split("/", 3)
        assert f"d-i mirror/http/hostname string {host}\n" in text
        assert f"d-i mirror/http/directory string /{directory}\n" in text
    else:
        assert ctx["mirror"] in text
    last = _last_command(ctx["os"]["family"], files)
    assert "curl -fsS -X POST" in last
    assert f'"{ctx["callbacks"]["token_header"]}: {ctx["node"]["token"]}"' in last
    assert last.endswith(ctx["callbacks"]["installed"])


@pytest.mark.parametrize("os_id", OSES)
def test_chef_bootstrap_only_with_a_chef_server(os_id: str) -> None:
    """Without a Chef server URL nothing installs or configures chef-client."""
    files, _ = _render(_answers(os_id, chef={"server_url": None}))
    text = "\n".join(files.values())
    for marker in ("install -y chef", "/etc/chef", "client.rb", "client-key", "chef_failed",
                   "/problem"):
        assert marker not in text


@pytest.mark.parametrize("os_id", OSES)
def test_the_installers_install_the_package_the_preflight_asks_the_mirror_for(
        os_id: str) -> None:
    """``pxe preflight`` asks the mirror for CHEF_PACKAGE: each installer installs that."""
    files, _ = _render(_answers(os_id))
    installs = re.findall(r"(?:apt-get|dnf) install -y (\S+)", "\n".join(files.values()))
    assert installs == [CHEF_PACKAGE]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("os_id", OSES)
def test_post_install_commands_are_what_the_shell_reads(os_id: str, variant: str) -> None:
    """Each post-install command parses in the shell its installer runs it with (sh -n,
    bash -n: every if has its fi, every quote its end)."""
    family = OS_FAMILIES[os_id][0]
    files, _ = _render(_answers(os_id, **VARIANTS[variant]))
    for command in post_commands(family, files):
        result = _shell_check(family, command)
        assert (result.returncode, result.stderr) == (0, ""), command


def test_the_shell_check_rejects_a_broken_command() -> None:
    """Negative control: an if without its fi fails sh -n and bash -n."""
    files, _ = _render(_answers("rocky-9"))
    [post] = post_commands("rhel", files)
    assert post.rstrip().endswith("fi")
    for family in ("debian", "rhel"):
        assert _shell_check(family, post.rstrip()[:-2]).returncode != 0


def _shell_check(family: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SHELLS[family], "-n", "-c", command], capture_output=True,
                          text=True, check=False)


@pytest.mark.parametrize("os_id", OSES)
def test_a_chef_client_that_fails_is_reported_instead_of_installed(os_id: str) -> None:
    """Each step of the Chef client's setup that can fail has a branch that reports it to
    the problem callback (the node's token, a reason naming the mirror for the package),
    and ``installed`` is called only in the branch where all of them worked. (Running the
    branches for real: tests/integration/test_installer_problem.py.)"""
    family = OS_FAMILIES[os_id][0]
    files, ctx = _render(_answers(os_id))
    script = "\n".join(post_commands(family, files))
    report = re.search(r"chef_failed\(\) \{(.*?)\}", script, re.S)
    assert report and ctx["callbacks"]["problem"] in report[1]
    assert ctx["node"]["token"] in report[1]
    assert '--data-binary "chef-client could not be $1"' in report[1]
    assert f"chef_failed 'installed from {ctx['mirror']}: '\"$(tail -n 1 " in script
    assert script.count("chef_failed ") == 3  # the package, client.rb and key, registering
    assert script.count(ctx["callbacks"]["installed"]) == 1
    assert script.index(ctx["callbacks"]["installed"]) > script.rindex("else")


@pytest.mark.parametrize("os_id", OSES)
def test_chef_bootstrap_order_and_organization(os_id: str) -> None:
    """chef-client is installed, then client.rb (URL ending in /organizations/<org>, the
    node's own key, no validator) written, then the node makes its key and sends the public
    half with its token, all before the callback; nothing fetches a validator key."""
    files, ctx = _render(_answers(os_id, chef={"organization": "acme"}))
    text = "\n".join(files.values())
    url = re.search(r'chef_server_url "([^"]+)"', text)
    assert url and url[1] == "http://192.168.124.10:4545/organizations/acme"
    assert f'node_name "{ctx["node"]["fqdn"]}"' in text
    assert 'client_key "/etc/chef/client.pem"' in text
    assert "validation" not in text and "validator" not in text
    script = "\n".join(post_commands(ctx["os"]["family"], files))
    steps = [script.index(step) for step in (
        "install -y chef", "/etc/chef/client.rb", "genrsa", ctx["callbacks"]["client_key"],
        ctx["callbacks"]["installed"])]
    assert steps == sorted(steps)
    commands = re.split(r"\n| && ", script)
    send = next(cmd for cmd in commands if ctx["callbacks"]["client_key"] in cmd)
    assert "--data-binary @/etc/chef/client.pub" in send and ctx["node"]["token"] in send
    genrsa = next(cmd for cmd in commands if "genrsa" in cmd)
    assert "umask 077" in genrsa  # the private key is never readable by others


@pytest.mark.parametrize("os_id", OSES)
def test_root_password_locked_unless_a_hash_is_given(os_id: str) -> None:
    """No root_password_hash locks root's password; a hash becomes root's password."""
    family = OS_FAMILIES[os_id][0]
    locked = {"ubuntu": "lock_passwd: true", "rhel": "\nrootpw --lock\n",
              "debian": "\nd-i passwd/root-password-crypted password !\n"}
    hashed = {"ubuntu": f"hashed_passwd: {json.dumps(HASH)}",
              "rhel": f"\nrootpw --iscrypted '{HASH}'\n",
              "debian": f"\nd-i passwd/root-password-crypted password {HASH}\n"}
    plain = "\n".join(_render(_answers(os_id))[0].values())
    assert locked[family] in plain and HASH not in plain
    with_hash = "\n".join(_render(_answers(os_id, root_hash=HASH))[0].values())
    assert hashed[family] in with_hash and locked[family] not in with_hash


@pytest.mark.parametrize("os_id", OSES)
@pytest.mark.parametrize("example", sorted(path.stem for path in EXAMPLES.glob("*.yaml")))
def test_every_node_of_every_example_renders(example: str, os_id: str) -> None:
    """Every node of every example renders in every OS family without a template error."""
    answers = _answers(os_id, example)
    site = ProvisionerSite(answers, default_catalog(), b"k" * 32)
    assert site.nodes
    for node in site.nodes.values():
        files = install_files(site, node)
        assert all(text.endswith("\n") for text in files.values())
        assert node.fqdn in files.get("user-data", "") + files.get("preseed.cfg", "") + \
            files.get("ks.cfg", "")
        assert not any(line != line.rstrip() for text in files.values()
                       for line in text.splitlines())


@pytest.mark.parametrize("os_id", OSES)
def test_client_rb_values_are_ruby_strings(os_id: str) -> None:
    """client.rb is Ruby: its values are double-quoted Ruby strings with #{...} escaped, so
    even a value validation would refuse (set here without it) cannot run Ruby code."""
    answers = _answers(os_id)
    evil = 'http://192.168.124.10:4545/#{system("id")}"'
    answers = answers.model_copy(update={"chef": answers.chef.model_copy(
        update={"server_url": evil})})
    text = "\n".join(_render(answers)[0].values())
    assert 'chef_server_url "http://192.168.124.10:4545/\\#{system(\\"id\\")}\\""' in text


ADMIN_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ+5Yk/a3bgcIQuT7Opz1O36SL4nsUkJEjRAC4vR5zNu "
             "crowbar-wizard-admin")


def _root_keys(family: str, files: dict[str, str], tmp_path: Path) -> list[str]:
    """The lines root's authorized_keys gets: autoinstall's keys as subiquity reads them
    (the installer's ssh section and cloud-init's root user); the preseed's and kickstart's
    printf run by the shell into a file of the test's."""
    if family == "ubuntu":
        data = yaml.safe_load(files["user-data"])["autoinstall"]
        keys: list[str] = data["ssh"]["authorized-keys"]
        assert data["user-data"]["users"][0]["ssh_authorized_keys"] == keys
        return keys
    text = "\n".join(post_commands(family, files))
    match = re.search(r"printf '%s\\n' ((?:'[^']*' )+)>> (?:/target)?/root/\.ssh/"
                      r"authorized_keys", text)
    assert match is not None
    target = tmp_path / "authorized_keys"
    subprocess.run([SHELLS[family], "-c", f"printf '%s\\n' {match.group(1)}> \"$1\"", "sh",
                    str(target)], check=True)
    return target.read_text().splitlines()


@pytest.mark.parametrize("os_id", OSES)
def test_the_admin_nodes_key_reaches_root_beside_the_operators(
        os_id: str, tmp_path: Path) -> None:
    """Given the admin node's public key (for running chef-client over SSH), every family
    installs it for root after the answers' keys; without it, only theirs."""
    family = OS_FAMILIES[os_id][0]
    files, _ = _render(_answers(os_id), admin_ssh_key=ADMIN_KEY)
    assert _root_keys(family, files, tmp_path) == [*KEYS, ADMIN_KEY]
    files, _ = _render(_answers(os_id))
    assert _root_keys(family, files, tmp_path) == KEYS
    files, _ = _render(_answers(os_id).model_copy(update={
        "provisioning": _answers(os_id).provisioning.model_copy(
            update={"ssh_authorized_keys": []})}), admin_ssh_key=ADMIN_KEY)
    assert _root_keys(family, files, tmp_path) == [ADMIN_KEY], "the only key"


def test_an_admin_key_that_is_no_public_key_line_is_refused() -> None:
    with pytest.raises(ValueError, match="not an OpenSSH public key line"):
        ProvisionerSite(_answers(), default_catalog(), b"k" * 32,
                        admin_ssh_key="command=\"sh\" " + ADMIN_KEY)
