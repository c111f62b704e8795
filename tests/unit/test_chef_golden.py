"""``chef export`` of every example against golden files.

Golden files are ``tests/golden/<example>/<barclamp>.json`` for three barclamps each: the
barclamp's environment attributes, its Chef roles and its data bag item, read back from a
real export; and for the whole chef-repo ``tests/golden/<example>/repo.json``: every file it
holds (cookbooks too), the Berksfile that pins the upstream cookbooks, and the cookbook
versions the environment pins. After an intended change, regenerate them with
``UPDATE_GOLDEN=1 pytest tests/unit/test_chef_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.chef.objects import EXPORT_MARKER
from wizard.cli.main import main

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden"
BARCLAMPS = {
    "lab-small": ["ntp", "keystone", "nova"],
    "openstack": ["ntp", "keystone", "nova"],
    "hadoop": ["ntp", "zookeeper", "hadoop"],
}
SECRETS = {"CROWBAR_KEYSTONE_PASSWORD": "golden-keystone-password"}


def _exported(repo: Path, barclamp: str, environment: str) -> dict:
    env = json.loads((repo / "environments" / f"{environment}.json").read_text())
    roles = {
        role.name: json.loads((repo / "roles" / f"{role.name}.json").read_text())
        for role in default_catalog()[barclamp].roles
        if (repo / "roles" / f"{role.name}.json").exists()
    }
    item = repo / "data_bags" / "crowbar" / f"bc-{barclamp}-default.json"
    return {
        "environment": env["default_attributes"][barclamp],
        "roles": roles,
        "data_bag_item": json.loads(item.read_text()),
    }


@pytest.mark.parametrize("example", sorted(BARCLAMPS))
def test_export_matches_golden(example: str, tmp_path: Path, monkeypatch, capsys) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    path = ROOT / "answers" / "examples" / f"{example}.yaml"
    repo = tmp_path / "repo"
    assert main(["chef", "export", str(path), str(repo)]) == 0
    files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*")
                   if p.is_file() and p.name != EXPORT_MARKER)
    assert capsys.readouterr().out.startswith(f"wrote {len(files)} files to {repo}")
    environment = load(path).site.name
    whole = {
        "files": files, "Berksfile": (repo / "Berksfile").read_text().splitlines(),
        "cookbook_versions": json.loads((repo / "environments" / f"{environment}.json")
                                        .read_text())["cookbook_versions"],
    }
    for golden, got in [(GOLDEN / example / f"{barclamp}.json",
                         _exported(repo, barclamp, environment))
                        for barclamp in BARCLAMPS[example]] + [(GOLDEN / example / "repo.json",
                                                                whole)]:
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        assert got == json.loads(golden.read_text()), f"{golden} differs from the export"
