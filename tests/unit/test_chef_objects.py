"""Chef objects rendered from answers and a small catalog, and the chef-repo export."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.network_drafts import bonded_draft
from tests.unit.small_catalog import catalog_files, write_catalog
from tests.unit.test_proposals import VALID, answers_with
from wizard.answers import load
from wizard.answers.addressing import node_addresses
from wizard.base.secrets import SecretError
from wizard.catalog import Catalog, default_catalog, load_catalog
from wizard.chef.objects import EXPORT_MARKER, ExportError, export_repo, render, repo_files
from wizard.cli.main import main


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
    assert objects.secret_items == {("crowbar", "bc-beta-default")}
    assert not objects.secret_environment  # beta's template leaves the password out


@pytest.mark.parametrize("example", ["lab-small", "openstack", "hadoop"])
def test_deployer_client_is_first_on_every_node_the_admin_node_too(
        example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its handler records each chef-client run where the engine reads it back, on the
    admin node (dns-server, ntp-server, ...) as on the others."""
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")
    answers = load(f"answers/examples/{example}.yaml")
    objects = render(answers, default_catalog())
    domain = answers.site.domain
    assert set(objects.nodes) == {f"{name}.{domain}" for name in [
        answers.admin.hostname, *(node.name for node in answers.nodes)]}
    assert {name: node["run_list"][0] for name, node in objects.nodes.items()} == dict.fromkeys(
        objects.nodes, "role[deployer-client]")
    assert objects.roles["deployer-client"]["run_list"] == ["recipe[deployer::client]"]


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
    count = export_repo(objects, out).files
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.json"))
    assert count == len(written) + 1 == len(repo_files(objects))
    assert (out / "Berksfile").read_text().endswith(
        'cookbook "alpha", "~> 1.0"\n'
        'cookbook "beta", "= 2.1.0", git: "https://git.example.com/beta-cb", ref: "v2.1.0"\n')
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
    """What an earlier export wrote and this one does not is removed, and said."""
    out = tmp_path / "repo"
    objects = render(answers_with(VALID), catalog)
    earlier = render(answers_with(VALID), catalog)
    earlier.roles["gone"] = {"name": "gone"}
    export_repo(earlier, out)
    result = export_repo(objects, out)
    assert not (out / "roles" / "gone.json").exists()
    assert result.stale == ["roles/gone.json"] and result.foreign == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no staging left behind


def test_export_refuses_what_no_export_wrote(tmp_path: Path, catalog: Catalog,
                                             secret_env: str) -> None:
    """A file the operator put in an export is not removed without --force, which lists it."""
    out = tmp_path / "repo"
    objects = render(answers_with(VALID), catalog)
    export_repo(objects, out)
    (out / "roles" / "mine.json").write_text("{}")
    with pytest.raises(ExportError, match=r"holds files no crowbar-wizard export wrote "
                       r"\(roles/mine.json\)"):
        export_repo(objects, out)
    assert (out / "roles" / "mine.json").exists()
    result = export_repo(objects, out, force=True)
    assert result.foreign == ["roles/mine.json"] and result.stale == []
    assert not (out / "roles" / "mine.json").exists()


def test_export_of_an_older_marker_takes_the_repo_layout_as_its_own(
        tmp_path: Path, catalog: Catalog, secret_env: str) -> None:
    out = tmp_path / "repo"
    (out / "roles").mkdir(parents=True)
    (out / "roles" / "old.json").write_text("{}")
    (out / EXPORT_MARKER).write_text("written by crowbar-wizard chef export\n")
    result = export_repo(render(answers_with(VALID), catalog), out)
    assert result.stale == ["roles/old.json"]


def test_export_refuses_a_directory_it_did_not_write(tmp_path: Path, catalog: Catalog,
                                                     secret_env: str) -> None:
    out = tmp_path / "chef-repo"
    (out / "cookbooks").mkdir(parents=True)
    (out / "cookbooks" / "README").write_text("mine")
    objects = render(answers_with(VALID), catalog)
    with pytest.raises(ExportError, match=r"not empty and not a crowbar-wizard export "
                       r"\(cookbooks/README\)"):
        export_repo(objects, out)
    assert [p.name for p in out.iterdir()] == ["cookbooks"]
    assert export_repo(objects, out, force=True).foreign == ["cookbooks/README"]
    assert (out / "environments" / "lab.json").exists()


def test_export_force_says_what_it_removes(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "pw")
    out = tmp_path / "chef-repo"
    (out / "cookbooks").mkdir(parents=True)
    (out / "cookbooks" / "README").write_text("mine")
    example = str(Path("answers/examples/lab-small.yaml"))
    assert main(["chef", "export", example, str(out)]) == 1
    assert "cannot export:" in capsys.readouterr().err
    assert main(["chef", "export", example, str(out), "--force"]) == 0
    assert ("removed cookbooks/README: no crowbar-wizard export wrote it (--force)"
            in capsys.readouterr().out.splitlines())


