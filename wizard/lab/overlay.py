"""An answers file, cabled to the lab: what ``apply --lab`` deploys instead of real servers.

The lab's simulated servers stand in for the answers' nodes: a node gets its lab server's NIC
MACs and BMC (address, port, credentials). Which server is cabled to which node is kept by
name in the lab directory (``cabling.json``, gone with ``lab down``): the first time a name
is seen it gets the server whose NICs it has (a node added from a sweep of the lab), else
the first server no node has had, so node *i* of a first answers file is server *i*; a node
keeps its server while others are added or released (a released node's server goes to a
new name once no unused one is left), and ``lab rack`` adds servers to the running lab.
The provisioner listens on loopback, and Chef objects go to the lab's goiardi (as its admin
user, which also registers the nodes' own client keys), or, without goiardi, into a
chef-repo export in the lab directory.
Networks, roles and proposals stay as the answers say. Nothing is written back.

Every command's ``--lab`` (``apply``, ``chef push``, ``power``) goes through
:func:`lab_answers`, so they all see the same cabling: what ``chef push --lab`` uploads is
what ``apply --lab`` would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from wizard.answers import Answers, Node
from wizard.answers.proposals import Proposal
from wizard.base.problems import AnswersError
from wizard.base.secrets import Secret, SecretError
from wizard.base.yamlfile import write_atomic
from wizard.catalog import default_catalog
from wizard.lab.control import Lab, LabError
from wizard.lab.fleet import FleetSpec
from wizard.lab.goiardi import free_port
from wizard.lab.upstream import write_stand_ins

LOOPBACK = "127.0.0.1"


def _cabling_table(lab: Lab) -> dict[str, int]:
    try:
        table: dict[str, int] = json.loads((Path(lab.directory) / "cabling.json").read_text())
    except (FileNotFoundError, ValueError):
        table = {}
    return table


def cabled_servers(lab: Lab, names: list[str]) -> dict[str, int]:
    """The lab servers that nodes of ``names`` are cabled to already (those never deployed on
    this lab have none yet); reads only."""
    table = _cabling_table(lab)
    return {name: table[name] for name in names if name in table}


def cabling(lab: Lab, nodes: list[Node], spec: FleetSpec) -> dict[str, int]:
    """Which of the lab's servers each of ``nodes`` is (see the module docstring), by name.

    A name new to the lab gets the server whose NICs it has (a node added from a sweep of
    the lab), else a server no node has had, else one whose node is gone from ``nodes`` (a
    released server, reused), and is recorded with it. Raises :class:`LabError` when no
    server is left, or a new node has the NICs of a server another node is on."""
    table = _cabling_table(lab)
    names = [node.name for node in nodes]
    new = [node for node in nodes if node.name not in table]
    if not new:
        return {name: table[name] for name in names}
    held = {table[name]: name for name in names if name in table}
    by_mac = {mac: index for index, bmc in enumerate(spec.bmcs) for mac in bmc.hardware.nic_macs}
    unmatched = []
    for node in new:
        index = next((by_mac[mac] for mac in node.macs if mac in by_mac), None)
        if index is None:
            unmatched.append(node.name)
        elif index in held:
            raise LabError(f"node {node.name} has the NICs of lab server {index}, which node "
                           f"{held[index]} is on: take one of them out of the answers")
        else:
            held[index] = node.name
    taken = set(table.values()) | set(held)
    free = [i for i in range(len(spec.bmcs)) if i not in taken] + [
        i for name, i in sorted(table.items(), key=lambda item: item[1])
        if name not in names and i not in held]
    if len(free) < len(unmatched):
        raise LabError(f"the lab has {len(spec.bmcs)} servers and the answers "
                       f"{len(names)} nodes: `crowbar-wizard lab rack "
                       f"{len(unmatched) - len(free)}` racks more")
    held.update(zip(free, unmatched, strict=False))
    cabled = {index: name for index, name in held.items() if name not in table}
    table = {n: i for n, i in table.items() if i not in cabled} | {
        name: index for index, name in cabled.items()}
    write_atomic(Path(lab.directory) / "cabling.json",
                 json.dumps(table, indent=1, sort_keys=True) + "\n", mode=0o644)
    return {name: table[name] for name in names}


def lab_answers(answers: Answers, lab: Lab, notes: list[str] | None = None) -> Answers:
    """``answers`` with nodes on the lab's servers, services on loopback.

    Secret attributes whose reference cannot be resolved here get a made-up lab value
    (said in ``notes``), so the examples deploy on the lab as they are. Raises
    :class:`LabError` when the lab is not up or too small.
    """
    spec = lab.spec()
    needed = max(len(answers.nodes), 1)
    if spec is None:
        raise LabError(f"no lab is up: run `crowbar-wizard lab up --nodes {needed}` first")
    if lab.pid() is None:
        raise LabError(f"the lab in {lab.directory} is not running (its fleet stopped): "
                       f"`crowbar-wizard lab down`, then `lab up --nodes {needed}`")
    if len(spec.bmcs) < len(answers.nodes):
        raise LabError(f"the lab has {len(spec.bmcs)} servers and the answers "
                       f"{len(answers.nodes)} nodes: `crowbar-wizard lab rack "
                       f"{len(answers.nodes) - len(spec.bmcs)}` racks more")
    servers = cabling(lab, answers.nodes, spec)
    nodes = [node.model_copy(update={"macs": list(bmc.hardware.nic_macs),
                                     "bmc_address": bmc.address})
             for node in answers.nodes for bmc in [spec.bmcs[servers[node.name]]]]
    key = _lab_key(lab)
    barclamps = {name: _lab_secrets(name, proposal, key, notes)
                 for name, proposal in answers.barclamps.items()}
    if "provisioner" in barclamps:
        provisioner = barclamps["provisioner"]
        barclamps["provisioner"] = provisioner.model_copy(update={
            "attributes": provisioner.attributes | {"web_port": provisioner_port(lab)}})
    chef = lab.chef()
    if chef is not None:
        vendored = answers.chef.cookbooks_path or str(write_stand_ins(
            default_catalog(), list(answers.barclamps), Path(lab.directory) / "upstream"))
        chef_section = answers.chef.model_copy(update={
            "server_url": chef.url, "client_name": chef.client, "organization": None,
            "key": Secret(chef.admin_key), "export_path": None,
            "cookbooks_path": vendored})
    else:
        chef_section = answers.chef.model_copy(update={
            "server_url": None, "export_path": str(Path(lab.directory) / "chef-repo")})
    return answers.model_copy(update={
        "nodes": nodes, "barclamps": barclamps, "chef": chef_section,
        "admin": answers.admin.model_copy(update={"address": LOOPBACK}),
        "bmc": answers.bmc.model_copy(update={
            "username": spec.username, "password": Secret(spec.password),
            "port": spec.bmcs[0].port}),
    })


def check_deployable(answers: Answers) -> None:
    """What ``apply --lab`` needs of the answers: nodes to put on the lab's servers, and the
    provisioner that installs them (it carries the lab provisioner's port). A file fresh
    from ``crowbar-wizard new`` has neither. Raises :class:`AnswersError` naming each."""
    problems = []
    if not answers.nodes:
        problems.append(answers.problem(("nodes",), (
            "no nodes to deploy on the lab: add them from the lab's servers (the wizard's "
            "hardware discovery step finds them), then select barclamps")))
    if "provisioner" not in answers.barclamps:
        problems.append(answers.problem(("barclamps",), (
            "the provisioner barclamp is not selected, and the lab installs nodes through "
            "it: add `provisioner: {}` under barclamps (or pick barclamps in the wizard), "
            "then `crowbar-wizard allocate FILE` places its roles")))
    if problems:
        raise AnswersError(problems)


def provisioner_port(lab: Lab) -> int:
    """The lab provisioner's port, the same on every apply: nodes installing while apply
    was down call back where their install files say."""
    path = Path(lab.directory) / "provisioner.port"
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        port = free_port()
        write_atomic(path, f"{port}\n", mode=0o644, sync=False)
        return port


def _lab_key(lab: Lab) -> bytes:
    """The lab's own secret (0600 in its directory): made-up values stay the same per lab."""
    path = Path(lab.directory) / "secret.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text())


def _lab_secrets(name: str, proposal: Proposal, key: bytes,
                 notes: list[str] | None) -> Proposal:
    attributes = dict(proposal.attributes)
    for attr, value in proposal.attributes.items():
        if not isinstance(value, str) or not value.startswith(("env:", "file:")):
            continue
        try:
            Secret(value).reveal()
        except SecretError:
            attributes[attr] = hmac.new(key, f"{name}.{attr}".encode(),
                                        hashlib.sha256).hexdigest()[:24]
            if notes is not None:
                notes.append(f"{name}.{attr} ({value}) is not set here: the lab uses a "
                             "made-up value")
    return proposal.model_copy(update={"attributes": attributes})
