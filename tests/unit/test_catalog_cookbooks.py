"""Every run-list recipe resolves to a cookbook a barclamp ships or declares: a small catalog
written per test, its cookbooks broken one way at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.small_catalog import catalog_files, shipping_files, write_catalog
from wizard.catalog import CatalogError, default_catalog, load_catalog
from wizard.catalog.cookbooks import run_list_recipe, satisfies

METADATA = ("# frozen_string_literal: true\n\n"
            "name 'alpha'\nversion '1.2.0'\ndepends 'beta', '= 2.1.0'\n")


def shipped_alpha(**overrides: str) -> dict[str, str]:
    """The small catalog with alpha shipping its cookbook instead of declaring it."""
    files = shipping_files()
    files["beta/barclamp.yaml"] = catalog_files()["beta/barclamp.yaml"]
    files |= {
        "alpha/cookbooks/alpha/metadata.rb": METADATA,
        "alpha/cookbooks/alpha/recipes/server.rb": "package 'alpha-server'\n",
        "alpha/cookbooks/alpha/recipes/client.rb": "package 'alpha'\n",
    }
    return files | overrides


def load_error(tmp_path: Path, files: dict[str, str]) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalog(write_catalog(tmp_path, files))
    return str(caught.value).replace(f"{tmp_path}/", "")


def test_a_shipped_cookbook_resolves_its_recipes(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path, shipped_alpha()))
    alpha = catalog.cookbooks()["alpha"]
    assert alpha.shipped is not None and alpha.shipped.metadata.version == "1.2.0"
    assert alpha.recipes == {"server", "client"}
    assert alpha.shipped.metadata.dependencies == {"beta": "= 2.1.0"}
    assert catalog.cookbooks()["beta"].upstream is not None


def test_a_recipe_the_shipped_cookbook_lacks(tmp_path: Path) -> None:
    files = shipped_alpha()
    del files["alpha/cookbooks/alpha/recipes/client.rb"]
    assert load_error(tmp_path, files) == (
        "alpha/barclamp.yaml:15:16: roles[1].run_list[0]: recipe[alpha::client]: cookbook "
        "alpha shipped by barclamp alpha has no recipe 'client' (it has server)")


def test_a_cookbook_no_barclamp_has(tmp_path: Path) -> None:
    files = catalog_files()
    files["beta/barclamp.yaml"] = files["beta/barclamp.yaml"].replace(
        "recipe[beta::api]", "recipe[betta::api]")
    assert load_error(tmp_path, files) == (
        "beta/barclamp.yaml:10:16: roles[0].run_list[0]: recipe[betta::api]: no barclamp "
        "ships or declares cookbook 'betta' (did you mean 'beta'?)")


def test_a_recipe_an_upstream_declaration_does_not_list(tmp_path: Path) -> None:
    files = catalog_files()
    files["beta/barclamp.yaml"] = files["beta/barclamp.yaml"].replace(
        "recipes: [api, worker]", "recipes: [api]")
    assert "recipe[beta::worker]: upstream cookbook beta declared by barclamp beta is " \
        "declared with no recipe 'worker' (it has api)" in load_error(tmp_path, files)


def test_a_dependency_no_barclamp_has(tmp_path: Path) -> None:
    files = shipped_alpha(**{"alpha/cookbooks/alpha/metadata.rb": METADATA.replace(
        "depends 'beta'", "depends 'gamma'")})
    assert load_error(tmp_path, files) == (
        "alpha/cookbooks/alpha/metadata.rb:5:1: depends: depends on cookbook 'gamma', which "
        "no barclamp ships or declares")


def test_a_dependency_must_accept_the_version_the_catalog_pins(tmp_path: Path) -> None:
    """beta is declared = 2.1.0: alpha's metadata.rb must accept 2.1.0."""
    for constraint in ("= 2.1.0", ">= 2.0", "~> 2.1", "~> 2.0", "< 3.0"):
        files = shipped_alpha(**{"alpha/cookbooks/alpha/metadata.rb": METADATA.replace(
            "'= 2.1.0'", f"'{constraint}'")})
        load_catalog(write_catalog(tmp_path / constraint, files))
    files = shipped_alpha(**{"alpha/cookbooks/alpha/metadata.rb": METADATA.replace(
        "'= 2.1.0'", "'~> 2.2'")})
    assert load_error(tmp_path, files) == (
        "alpha/cookbooks/alpha/metadata.rb:5:1: depends: depends on beta ~> 2.2, but barclamp "
        "beta pins beta 2.1.0")


