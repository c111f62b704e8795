"""Stand-ins for the upstream cookbooks a deployment declares, for the lab's Chef server.

A real site vendors the upstream cookbooks its barclamps declare (OpenStack's, Hadoop's:
``chef export`` pins them in a Berksfile) and uploads them with ``chef push --cookbooks``.
The lab cannot fetch them (no internet beyond the package registries here), yet its nodes
depsolve their run lists on the lab's Chef server, which refuses a run list naming a
cookbook it lacks. So the lab writes a stand-in for each: a cookbook of the declared name,
at a version the declared constraint accepts, with each recipe the run lists use, empty but
for a comment saying what it stands in for. The lab's chef-client does not run recipes
anyway (:mod:`wizard.lab.chef_client`); what the stand-ins keep real is the depsolve: the
environment pins them, and a run list naming a recipe no cookbook has still fails.
"""

from __future__ import annotations

from pathlib import Path

from wizard.base.yamlfile import write_atomic
from wizard.catalog import Catalog, UpstreamCookbook
from wizard.catalog.cookbooks import satisfies


def stand_in_version(constraint: str) -> str:
    """A version ``constraint`` accepts."""
    operator, _, version = constraint.partition(" ")
    parts = [int(p) for p in version.split(".")] + [0] * (3 - len(version.split(".")))
    candidates = [".".join(map(str, parts)), f"{parts[0]}.{parts[1]}.{parts[2] + 1}",
                  "0.0.1"]
    return next(c for c in candidates if satisfies(c, f"{operator} {version}"))


def write_stand_ins(catalog: Catalog, barclamps: list[str], directory: Path) -> Path:
    """Write a stand-in for each upstream cookbook ``barclamps`` declare into ``directory``
    (``DIR/<cookbook>/``, as ``berks vendor`` lays them out); the directory."""
    for cookbook in catalog.upstream(catalog.closure(barclamps)).values():
        _write(cookbook, directory / cookbook.name)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _write(cookbook: UpstreamCookbook, root: Path) -> None:
    source = cookbook.git or "the Chef Supermarket"
    where = f"{source} at {cookbook.ref}" if cookbook.ref else source
    root.joinpath("recipes").mkdir(parents=True, exist_ok=True)
    write_atomic(root / "metadata.rb", (
        f"# The lab's stand-in for {cookbook.name} {cookbook.version} from {where}:\n"
        f"# the lab cannot fetch it, and its chef-client runs no recipe.\n"
        f"name '{cookbook.name}'\n"
        f"version '{stand_in_version(cookbook.version)}'\n"), mode=0o644, sync=False)
    for recipe in cookbook.recipes or ["default"]:
        write_atomic(root / "recipes" / f"{recipe}.rb",
                     f"# stands in for recipe[{cookbook.name}::{recipe}] of {where}\n",
                     mode=0o644, sync=False)