ODD_SECRETS = ['pa"ss"word', "back\\slash\\", "pässwörd-✓-密码", "</x>&'<!-- ${x} %s {{x}}",
               "0000", " lead and trail "]


def _holds(value: object, secret: str) -> bool:
    if isinstance(value, dict):
        return any(_holds(v, secret) for v in value.values())
    if isinstance(value, list):
        return any(_holds(v, secret) for v in value)
    return isinstance(value, str) and secret in value


@pytest.mark.parametrize("secret", ODD_SECRETS)
def test_every_file_holding_a_secret_is_private_whatever_its_characters(
        tmp_path: Path, monkeypatch, secret: str) -> None:
    """The shipped catalog and example: each file whose JSON holds the secret is 0600, the
    others 0644 (roles and nodes never hold one)."""
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", secret)
    out = tmp_path / "repo"
    assert main(["chef", "export", "answers/examples/lab-small.yaml", str(out)]) == 0
    holding = []
    for path in sorted(out.rglob("*.json")):
        mode = stat.S_IMODE(path.stat().st_mode)
        if _holds(json.loads(path.read_text()), secret):
            holding.append(path.relative_to(out).as_posix())
            assert mode == 0o600, path
        elif path.parts[-2] in ("roles", "nodes"):
            assert mode == 0o644, path
    assert "data_bags/crowbar/bc-keystone-default.json" in holding


def test_a_template_that_transforms_a_secret_marks_its_object(
        tmp_path: Path, secret_env: str) -> None:
    """Found by how the object is built, not by the secret's text: a template that puts the
    password in the environment upper-cased makes the environment private; a data bag
    template that leaves it out makes a public item."""
    files = catalog_files() | {
        "beta/templates/environment.yaml.j2": "shout: {{ attributes.password | upper }}\n",
        "beta/templates/data_bag.yaml.j2": "mode: {{ attributes.mode }}\n",
    }
    catalog = load_catalog(write_catalog(tmp_path / "catalog", files))
    objects = render(answers_with(VALID), catalog)
    assert objects.environment["default_attributes"]["beta"] == {"shout": "B3TA-PASS"}
    assert objects.secret_environment
    assert objects.secret_items == set()
    out = tmp_path / "repo"
    export_repo(objects, out)
    assert stat.S_IMODE((out / "environments/lab.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "data_bags/crowbar/bc-beta-default.json").stat().st_mode) == 0o644


def test_failed_export_leaves_the_earlier_one(tmp_path: Path, catalog: Catalog,
                                              secret_env: str, monkeypatch) -> None:
    """A disk that fills up mid-export is simulated by failing the fifth file write."""
    out = tmp_path / "repo"
    objects = render(answers_with(VALID), catalog)
    export_repo(objects, out)
    before = {p: p.read_text() for p in out.rglob("*.json")}
    writes = {"n": 0}
    real_write = Path.write_bytes

    def failing_write(self: Path, *args, **kwargs):
        writes["n"] += 1
        if writes["n"] == 5:
            raise OSError(28, "No space left on device")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    with pytest.raises(OSError, match="No space left"):
        export_repo(objects, out)
    monkeypatch.undo()
    assert {p: p.read_text() for p in out.rglob("*.json")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_a_bonded_conduit_and_its_vlan_reach_the_node_object(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node whose storage network rides a VLAN on a bond: Chef sees the bond, the NICs it
    is made of (by MAC), and the VLAN device carrying the address."""
    macs = ["52:54:00:aa:00:01", "52:54:00:aa:00:02", "52:54:00:aa:00:03"]
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")
    draft = tmp_path / "bonded.yaml"
    draft.write_text(bonded_draft(macs))
    answers = load(draft)
    objects = render(answers, default_catalog())
    crowbar = objects.nodes[f"new-1.{answers.site.domain}"]["normal"]["crowbar"]
    storage = answers.networks["storage"]
    assert storage.conduit == "intf1" and storage.tag() is not None
    assert crowbar["conduits"]["intf1"] == {
        "device": "bond0", "kind": "bond", "bond_mode": "802.3ad",
        "nics": [{"name": "nic1", "mac": macs[1]}, {"name": "nic2", "mac": macs[2]}]}
    assert crowbar["interfaces"]["storage"]["device"] == f"bond0.{storage.tag()}"
    assert crowbar["interfaces"]["storage"]["address"] == \
        node_addresses(answers)["new-1"]["storage"]
    assert crowbar["conduits"]["intf0"]["device"] == "nic0"