@pytest.mark.parametrize(("version", "constraint", "expected"), [
    ("1.2.3", "= 1.2.3", True), ("1.2.4", "= 1.2.3", False), ("1.2.0", "= 1.2", True),
    ("2.0.0", ">= 1.0", True), ("0.9.9", ">= 1.0", False), ("1.0.0", "> 1.0", False),
    ("1.9.0", "< 2.0", True), ("2.0.0", "<= 2.0", True),
    ("1.2.0", "~> 1.2", True), ("1.9.9", "~> 1.2", True), ("2.0.0", "~> 1.2", False),
    ("1.1.0", "~> 1.2", False), ("1.2.9", "~> 1.2.3", True), ("1.3.0", "~> 1.2.3", False),
    ("7.0.29", "~> 7.0", True), ("8.0.0", "~> 7.0", False),
])
def test_satisfies_reads_constraints_as_chef_does(version: str, constraint: str,
                                                  expected: bool) -> None:
    assert satisfies(version, constraint) is expected


@pytest.mark.parametrize(("line", "expected"), [
    ("name \"al#{'pha'}\"", "metadata.rb:3:1: name: cannot read this name line without "
     "running Ruby"),
    ("name 'al pha'", "metadata.rb:3:1: name: 'al pha' is not a cookbook name"),
    ("name 'omega'", "metadata.rb:3:1: name: name 'omega' differs from its directory 'alpha'"),
])
def test_metadata_read_without_ruby(tmp_path: Path, line: str, expected: str) -> None:
    files = shipped_alpha(**{"alpha/cookbooks/alpha/metadata.rb": METADATA.replace(
        "name 'alpha'", line)})
    assert f"alpha/cookbooks/alpha/{expected}" in load_error(tmp_path, files)


def test_upstream_declared_twice(tmp_path: Path) -> None:
    files = catalog_files()
    files["beta/barclamp.yaml"] += '  - {name: alpha, version: "~> 1.0", recipes: [extra]}\n'
    catalog = load_catalog(write_catalog(tmp_path, files))
    assert catalog.cookbooks()["alpha"].recipes == {"server", "client", "extra"}
    files["beta/barclamp.yaml"] = files["beta/barclamp.yaml"].replace('"~> 1.0"', '"~> 2.0"')
    assert "cookbook alpha is also shipped or declared by alpha (declare it alike" in \
        load_error(tmp_path, files)


def test_a_pin_only_declaration_says_why(tmp_path: Path) -> None:
    files = catalog_files()
    files["beta/barclamp.yaml"] += '  - {name: yum-epel, version: "< 6.0"}\n'
    assert "cookbook yum-epel: no run list uses it: say why it is declared" in \
        load_error(tmp_path, files)
    files["beta/barclamp.yaml"] = files["beta/barclamp.yaml"].replace(
        '"< 6.0"}', '"< 6.0", why: a recipe of it that 6.0 removed is included}')
    load_catalog(write_catalog(tmp_path, files))


def test_a_role_without_a_run_list_says_who_does_its_work(tmp_path: Path) -> None:
    files = catalog_files()
    files["beta/barclamp.yaml"] = files["beta/barclamp.yaml"].replace(
        '    run_list: ["recipe[beta::api]"]\n', "")
    assert "give a role a run_list, or say in outside_chef who does its work" in \
        load_error(tmp_path, files)
    files["beta/barclamp.yaml"] = files["beta/barclamp.yaml"].replace(
        "    description: The beta API.\n",
        "    description: The beta API.\n    outside_chef: crowbar-wizard itself\n")
    catalog = load_catalog(write_catalog(tmp_path, files))
    assert catalog["beta"].role("beta-api").run_list == []  # type: ignore[union-attr]


def test_every_shipped_run_list_resolves_and_every_shipped_recipe_is_used() -> None:
    """The shipped catalog: each recipe of a shipped cookbook is on some run list (no
    recipe nothing runs), and each run-list recipe has its file or an upstream pin."""
    catalog = default_catalog()
    used: set[tuple[str, str]] = set()
    for name in catalog:
        for role in catalog[name].roles:
            used |= {r for r in map(run_list_recipe, role.run_list) if r is not None}
    providers = catalog.cookbooks()
    for cookbook, recipe in used:
        provider = providers[cookbook]
        assert recipe in provider.recipes
        if provider.shipped is not None:
            assert (provider.shipped.directory / "recipes" / f"{recipe}.rb").is_file()
        else:
            assert provider.upstream is not None and provider.upstream.version
    shipped = {(c, r) for c, p in providers.items() if p.shipped for r in p.recipes}
    assert shipped - used == set()
    assert {c for c, p in providers.items() if p.shipped} == {
        "bios", "cloudera_manager", "deployer", "dns", "hadoop_data_disks", "ipmi", "logging",
        "ntp", "provisioner", "raid"}


def test_a_cookbook_two_barclamps_ship(tmp_path: Path) -> None:
    files = shipped_alpha(**{"beta/cookbooks/alpha/metadata.rb": METADATA,
                             "beta/cookbooks/alpha/recipes/server.rb": ""})
    assert load_error(tmp_path, files) == (
        "beta/cookbooks/alpha/metadata.rb:3:1: name: cookbook alpha is also shipped or "
        "declared by alpha")
