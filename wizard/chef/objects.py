"""Chef objects of a deployment: environment, roles, data bag items and node run lists.

Everything is rendered from an answers file and the barclamp catalog; nothing here talks
to a Chef server (that is ``wizard/drivers/chef.py``). :func:`export_repo` writes the
objects as a knife-compatible chef-repo.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from wizard.answers import OS_FAMILIES, Answers, Node
from wizard.answers.addressing import node_addresses
from wizard.answers.node_network import BOND_MODES, node_network
from wizard.answers.proposals import assignments, attribute_values
from wizard.base.fields import ssh_public_key
from wizard.base.problems import CatalogError, Problem
from wizard.base.secrets import Secret, SecretError
from wizard.catalog import Catalog, UpstreamCookbook, render_yaml
from wizard.catalog.samples import networks_context
from wizard.chef.berksfile import berksfile
from wizard.chef.cookbooks import Cookbook

DATA_BAG = "crowbar"
EXPORT_MARKER = ".crowbar-wizard-export"
MARKER_HEADER = "written by crowbar-wizard chef export; the files it wrote:\n"
_REPO_LAYOUT = re.compile(r"(environments|roles|nodes)/[^/]+\.json|data_bags/[^/]+/[^/]+\.json")
"""The files of an export from before the marker listed them (cookbooks came later)."""


@dataclass
class ChefObjects:
    """All Chef objects of one deployment, as the JSON documents the Chef API takes."""

    environment: dict[str, Any]
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_bags: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    secret_environment: bool = False
    """The environment holds a revealed secret (a template put one in it)."""
    secret_items: set[tuple[str, str]] = field(default_factory=set)
    """(bag, item) of every data bag item holding a revealed secret."""
    cookbooks: dict[str, Cookbook] = field(default_factory=dict)
    """The cookbooks to upload (by name), each pinned in the environment."""
    upstream: dict[str, UpstreamCookbook] = field(default_factory=dict)
    """The upstream cookbooks the deployment's barclamps declare (the export pins them)."""
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each barclamp's attributes as the answers set them (defaults filled in, secrets
    revealed): not a Chef object, but what a change to a deployed site compares."""


# --- template contexts -----------------------------------------------------------------------


def deployment_context(answers: Answers, catalog: Catalog) -> dict[str, Any]:
    """What every template of this deployment sees, secrets revealed (``barclamp`` etc. unset).

    Raises :class:`wizard.base.secrets.SecretError` when a secret reference cannot be resolved.
    """
    domain = answers.site.domain
    addresses = node_addresses(answers)
    placed = assignments(answers, catalog)
    held: dict[str, list[str]] = {}
    for roles in placed.values():
        for role, names in roles.items():
            for name in names:
                held.setdefault(name, []).append(role)
    admin_net = "admin"
    nodes: dict[str, Any] = {
        node.name: {
            "name": node.name, "fqdn": f"{node.name}.{domain}",
            "address": addresses[node.name].get(admin_net),
            "addresses": addresses[node.name], "bmc_address": node.bmc_address,
            "roles": held.get(node.name, []), "intended": list(node.roles),
            "hardware": node.hardware.model_dump() if node.hardware else None,
        }
        for node in answers.nodes
    }
    admin = answers.admin
    nodes[admin.hostname] = {
        "name": admin.hostname, "fqdn": f"{admin.hostname}.{domain}", "address": admin.address,
        "addresses": {admin_net: admin.address}, "bmc_address": None,
        "roles": held.get(admin.hostname, []), "intended": [], "hardware": None,
    }
    proposals = {}
    for name, roles in placed.items():
        proposal = answers.barclamps[name]
        values = attribute_values(catalog[name], proposal.attributes)
        for key, attr in catalog[name].attributes.items():
            if attr.type == "secret" and values[key] is not None:
                try:
                    values[key] = Secret(values[key]).reveal()
                except SecretError as exc:
                    raise SecretError(f"{name} attribute {key}: {exc}") from None
        proposals[name] = {"proposal": proposal.proposal, "attributes": values, "roles": roles}
    return {
        "nodes": nodes, "proposals": proposals,
        "site": answers.site.model_dump(),
        "admin": {"hostname": admin.hostname, "fqdn": f"{admin.hostname}.{domain}",
                  "address": admin.address},
        "networks": networks_context(answers.networks),
    }


# --- rendering ---------------------------------------------------------------------------------


def render(answers: Answers, catalog: Catalog,
           cookbooks: Mapping[str, Cookbook] | None = None, *,
           admin_ssh_key: str | None = None) -> ChefObjects:
    """Every Chef object of a valid answers file, in barclamp apply order.

    Objects that hold a revealed secret are marked (``secret_environment``, ``secret_items``)
    as they are built, so an export can write them 0600. The environment pins each of
    ``cookbooks`` (see :mod:`wizard.chef.cookbooks`) to its version, so nodes run what was
    uploaded and not whatever version a server holds last. ``admin_ssh_key`` (the admin
    node's public key line, see :func:`site_attributes`) keeps root's ``authorized_keys``
    open to the admin node when a converge rewrites it.
    """
    context = deployment_context(answers, catalog)
    decoys = _decoy_context(context, catalog)
    environment_name = answers.site.name
    order = catalog.apply_order(answers.barclamps)
    default_attributes: dict[str, Any] = {
        "crowbar": site_attributes(answers, context, admin_ssh_key)}
    objects = ChefObjects(environment={}, cookbooks=dict(sorted((cookbooks or {}).items())),
                          upstream=catalog.upstream(order))
    bag: dict[str, dict[str, Any]] = {}
    for name in order:
        barclamp, proposal = catalog[name], context["proposals"][name]
        objects.attributes[name] = proposal["attributes"]
        per_barclamp = {"barclamp": name, "proposal": proposal["proposal"],
                        "attributes": proposal["attributes"], "roles": proposal["roles"]}
        local = {**context, **per_barclamp}
        decoy = None if decoys is None else {
            **decoys, **per_barclamp, "attributes": decoys["proposals"][name]["attributes"]}
        secret_keys = {k for k, a in barclamp.attributes.items() if a.type == "secret"}
        template = catalog.template(name, "environment.yaml.j2")
        if template is not None:
            rendered, secret = _render_marked(template, local, decoy)
            objects.secret_environment |= secret
        else:
            rendered = {k: v for k, v in proposal["attributes"].items() if k not in secret_keys}
        default_attributes[name] = _beside_site(name, default_attributes.get(name), rendered)
        item_id = f"bc-{name}-{proposal['proposal']}"
        template = catalog.template(name, "data_bag.yaml.j2")
        if template is not None:
            body, secret = _render_marked(template, local, decoy)
        else:
            body = {
                "attributes": {name: proposal["attributes"]},
                "deployment": {name: {
                    "elements": proposal["roles"],
                    "element_order": [[role.name] for role in barclamp.roles],
                }},
            }
            secret = any(proposal["attributes"][k] is not None for k in secret_keys)
        bag[item_id] = {"id": item_id, **body}
        if secret:
            objects.secret_items.add((DATA_BAG, item_id))
        for role in barclamp.roles:
            if proposal["roles"][role.name] and role.run_list:
                objects.roles[role.name] = {
                    "name": role.name, "description": role.description,
                    "json_class": "Chef::Role", "chef_type": "role",
                    "run_list": list(role.run_list), "default_attributes": {},
                    "override_attributes": {}, "env_run_lists": {},
                }
    objects.environment = {
        "name": environment_name,
        "description": f"Crowbar Wizard deployment {answers.site.name} ({answers.site.domain})",
        "json_class": "Chef::Environment", "chef_type": "environment",
        "default_attributes": default_attributes, "override_attributes": {},
        "cookbook_versions": {name: f"= {cookbook.version}"
                              for name, cookbook in objects.cookbooks.items()},
    }
    objects.data_bags[DATA_BAG] = bag
    role_rank = {role: i for i, role in enumerate(objects.roles)}
    planned = {node.name: node_interfaces(answers, node, context["nodes"][node.name]["addresses"])
               for node in answers.nodes}
    for node in context["nodes"].values():
        chef_roles = [role for role in node["roles"] if role in role_rank]
        if not chef_roles:
            continue
        run_list = [f"role[{r}]" for r in sorted(chef_roles, key=role_rank.__getitem__)]
        objects.nodes[node["fqdn"]] = {
            "name": node["fqdn"], "chef_environment": environment_name,
            "json_class": "Chef::Node", "chef_type": "node", "run_list": run_list,
            "normal": {"crowbar": {"network": node["addresses"],
                                   "intended_roles": node["intended"],
                                   **planned.get(node["name"], {})}},
        }
    return objects


def site_attributes(answers: Answers, context: dict[str, Any],
                    admin_ssh_key: str | None = None) -> dict[str, Any]:
    """``default_attributes.crowbar``: the site, the admin node, every network and conduit.

    Cookbooks such as neutron's and swift's read which conduit carries which network here;
    each node's own devices are in its ``crowbar.interfaces`` (:func:`node_interfaces`).
    ``provisioning.admin_ssh_key``, when given, is the admin node's public key line, which
    the installers put in root's ``authorized_keys`` for running chef-client over SSH
    (:class:`wizard.chef.starters.SshStarter`); the provisioner cookbook keeps it there.
    """
    conduits = {
        name: {"interfaces": [str(i) for i in conduit.interfaces],
               "teaming_mode": conduit.teaming_mode,
               "bond_mode": BOND_MODES[conduit.teaming_mode]}
        for name, conduit in answers.conduits.items()
    }
    family, release = OS_FAMILIES[answers.provisioning.os]
    provisioning = {
        "os": answers.provisioning.os, "family": family, "release": release,
        "mirror": answers.provisioning.mirror.rstrip("/"),
        "ssh_authorized_keys": list(answers.provisioning.ssh_authorized_keys),
    }
    if admin_ssh_key:
        provisioning["admin_ssh_key"] = ssh_public_key(admin_ssh_key)
    return {"site": context["site"], "admin": context["admin"],
            "networks": context["networks"], "conduits": conduits,
            "provisioning": provisioning}


def node_interfaces(answers: Answers, node: Node, addresses: dict[str, str]) -> dict[str, Any]:
    """A node's planned devices as its Chef attributes show them (its OS configured them at
    install time): ``interfaces`` by network (device, address, VLAN, conduit), ``conduits``
    by name (the device and the NICs, pinned by MAC, it is made of)."""
    planned = node_network(answers, node, addresses, [])
    macs = {nic.name: nic.mac for nic in planned.nics}
    interfaces: dict[str, Any] = {}
    conduits: dict[str, Any] = {}
    for device in planned.devices:
        base = planned.device(device.parent) if device.parent else device
        assert base is not None
        for address in device.addresses:
            conduit = answers.networks[address.network].conduit
            interfaces[address.network] = {
                "device": device.name, "address": address.ip, "prefix": address.prefix,
                "netmask": address.netmask, "vlan": device.vlan, "conduit": conduit,
                "mtu": device.mtu}
            conduits[conduit] = {  # conduits on the same NICs share one device
                "device": base.name, "kind": base.kind, "bond_mode": base.bond_mode,
                "nics": [{"name": nic, "mac": macs[nic]} for nic in base.nics]}
    return {"interfaces": interfaces, "conduits": conduits,
            "unconfigured": dict(planned.unconfigured)}


def _beside_site(name: str, site: dict[str, Any] | None, rendered: Any) -> Any:
    """The ``crowbar`` barclamp's attributes share ``crowbar`` with the site's: merge them,
    and a key the site already uses is a catalog bug, not something to overwrite."""
    if site is None:
        return rendered
    clash = sorted(set(site) & set(rendered))
    if clash:
        raise CatalogError([Problem(
            f"barclamps/{name}/templates/environment.yaml.j2", 1, 1, "(template)",
            f"sets {', '.join(clash)}, which the site's attributes use")])
    return {**site, **rendered}


def _decoy_context(context: dict[str, Any], catalog: Catalog) -> dict[str, Any] | None:
    """``context`` with every revealed secret replaced by a decoy; None if no secret is set."""
    proposals, found = {}, False
    for name, proposal in context["proposals"].items():
        attributes = dict(proposal["attributes"])
        for key, attr in catalog[name].attributes.items():
            if attr.type == "secret" and attributes[key] is not None:
                attributes[key] = _decoy(attributes[key])
                found = True
        proposals[name] = {**proposal, "attributes": attributes}
    return {**context, "proposals": proposals} if found else None


def _decoy(secret: str) -> str:
    """A stand-in as long as ``secret`` that differs from it in every character (and in
    digits only, which case filters leave alone)."""
    return "".join("1" if char == "0" else "0" for char in secret)


def _render_marked(template: jinja2.Template, context: dict[str, Any], decoy: dict[str, Any] | None
                   ) -> tuple[dict[str, Any], bool]:
    """Render ``template``, and say whether the result holds a secret: whether it changes
    when every secret does (rendered again with decoys). Searching the output for the
    secrets' text instead misses any the template escaped or transformed."""
    value = render_yaml(template, context)
    return value, decoy is not None and render_yaml(template, decoy) != value


