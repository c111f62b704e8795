"""``chef export`` of every example against golden files, for three barclamps each.

Golden files are ``tests/golden/<example>/<barclamp>.json``: the barclamp's environment
attributes, its Chef roles and its data bag item, read back from a real export. After an
intended change, regenerate them with ``UPDATE_GOLDEN=1 pytest tests/unit/test_chef_golden.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wizard.answers import load
from wizard.catalog import default_catalog
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
    assert capsys.readouterr().out.startswith(f"wrote {sum(1 for _ in repo.rglob('*.json'))} "
                                              f"files to {repo}")
    environment = load(path).site.name
    for barclamp in BARCLAMPS[example]:
        got = _exported(repo, barclamp, environment)
        golden = GOLDEN / example / f"{barclamp}.json"
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        assert got == json.loads(golden.read_text()), f"{golden} differs from the export"
