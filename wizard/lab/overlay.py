"""An answers file, cabled to the lab: what ``apply --lab`` deploys instead of real servers.

The lab's simulated servers stand in for the answers' nodes, in order: node *i* gets lab
server *i*'s NIC MACs and BMC (address, port, credentials). The provisioner listens on
loopback, and Chef objects go to the lab's goiardi (as its admin user, which also registers
the nodes' own client keys), or, without goiardi, into a chef-repo export in the lab directory.
Networks, roles and proposals stay as the answers say. Nothing is written back.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from wizard.answers import Answers, Proposal
from wizard.lab.control import Lab, LabError
from wizard.secrets import Secret, SecretError

LOOPBACK = "127.0.0.1"


def lab_answers(answers: Answers, lab: Lab, http_port: int,
                notes: list[str] | None = None) -> Answers:
    """``answers`` with nodes on the lab's servers, services on loopback.

    Secret attributes whose reference cannot be resolved here get a made-up lab value
    (said in ``notes``), so the examples deploy on the lab as they are.
    """
    spec = lab.spec()
    if spec is None or lab.pid() is None:
        raise LabError("the lab is not up: run `crowbar-wizard lab up --nodes "
                       f"{len(answers.nodes)}` first")
    if len(spec.bmcs) < len(answers.nodes):
        raise LabError(f"the lab has {len(spec.bmcs)} servers and the answers "
                       f"{len(answers.nodes)} nodes: `crowbar-wizard lab down` and "
                       f"`lab up --nodes {len(answers.nodes)}`")
    nodes = [node.model_copy(update={"macs": list(bmc.hardware.nic_macs),
                                     "bmc_address": bmc.address})
             for node, bmc in zip(answers.nodes, spec.bmcs, strict=False)]
    key = _lab_key(lab)
    barclamps = {name: _lab_secrets(name, proposal, key, notes)
                 for name, proposal in answers.barclamps.items()}
    provisioner = barclamps.get("provisioner") or Proposal()
    barclamps["provisioner"] = provisioner.model_copy(update={
        "attributes": provisioner.attributes | {"web_port": http_port}})
    chef = lab.chef()
    if chef is not None:
        chef_section = answers.chef.model_copy(update={
            "server_url": chef.url, "client_name": "admin", "organization": None,
            "key": Secret(chef.admin_key), "export_path": None})
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