# --- chef-repo export --------------------------------------------------------------------------


class ExportError(Exception):
    """An export that would remove something no earlier export wrote."""


@dataclass
class ExportResult:
    """What an export wrote, and what it removed of what was in the directory before."""

    files: int
    stale: list[str] = field(default_factory=list)
    """Files an earlier export wrote that this one does not (objects no longer produced)."""
    foreign: list[str] = field(default_factory=list)
    """Files no export wrote, removed because ``force`` was given."""


def repo_files(objects: ChefObjects) -> dict[str, str | bytes]:
    """``{relative path: content}`` of a knife-compatible chef-repo: the objects as JSON,
    the cookbooks to upload, and a Berksfile pinning those and the upstream ones."""
    files: dict[str, str | bytes] = {
        f"environments/{objects.environment['name']}.json": _json(objects.environment)}
    files |= {f"roles/{name}.json": _json(role) for name, role in objects.roles.items()}
    files |= {f"data_bags/{bag}/{item}.json": _json(body)
              for bag, items in objects.data_bags.items() for item, body in items.items()}
    files |= {f"nodes/{name}.json": _json(node) for name, node in objects.nodes.items()}
    files |= {f"cookbooks/{name}/{file.path}": file.read()
              for name, cookbook in objects.cookbooks.items() for file in cookbook.files}
    if objects.cookbooks or objects.upstream:
        files["Berksfile"] = berksfile(objects.cookbooks, objects.upstream)
    return files


