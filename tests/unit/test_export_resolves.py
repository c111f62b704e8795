"""``chef export`` writes a chef-repo in which every run-list recipe resolves: to a recipe
file under ``DIR/cookbooks``, or to a cookbook its Berksfile pins (which Ruby parses)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import need
from wizard.cli.main import main

EXAMPLES = sorted(Path("answers/examples").glob("*.yaml"))
PINNED = re.compile(r'^cookbook "([^"]+)", "(=|~>|<|>=|>|<=) [0-9.]+"')
SHIPPED = re.compile(r'^cookbook "([^"]+)", path: "cookbooks/\1"$')


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_run_list_recipe_resolves_in_the_export(
        example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")
    repo = tmp_path / "repo"
    assert main(["chef", "export", str(example), str(repo)]) == 0
    berksfile = (repo / "Berksfile").read_text()
    parsed = subprocess.run([need("ruby"), "-c"], input=berksfile, capture_output=True,
                            text=True, timeout=60, check=False)
    assert parsed.returncode == 0, parsed.stderr
    lines = berksfile.splitlines()
    pinned = {m[1] for line in lines if (m := PINNED.match(line))}
    shipped = {m[1] for line in lines if (m := SHIPPED.match(line))}
    assert shipped == {p.name for p in (repo / "cookbooks").iterdir()}
    pins = json.loads(next((repo / "environments").glob("*.json")).read_text())[
        "cookbook_versions"]
    for name in shipped:
        version = re.search(r"^version '([0-9.]+)'",
                            (repo / "cookbooks" / name / "metadata.rb").read_text(), re.M)
        assert version is not None and pins[name] == f"= {version[1]}"
    recipes = 0
    for role in (repo / "roles").glob("*.json"):
        for item in json.loads(role.read_text())["run_list"]:
            match = re.fullmatch(r"recipe\[([^:\]]+)(?:::([^\]]+))?\]", item)
            assert match, f"{role.name}: {item}"
            cookbook, recipe = match[1], match[2] or "default"
            recipes += 1
            if cookbook in shipped:
                assert (repo / "cookbooks" / cookbook / "recipes" / f"{recipe}.rb").is_file(), \
                    f"{role.name}: {item} has no recipe file in the export"
            else:
                assert cookbook in pinned, f"{role.name}: {item} is neither shipped nor pinned"
    assert recipes > 0
