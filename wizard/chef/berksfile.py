"""The Berksfile of an exported chef-repo: every cookbook the deployment's run lists use.

The shipped cookbooks are in the repo (``path:``); the upstream ones are pinned as their
barclamps declare them (version constraint, git repository and ref, or the Supermarket).
On a workstation that reaches the internet, ``berks vendor DIR`` fetches them all with
their dependencies, and ``crowbar-wizard chef push ANSWERS --cookbooks DIR`` uploads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from wizard.base.escaping import ruby_string
from wizard.catalog import UpstreamCookbook

SUPERMARKET = "https://supermarket.chef.io"
HEADER = (
    "# Written by crowbar-wizard chef export: the cookbooks this deployment's run lists use.\n"
    "# Shipped ones are in cookbooks/; upstream ones are pinned as their barclamps declare.\n"
    "# With internet access: berks vendor DIR, then\n"
    "#   crowbar-wizard chef push ANSWERS --cookbooks DIR\n"
)


def berksfile(shipped: Iterable[str], upstream: Mapping[str, UpstreamCookbook]) -> str:
    """The Berksfile text; every value is a Ruby string literal, escaped."""
    lines = [HEADER, f"source {ruby_string(SUPERMARKET)}\n\n"]
    lines += [f"cookbook {ruby_string(name)}, path: {ruby_string(f'cookbooks/{name}')}\n"
              for name in sorted(shipped)]
    for name, cookbook in sorted(upstream.items()):
        where = ""
        if cookbook.git is not None:
            where = f", git: {ruby_string(cookbook.git)}"
            if cookbook.ref is not None:
                where += f", ref: {ruby_string(cookbook.ref)}"
        lines.append(f"cookbook {ruby_string(name)}, {ruby_string(cookbook.version)}{where}\n")
    return "".join(lines)
