"""The barclamp catalog: a small catalog written per test, broken one way at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.small_catalog import BETA, BETA_ENV, catalog_files, write_catalog
from wizard.catalog import CatalogError, load_catalog


def test_small_catalog_loads_with_closure_and_order(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path, catalog_files()))
    assert list(catalog) == ["alpha", "beta"]
    assert catalog.requires("beta") == ["alpha"]
    assert catalog.closure(["beta"]) == {"alpha", "beta"}
    assert catalog.apply_order(["beta", "alpha"]) == ["alpha", "beta"]


def test_apply_order_breaks_ties_by_run_order_then_name(tmp_path: Path) -> None:
    files = catalog_files()
    for name, order in (("zeta", 5), ("eta", 30), ("delta", 30)):
        files[f"{name}/barclamp.yaml"] = (
            BETA.replace("beta", name).replace("run_order: 20", f"run_order: {order}")
            .replace('requires: ["@core"]', "requires: []")
        )
    catalog = load_catalog(write_catalog(tmp_path, files))
    assert catalog.apply_order(catalog) == ["zeta", "alpha", "beta", "delta", "eta"]


# (id, file, old, new, expected "FILE:LINE:COL: path: message" with FILE relative)
CASES = [
    ("unknown-key", "beta/barclamp.yaml", "run_order: 20\n", "run_order: 20\nrunorder: 3\n",
     "beta/barclamp.yaml:7:1: runorder: unknown key 'runorder'"),
    ("missing-key", "beta/barclamp.yaml", "run_order: 20\n", "",
     "beta/barclamp.yaml:1:1: run_order: required key 'run_order' is missing"),
    ("bad-category", "beta/barclamp.yaml", "category: openstack", "category: cloud",
     "beta/barclamp.yaml:4:11: category: Input should be 'core', 'openstack', 'hadoop' or 'ops'"),
    ("bad-run-list", "beta/barclamp.yaml", '"recipe[beta::api]"', '"beta::api"',
     "beta/barclamp.yaml:10:5: roles[0].run_list: 'beta::api' is not a run list item such as "
     "recipe[nova::api]"),
    ("max-below-min", "beta/barclamp.yaml", "    min_nodes: 1\n    max_nodes: 1\n",
     "    min_nodes: 2\n    max_nodes: 1\n",
     "beta/barclamp.yaml:8:5: roles[0]: max_nodes 1 is below min_nodes 2"),
    ("all-nodes-admin-only", "alpha/barclamp.yaml", "    all_nodes: true\n",
     "    all_nodes: true\n    admin: only\n",
     "alpha/barclamp.yaml:13:5: roles[1]: a role cannot be on all nodes and on the admin node "
     "only"),
    ("default-wrong-type", "alpha/barclamp.yaml", "default: 4000", "default: '4000'",
     "alpha/barclamp.yaml:19:3: attributes.port: default '4000': expected an integer"),
    ("default-out-of-range", "alpha/barclamp.yaml", "default: 4000", "default: 70000",
     "alpha/barclamp.yaml:19:3: attributes.port: default 70000: must be at most 65535"),
    ("default-not-in-enum", "beta/barclamp.yaml", "default: safe", "default: slow",
     "beta/barclamp.yaml:23:3: attributes.mode: default 'slow': must be one of fast, safe"),
    ("secret-with-default", "beta/barclamp.yaml", "    required: true\n", "    default: hunter2\n",
     "beta/barclamp.yaml:28:3: attributes.password: a secret has no default: the operator "
     "sets it (env:/file:)"),
    ("no-default-not-required", "alpha/barclamp.yaml", "    default: 4000\n", "",
     "alpha/barclamp.yaml:19:3: attributes.port: give a default, or mark the attribute required"),
    ("bad-attribute-type", "alpha/barclamp.yaml", "type: integer", "type: int",
     "alpha/barclamp.yaml:20:11: attributes.port.type: Input should be 'string', 'integer', "
     "'float', 'boolean', 'list' or 'secret'"),
    ("unknown-format", "alpha/barclamp.yaml", "    min: 1\n", "    min: 1\n    format: ipv5\n",
     "alpha/barclamp.yaml:23:13: attributes.port.format: unknown format 'ipv5' (did you mean "
     "'ipv4'?)"),
    ("format-on-integer", "alpha/barclamp.yaml", "    min: 1\n", "    min: 1\n    format: ipv4\n",
     "alpha/barclamp.yaml:19:3: attributes.port: a format types a string or the items of a "
     "list"),
    ("default-breaks-format", "beta/barclamp.yaml", "    enum: [fast, safe]\n",
     "    format: console\n",
     "beta/barclamp.yaml:23:3: attributes.mode: default 'safe': 'safe' is not a kernel "
     "console such as ttyS1,115200 or ttyS0,9600n8"),
    ("help-line-break", "alpha/barclamp.yaml", "help: Port alpha listens on.",
     'help: "Port alpha\\nlistens on."',
     "alpha/barclamp.yaml:24:11: attributes.port.help: holds a line break (U+000A) at "
     "character 11: a value is one line of printable text"),
    ("unknown-requires", "beta/barclamp.yaml", 'requires: ["@core"]', 'requires: [alpah]',
     "beta/barclamp.yaml:5:12: requires[0]: requires unknown barclamp 'alpah' (did you mean "
     "'alpha'?)"),
    ("cycle", "alpha/barclamp.yaml", "run_order: 10\n", "run_order: 10\nrequires: [beta]\n",
     "alpha/barclamp.yaml:6:12: requires[0]: dependency cycle: alpha -> beta -> alpha"),
    ("name-differs", "beta/barclamp.yaml", "name: beta\n", "name: gamma\n",
     "beta/barclamp.yaml:1:7: name: name 'gamma' differs from its directory 'beta'"),
    ("role-defined-twice", "beta/barclamp.yaml", "  - name: beta-worker", "  - name: alpha-server",
     "beta/barclamp.yaml:14:11: roles[1].name: role 'alpha-server' is also defined by alpha"),
    ("conflict-unknown-role", "beta/barclamp.yaml", "conflicts: [beta-api]",
     "conflicts: [beta-apy]",
     "beta/barclamp.yaml:21:17: roles[1].conflicts[0]: conflicts with unknown role 'beta-apy'"),
    ("empty-barclamp-file", "beta/barclamp.yaml", BETA, "",
     "beta/barclamp.yaml:1:1: (file): file is empty"),
    ("yaml-syntax", "beta/barclamp.yaml", "roles:\n", "roles: [\n",
     "beta/barclamp.yaml:8:3: (file): YAML syntax error: did not find expected node content"),
    ("template-syntax", "beta/templates/environment.yaml.j2", "mode: {{ attributes.mode }}",
     "mode: {{ attributes.mode }",
     "beta/templates/environment.yaml.j2:3:1: (template): template syntax error: unexpected '}'"),
    ("template-undefined-variable", "beta/templates/environment.yaml.j2",
     "mode: {{ attributes.mode }}", "mode: {{ atributes.mode }}",
     "beta/templates/environment.yaml.j2:3:1: (template): uses undefined variable 'atributes' "
     "(known: admin, attributes, barclamp, networks, nodes, proposal, proposals, roles, site)"),
    ("template-undefined-attribute", "beta/templates/environment.yaml.j2",
     "mode: {{ attributes.mode }}", "mode: {{ attributes.speed }}",
     "beta/templates/environment.yaml.j2:3:1: (template): undefined value: 'dict object' has "
     "no attribute 'speed'"),
    ("template-unknown-role", "beta/templates/environment.yaml.j2",
     "api: {{ roles['beta-api'][0] | address }}", "api: {{ roles['beta-apy'][0] | address }}",
     "beta/templates/environment.yaml.j2:1:1: (template): undefined value: 'dict object' has "
     "no attribute 'beta-apy'"),
    ("template-not-a-mapping", "beta/templates/environment.yaml.j2", BETA_ENV, "- a\n- b\n",
     "beta/templates/environment.yaml.j2:1:1: (template): rendered text is not a YAML mapping"),
    ("template-bad-network", "beta/templates/environment.yaml.j2",
     "api: {{ roles['beta-api'][0] | address }}",
     "api: {{ roles['beta-api'][0] | address('tenant') }}",
     "beta/templates/environment.yaml.j2:1:1: (template): undefined value: node "
     "'sample-1-0' has no address on network 'tenant'"),
]


@pytest.mark.parametrize(("file", "old", "new", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_broken_barclamp(tmp_path: Path, file: str, old: str, new: str, expected: str) -> None:
    files = catalog_files()
    assert files[file].count(old) == 1
    files[file] = files[file].replace(old, new)
    with pytest.raises(CatalogError) as caught:
        load_catalog(write_catalog(tmp_path, files))
    assert str(caught.value) == f"{tmp_path}/{expected}"


def test_there_are_at_least_25_broken_barclamp_cases() -> None:
    assert len(CASES) >= 25
