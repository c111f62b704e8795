"""Chef objects rendered from answers and a small catalog, and the chef-repo export."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.unit.small_catalog import catalog_files, write_catalog
from tests.unit.test_proposals import VALID, answers_with
from wizard.addressing import node_addresses
from wizard.catalog import Catalog, load_catalog
from wizard.chef_objects import ExportError, export_repo, render, repo_files
from wizard.secrets import SecretError


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return load_catalog(write_catalog(tmp_path_factory.mktemp("catalog"), catalog_files()))


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BETA_PASSWORD", "b3ta-pass")
    return "b3ta-pass"


def test_addresses_are_pinned_or_next_free() -> None:
    addresses = node_addresses(answers_with(VALID))
    assert addresses == {
        "ctl-1": {"admin": "192.168.124.81", "bmc": "192.168.124.162",
                  "public": "192.168.126.2"},
        "compute-1": {"admin": "192.168.124.90", "bmc": "192.168.124.163"},
    }


def test_render_environment_roles_data_bags_and_nodes(catalog: Catalog, secret_env: str) -> None:
    objects = render(answers_with(VALID), catalog)
    env = objects.environment
    assert env["name"] == "lab" and env["chef_type"] == "environment"
    assert env["default_attributes"]["beta"] == {
        "api": "192.168.124.81", "alpha_port": 4000, "mode": "safe"
    }
    assert env["default_attributes"]["alpha"] == {"port": 4000}  # no template: plain attributes
    assert env["default_attributes"]["crowbar"]["networks"]["admin"]["cidr"] == "192.168.124.0/24"
    assert list(objects.roles) == ["alpha-server", "alpha-client", "beta-api", "beta-worker"]
    assert objects.roles["beta-api"]["run_list"] == ["recipe[beta::api]"]
    item = objects.data_bags["crowbar"]["bc-beta-default"]
    assert item["id"] == "bc-beta-default"
    assert item["attributes"]["beta"]["password"] == secret_env
    assert item["deployment"]["beta"]["elements"] == {
        "beta-api": ["ctl-1"], "beta-worker": ["compute-1"]
    }
    assert objects.nodes["ctl-1.lab.crowbar.test"]["run_list"] == [
        "role[alpha-client]", "role[beta-api]"
    ]
    assert objects.nodes["admin.lab.crowbar.test"]["run_list"] == ["role[alpha-server]"]
    assert objects.nodes["compute-1.lab.crowbar.test"]["normal"]["crowbar"]["network"] == {
        "admin": "192.168.124.90", "bmc": "192.168.124.163"
    }
    assert objects.secrets == [secret_env]


def test_render_names_the_unresolvable_secret(catalog: Catalog, monkeypatch) -> None:
    monkeypatch.delenv("BETA_PASSWORD", raising=False)
    with pytest.raises(SecretError) as caught:
        render(answers_with(VALID), catalog)
    assert str(caught.value) == (
        "beta attribute password: environment variable BETA_PASSWORD is not set"
    )


def test_export_writes_a_knife_repo(tmp_path: Path, catalog: Catalog, secret_env: str) -> None:
    objects = render(answers_with(VALID), catalog)
    out = tmp_path / "repo"
    count = export_repo(objects, out)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.json"))
    assert count == len(written) == len(repo_files(objects))
    assert written == [
        "data_bags/crowbar/bc-alpha-default.json", "data_bags/crowbar/bc-beta-default.json",
        "environments/lab.json",
        "nodes/admin.lab.crowbar.test.json", "nodes/compute-1.lab.crowbar.test.json",
        "nodes/ctl-1.lab.crowbar.test.json",
        "roles/alpha-client.json", "roles/alpha-server.json", "roles/beta-api.json",
        "roles/beta-worker.json",
    ]
    role = json.loads((out / "roles/beta-api.json").read_text())
    assert role == objects.roles["beta-api"]
    secret_file = out / "data_bags/crowbar/bc-beta-default.json"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "roles/beta-api.json").stat().st_mode) == 0o644


def test_export_replaces_an_earlier_export_whole(tmp_path: Path, catalog: Catalog,
                                                  secret_env: str) -> None:
    out = tmp_path / "repo"
    objects = render(answers_with(VALID), catalog)
    export_repo(objects, out)
    (out / "roles" / "stale.json").write_text("{}")
    export_repo(objects, out)
    assert not (out / "roles" / "stale.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no staging left behind


def test_export_refuses_a_directory_it_did_not_write(tmp_path: Path, catalog: Catalog,
                                                     secret_env: str) -> None:
    out = tmp_path / "chef-repo"
    (out / "cookbooks").mkdir(parents=True)
    objects = render(answers_with(VALID), catalog)
    with pytest.raises(ExportError, match="not empty and not a crowbar-wizard export"):
        export_repo(objects, out)
    assert [p.name for p in out.iterdir()] == ["cookbooks"]
    export_repo(objects, out, force=True)
    assert (out / "environments" / "lab.json").exists()


def test_failed_export_leaves_the_earlier_one(tmp_path: Path, catalog: Catalog,
                                              secret_env: str, monkeypatch) -> None:
    """A disk that fills up mid-export is simulated by failing the fifth file write."""
    out = tmp_path / "repo"
    objects = render(answers_with(VALID), catalog)
    export_repo(objects, out)
    before = {p: p.read_text() for p in out.rglob("*.json")}
    writes = {"n": 0}
    real_write = Path.write_text

    def failing_write(self: Path, *args, **kwargs):
        writes["n"] += 1
        if writes["n"] == 5:
            raise OSError(28, "No space left on device")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", failing_write)
    with pytest.raises(OSError, match="No space left"):
        export_repo(objects, out)
    monkeypatch.undo()
    assert {p: p.read_text() for p in out.rglob("*.json")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
