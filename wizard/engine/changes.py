"""What a change to a deployed site reaches: the inputs each node converges each role with.

A role's recipes read:

* its barclamp's attributes: the environment's section for it (less those its catalog entry
  ``ignores``), and its barclamp's data bag item;
* the role object, and the versions the environment pins for the cookbooks its run list
  names;
* for a core role, the site's attributes (networks, conduits, provisioning);
* the attributes the answers give the barclamps of the roles it *uses*
  (:attr:`~wizard.engine.convergence.RoleInfo.uses`): a new Keystone password re-converges
  Nova after Keystone, which the schedule's order keeps;
* on each node, the node's own attributes: its addresses and devices.

Which nodes hold a role is not an input by itself (the element lists of a data bag item are
left out): nodes find each other by search, or by their own barclamp's attributes that list
them (the DNS zone's hosts, Cinder's volume hosts), and those are inputs. So adding a node
converges the new node, and re-converges others only where their own barclamp lists it;
the barclamps that use that one are not re-converged for a list of nodes.

A converge step records the digest of its role's inputs on its node; a later apply
re-converges the role on a node where the digest differs (:func:`wizard.engine.plan.build`).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from wizard.catalog import Catalog
from wizard.chef.objects import DATA_BAG, ChefObjects
from wizard.engine.convergence import RoleInfo
from wizard.engine.plan import digest

_COOKBOOK = re.compile(r"recipe\[([^:\]]+)")


def converge_inputs(objects: ChefObjects, catalog: Catalog,
                    graph: Mapping[str, RoleInfo]) -> dict[str, dict[str, str]]:
    """Each node's roles (by node FQDN, then role) with the digest of their inputs there."""
    roles = role_digests(objects, catalog, graph)
    found: dict[str, dict[str, str]] = {}
    for fqdn, node in objects.nodes.items():
        own = digest(_node_attributes(node))
        found[fqdn] = {role: digest([roles[role], own])
                       for item in node["run_list"] if (role := item[5:-1]) in roles}
    return found


def role_digests(objects: ChefObjects, catalog: Catalog,
                 graph: Mapping[str, RoleInfo]) -> dict[str, str]:
    """Each pushed role's inputs but the node's, as a digest."""
    done: dict[str, str] = {}

    for role, info in graph.items():
        used = sorted({graph[r].barclamp for r in info.uses} - {info.barclamp})
        done[role] = digest({"own": _role_inputs(objects, catalog, info),
                             "uses": {name: objects.attributes.get(name) for name in used}})
    return done


def _role_inputs(objects: ChefObjects, catalog: Catalog, info: RoleInfo) -> dict[str, Any]:
    environment = objects.environment["default_attributes"]
    section = environment.get(info.barclamp)
    role = catalog[info.barclamp].role(info.name)
    if role is not None and role.ignores:
        section = _without(section, [path.split(".") for path in role.ignores])
    body = objects.roles[info.name]
    pins = objects.environment["cookbook_versions"]
    cookbooks = sorted({match for item in body["run_list"] for match in _COOKBOOK.findall(item)})
    return {
        "role": body, "attributes": section, "item": _item(objects, info.barclamp),
        "cookbooks": {name: pins.get(name) for name in cookbooks},
        "site": environment.get("crowbar") if info.core else None,
    }


def _without(section: Any, paths: list[list[str]]) -> Any:
    """``section`` less the attributes at ``paths``."""
    if not isinstance(section, dict):
        return section
    here = {path[0] for path in paths if len(path) == 1}
    return {key: _without(value, [path[1:] for path in paths if len(path) > 1
                                  and path[0] == key])
            for key, value in section.items() if key not in here}


def _item(objects: ChefObjects, barclamp: str) -> Any:
    """The barclamp's data bag item, less its element lists."""
    items = objects.data_bags.get(DATA_BAG, {})
    item = next((body for name, body in items.items() if name.startswith(f"bc-{barclamp}-")),
                None)
    if item is None or not isinstance(item.get("deployment"), dict):
        return item
    item = copy.deepcopy(item)
    for deployment in item["deployment"].values():
        if isinstance(deployment, dict):
            deployment.pop("elements", None)
    return item


def _node_attributes(node: dict[str, Any]) -> Any:
    """What a node's own roles read of it: its attributes, less the node roles it is meant
    for (controller, compute), which no recipe reads."""
    crowbar = dict(node.get("normal", {}).get("crowbar", {}))
    crowbar.pop("intended_roles", None)
    return crowbar


def attribute_record(objects: ChefObjects, catalog: Catalog, key: bytes) -> dict[str, Any]:
    """Each barclamp's attributes as this apply pushes them, for a later plan to say what
    changed: values as they are, a secret as a digest keyed with the site's token key (the
    journal holds no secret, and a guess cannot be checked against it without the key)."""
    record: dict[str, Any] = {}
    for name, attributes in objects.attributes.items():
        kinds = catalog[name].attributes if name in catalog else {}
        record[name] = {
            attr: ({"secret": hmac.new(key, json.dumps(value).encode(),
                                       hashlib.sha256).hexdigest()[:16]}
                   if attr in kinds and kinds[attr].type == "secret" and value is not None
                   else value)
            for attr, value in sorted(attributes.items())}
    return record


def attribute_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What changed between two :func:`attribute_record`, a line per attribute (a secret
    said to have changed, never shown)."""
    lines = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            lines.append(f"{name}: selected")
        elif name not in after:
            lines.append(f"{name}: no longer selected")
        else:
            old, new = before[name], after[name]
            for attr in sorted(set(old) | set(new)):
                if old.get(attr) == new.get(attr):
                    continue
                if _secret(old.get(attr)) or _secret(new.get(attr)):
                    lines.append(f"{name}: {attr} changed (secret)")
                else:
                    lines.append(f"{name}: {attr} {_shown(old.get(attr))} → "
                                 f"{_shown(new.get(attr))}")
    return lines


def _secret(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secret"}


def _shown(value: Any, width: int = 40) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[:width - 1] + "…"
