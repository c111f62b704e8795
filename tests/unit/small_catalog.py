"""A small two-barclamp catalog (alpha, core; beta, needing alpha) that tests write to disk."""

from __future__ import annotations

from pathlib import Path

ALPHA_UPSTREAM = ('upstream_cookbooks:\n'
                  '  - {name: alpha, version: "~> 1.0", recipes: [server, client]}\n')
BETA_UPSTREAM = ('upstream_cookbooks:\n'
                 '  - {name: beta, version: "= 2.1.0", git: "https://git.example.com/beta-cb",\n'
                 '     ref: v2.1.0, recipes: [api, worker]}\n')
"""Where alpha's and beta's run-list recipes come from, unless a test ships them."""

ALPHA = """\
name: alpha
display_name: Alpha
description: A core service every node uses.
category: core
run_order: 10
roles:
  - name: alpha-server
    description: Serves alpha.
    run_list: ["recipe[alpha::server]"]
    min_nodes: 1
    max_nodes: 1
    admin: allowed
  - name: alpha-client
    description: Uses alpha.
    run_list: ["recipe[alpha::client]"]
    all_nodes: true
    conflicts: [alpha-server]
attributes:
  port:
    type: integer
    default: 4000
    min: 1
    max: 65535
    help: Port alpha listens on.
""" + ALPHA_UPSTREAM

BETA = """\
name: beta
display_name: Beta
description: A service that needs alpha.
category: openstack
requires: ["@core"]
run_order: 20
roles:
  - name: beta-api
    description: The beta API.
    run_list: ["recipe[beta::api]"]
    min_nodes: 1
    max_nodes: 1
    intended: [controller]
  - name: beta-worker
    description: Does beta's work.
    run_list: ["recipe[beta::worker]"]
    min_nodes: 1
    intended: [compute]
    hints: {virtualization: true, min_memory_gb: 16}
    prefer: most_memory
    conflicts: [beta-api]
attributes:
  mode:
    type: string
    enum: [fast, safe]
    default: safe
    help: How beta runs.
  password:
    type: secret
    required: true
    help: Beta's service password.
""" + BETA_UPSTREAM

BETA_ENV = """\
api: {{ roles['beta-api'][0] | address }}
alpha_port: {{ proposals.alpha.attributes.port }}
mode: {{ attributes.mode }}
"""


def write_catalog(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def catalog_files() -> dict[str, str]:
    return {
        "alpha/barclamp.yaml": ALPHA,
        "beta/barclamp.yaml": BETA,
        "beta/templates/environment.yaml.j2": BETA_ENV,
    }


def shipping_files() -> dict[str, str]:
    """The catalog with alpha and beta declaring no upstream cookbook: a test ships them."""
    files = catalog_files()
    files["alpha/barclamp.yaml"] = files["alpha/barclamp.yaml"].replace(ALPHA_UPSTREAM, "")
    files["beta/barclamp.yaml"] = files["beta/barclamp.yaml"].replace(BETA_UPSTREAM, "")
    return files