def private_files(objects: ChefObjects) -> set[str]:
    """The paths of :func:`repo_files` that hold a revealed secret (written 0600)."""
    paths = {f"data_bags/{bag}/{item}.json" for bag, item in objects.secret_items}
    if objects.secret_environment:
        paths.add(f"environments/{objects.environment['name']}.json")
    return paths


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def export_repo(objects: ChefObjects, directory: Path, *, force: bool = False) -> ExportResult:
    """Write the chef-repo into ``directory`` all at once.

    The new tree is built beside the directory and swapped in, so a failure leaves the old
    export as it was. The marker lists the files an export wrote: those are replaced or, when
    no longer produced, removed (as ``stale``); anything else in the directory is refused
    unless ``force``, and then removed and listed (as ``foreign``). Files holding a revealed
    secret are mode 0600, the others 0644.
    """
    directory = Path(directory)
    existing = _existing(directory)
    ours = _written_before(directory, existing)
    foreign = [path for path in existing if path not in (ours or ())]
    if foreign and not force:
        what = (f"{directory} is not empty and not a crowbar-wizard export" if ours is None
                else f"{directory} holds files no crowbar-wizard export wrote")
        raise ExportError(f"{what} ({_some(foreign)}); move them away, or pass --force to "
                          "remove them")
    files = repo_files(objects)
    private = private_files(objects)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for relative, content in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            # in a 0700 directory until the swap
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
            os.chmod(path, 0o600 if relative in private else 0o644)
        (staging / EXPORT_MARKER).write_text(
            MARKER_HEADER + "".join(f"{relative}\n" for relative in sorted(files)),
            encoding="utf-8")
        os.chmod(staging, 0o755)
        old = None
        if os.path.lexists(directory):
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, old / "repo")
        os.replace(staging, directory)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(len(files), stale=[p for p in existing if p not in foreign
                                           and p not in files],
                        foreign=foreign if force else [])


def _existing(directory: Path) -> list[str]:
    """Every file (or link) under ``directory`` but the marker, relative, sorted."""
    if not directory.is_dir():
        return []
    found = []
    for root, dirs, names in os.walk(directory):
        links = [name for name in dirs if os.path.islink(os.path.join(root, name))]
        for name in names + links:
            found.append(os.path.relpath(os.path.join(root, name), directory))
    return sorted(path for path in found if path != EXPORT_MARKER)


def _written_before(directory: Path, existing: list[str]) -> set[str] | None:
    """What the earlier export in ``directory`` wrote, from its marker; None if it is none.

    A marker from before markers listed their files stands for the chef-repo layout.
    """
    try:
        lines = (directory / EXPORT_MARKER).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    if lines[1:]:
        return set(lines[1:])
    return {path for path in existing if _REPO_LAYOUT.fullmatch(path)}


def _some(paths: list[str], shown: int = 5) -> str:
    more = len(paths) - shown
    return ", ".join(paths[:shown]) + (f" and {more} more" if more > 0 else "")
