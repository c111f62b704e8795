"""Cookbooks read from disk: metadata.rb without Ruby, metadata.json, the segment listing
Chef's loader makes, and the pins a deployment's environment gets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.unit.small_catalog import shipping_files, write_catalog
from tests.unit.test_proposals import VALID, answers_with
from wizard.catalog import load_catalog
from wizard.catalog.metadata import CookbookError, parse_rb
from wizard.chef.cookbooks import cookbook_dirs, read_cookbook, read_cookbooks, site_cookbooks
from wizard.chef.objects import render
from wizard.chef.push import targets


def cookbook(root: Path, files: dict[str, str | bytes]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def problem(text: str, tmp_path: Path) -> str:
    path = tmp_path / "metadata.rb"
    with pytest.raises(CookbookError) as failed:
        parse_rb(text, path)
    assert len(failed.value.problems) == 1
    return str(failed.value).removeprefix(f"{path}:")


def test_metadata_rb_plain_forms(tmp_path: Path) -> None:
    text = """\
# the usual generated header
name             'web'   # trailing comment
maintainer       "Ops # team"
license          'Apache-2.0'
description      'Installs the web tier\\'s pieces'
long_description IO.read(File.join(File.dirname(__FILE__), 'README.md'))
version          "1.2"
chef_version     '>= 15', '< 19'
supports         'ubuntu', '>= 22.04'
supports         'debian'
depends          'base'
depends('apt', '~> 7.4')
depends "ssl", "= 2.0.1"
issues_url 'https://example.test/issues' if respond_to?(:issues_url)
"""
    metadata = parse_rb(text, tmp_path / "metadata.rb")
    assert metadata.name == "web" and metadata.version == "1.2.0"
    assert metadata.maintainer == "Ops # team" and metadata.license == "Apache-2.0"
    assert metadata.description == "Installs the web tier's pieces"
    assert metadata.dependencies == {"base": ">= 0.0.0", "apt": "~> 7.4", "ssl": "= 2.0.1"}
    assert metadata.platforms == {"ubuntu": ">= 22.04", "debian": ">= 0.0.0"}
    assert metadata.chef_versions == [[">= 15", "< 19"]]
    assert metadata.long_description == "" and metadata.issues_url == ""  # not plain: left out


def test_a_heredoc_is_not_read_as_lines(tmp_path: Path) -> None:
    text = """\
name 'web'
long_description <<-EOH
  version 2 of everything
  depends on nothing
  EOH
version '0.3.1'
"""
    metadata = parse_rb(text, tmp_path / "metadata.rb")
    assert metadata.version == "0.3.1" and metadata.dependencies == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("name 'web'\nversion IO.read('VERSION').strip\n",
     "2:1: version: cannot read this version line without running Ruby; write it as "
     "version '1.0.0'"),
    ("name \"web-#{suffix}\"\nversion '1.0.0'\n",
     "1:1: name: cannot read this name line without running Ruby; write it as "
     "name 'my_cookbook'"),
    ("name 'web'\nversion '1.0.0'\n%w(apt yum).each { |cb| depends cb }\n",
     "3:1: depends: a dependency in a form this reader cannot follow; write it as "
     "depends 'other' or depends 'other', '>= 1.0'"),
    ("name 'web'\nversion '1.0.0'\ndepends 'apt', '>= 1.0', '< 2.0'\n",
     "3:1: depends: depends takes one version constraint"),
    ("name 'web'\n\nversion '1'\n",
     "3:1: version: '1' is not a version such as 1.2.3"),
    ("name 'web'\nversion '1.0.0'\ndepends 'base'\ndepends 'apt', '>> 1.0'\n",
     "4:1: dependencies.apt: '>> 1.0' is not a version constraint such as '>= 1.0' or "
     "'~> 2.1'"),
    ("name 'web server'\nversion '1.0.0'\n",
     "1:1: name: 'web server' is not a cookbook name (letters, digits, '_', '-', '.')"),
    ("version '1.0.0'\n", "1:1: name: no name line; add name 'my_cookbook'"),
    ("name 'web'\n", "1:1: version: no version line; add version '1.0.0'"),
], ids=["ruby-version", "interpolation", "depends-in-a-loop", "two-constraints",
        "bad-version", "bad-constraint", "bad-name", "no-name", "no-version"])
def test_metadata_rb_errors_name_file_and_line(text: str, expected: str,
                                               tmp_path: Path) -> None:
    assert problem(text, tmp_path) == expected


def test_metadata_json_wins_and_its_errors_name_the_line(tmp_path: Path) -> None:
    root = cookbook(tmp_path / "vendored", {
        "metadata.rb": "name 'stale'\nversion '0.0.1'\n",
        "metadata.json": '{"name": "apt", "version": "7.4.0", "gems": [],\n'
                         ' "dependencies": {"base": ">= 1.0"}, "recipes": {"apt": "x"}}\n',
    })
    found = read_cookbook(root)
    assert (found.name, found.version) == ("apt", "7.4.0")
    assert found.metadata.dependencies == {"base": ">= 1.0"}
    (root / "metadata.json").write_text('{"name": "apt",\n "version": "seven"}\n')
    with pytest.raises(CookbookError, match=r"metadata.json:2:1: version: 'seven' is not"):
        read_cookbook(root)
    (root / "metadata.json").write_text('{"name": "apt",\n "version": }\n')
    with pytest.raises(CookbookError, match=r"metadata.json:2:1: \(cookbook\): not JSON"):
        read_cookbook(root)


FILES: dict[str, str | bytes] = {
    "metadata.rb": "name 'web'\nversion '1.0.0'\ndepends 'base'\n",
    "README.md": "# web\n",
    "recipes/default.rb": "include_recipe 'base'\n",
    "recipes/server.rb": "package 'nginx'\n",
    "recipes/notes.txt": "not a recipe: Chef leaves it out\n",
    "attributes/default.rb": "default['web']['port'] = 80\n",
    "definitions/site.rb": "define :site do end\n",
    "libraries/helpers.rb": "module Web; end\n",
    "libraries/web/deep.rb": "module Web::Deep; end\n",
    "resources/site.rb": "property :name\n",
    "resources/README": "not Ruby: left out\n",
    "providers/site.rb": "action :create do end\n",
    "templates/default/nginx.conf.erb": "listen <%= @port %>;\n",
    "templates/host-web1.lab/nginx.conf.erb": "listen 8080;\n",
    "templates/motd.erb": "hello\n",
    "files/default/keys/ca.pem": b"\x00\x01 binary \xff",
    "files/ubuntu-22.04/limits.conf": "* soft nofile 4096\n",
    "spec/default_spec.rb": "not uploaded\n",
    ".kitchen.yml": "not uploaded\n",
    "recipes/.server.rb.swp": "editor leftovers\n",
    "templates/default/.git/config": "not uploaded\n",
}


def test_files_land_in_chef_segments_with_md5_and_specificity(tmp_path: Path) -> None:
    root = cookbook(tmp_path / "web", FILES)
    manifest = read_cookbook(root).manifest()
    by_segment = {segment: [(f["path"], f["name"], f["specificity"]) for f in manifest[segment]]
                  for segment in ("recipes", "attributes", "definitions", "libraries",
                                  "resources", "providers", "templates", "files",
                                  "root_files")}
    assert by_segment == {
        "recipes": [("recipes/default.rb", "default.rb", "default"),
                    ("recipes/server.rb", "server.rb", "default")],
        "attributes": [("attributes/default.rb", "default.rb", "default")],
        "definitions": [("definitions/site.rb", "site.rb", "default")],
        "libraries": [("libraries/helpers.rb", "helpers.rb", "default"),
                      ("libraries/web/deep.rb", "deep.rb", "default")],
        "resources": [("resources/site.rb", "site.rb", "default")],
        "providers": [("providers/site.rb", "site.rb", "default")],
        "templates": [("templates/default/nginx.conf.erb", "nginx.conf.erb", "default"),
                      ("templates/host-web1.lab/nginx.conf.erb", "nginx.conf.erb",
                       "host-web1.lab"),
                      ("templates/motd.erb", "motd.erb", "root_default")],
        "files": [("files/default/keys/ca.pem", "ca.pem", "default"),
                  ("files/ubuntu-22.04/limits.conf", "limits.conf", "ubuntu-22.04")],
        "root_files": [("README.md", "README.md", "default"),
                       ("metadata.rb", "metadata.rb", "default")],
    }
    for segment in by_segment:
        for entry in manifest[segment]:
            data = (root / entry["path"]).read_bytes()
            assert entry["checksum"] == hashlib.md5(data).hexdigest()
    assert manifest["name"] == "web-1.0.0" and manifest["cookbook_name"] == "web"
    assert manifest["json_class"] == "Chef::CookbookVersion" and manifest["frozen?"] is False
    metadata = manifest["metadata"]
    assert metadata["recipes"] == {"web": "", "web::server": ""}
    assert metadata["dependencies"] == {"base": ">= 0.0.0"}


def test_the_same_tree_gives_the_same_cookbook(tmp_path: Path) -> None:
    first = read_cookbook(cookbook(tmp_path / "a" / "web", FILES))
    second = read_cookbook(cookbook(tmp_path / "b" / "web", dict(reversed(FILES.items()))))
    assert first.manifest() == second.manifest()


def test_links_inside_are_followed_outside_refused(tmp_path: Path) -> None:
    root = cookbook(tmp_path / "web", {"metadata.rb": "name 'web'\nversion '1.0.0'\n",
                                       "templates/default/a.erb": "shared\n"})
    (root / "templates" / "host-x").mkdir()
    os.symlink("../default/a.erb", root / "templates" / "host-x" / "a.erb")
    linked = {f.path: f for f in read_cookbook(root).files}["templates/host-x/a.erb"]
    assert linked.checksum == hashlib.md5(b"shared\n").hexdigest()

    secret = tmp_path / "secret.txt"
    secret.write_text("not the cookbook's\n")
    os.symlink(secret, root / "templates" / "default" / "b.erb")
    with pytest.raises(CookbookError) as failed:
        read_cookbook(root)
    assert str(failed.value) == (
        f"{root}/templates/default/b.erb:1:1: templates/default/b.erb: a link to {secret}, "
        "outside the cookbook: copy the file in instead")


def test_what_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    root = cookbook(tmp_path / "web", {"metadata.rb": "name 'web'\nversion '1.0.0'\n"})
    (root / "recipes").mkdir()
    os.mkfifo(root / "recipes" / "default.rb")
    with pytest.raises(CookbookError, match=r"recipes/default.rb: not a regular file"):
        read_cookbook(root)
    os.unlink(root / "recipes" / "default.rb")
    os.symlink(root / "recipes", root / "files")  # a segment that is a link to a directory
    with pytest.raises(CookbookError, match=r"files: a link to a directory"):
        read_cookbook(root)


def test_a_directory_without_metadata_is_no_cookbook(tmp_path: Path) -> None:
    root = cookbook(tmp_path / "web", {"recipes/default.rb": ""})
    with pytest.raises(CookbookError, match=r"no metadata.rb or metadata.json"):
        read_cookbook(root)


def test_two_directories_with_one_cookbook_name_are_refused(tmp_path: Path) -> None:
    meta = {"metadata.rb": "name 'web'\nversion '1.0.0'\n"}
    one, two = cookbook(tmp_path / "a" / "web", meta), cookbook(tmp_path / "b" / "web", meta)
    with pytest.raises(CookbookError, match=f"cookbook 'web' is also in {one}"):
        read_cookbooks([one, two])


SHIPPED = {
    "alpha/cookbooks/alpha/metadata.rb": "name 'alpha'\nversion '0.1'\n",
    "alpha/cookbooks/alpha/recipes/server.rb": "",
    "alpha/cookbooks/alpha/recipes/client.rb": "",
    "beta/cookbooks/beta/metadata.rb": "name 'beta'\nversion '2.0.0'\ndepends 'alpha'\n",
    "beta/cookbooks/beta/recipes/api.rb": "",
    "beta/cookbooks/beta/recipes/worker.rb": "",
}


def test_a_deployment_uploads_what_its_barclamps_ship_and_the_vendored(
        tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path / "catalog", shipping_files() | SHIPPED))
    assert cookbook_dirs(catalog, ["alpha"]) == [tmp_path / "catalog/alpha/cookbooks/alpha"]
    vendored = cookbook(tmp_path / "vendor" / "apt", {
        "metadata.json": '{"name": "apt", "version": "7.4.0"}'})
    cookbooks = site_cookbooks(catalog, answers_with(VALID).barclamps, vendored.parent)
    assert list(cookbooks) == ["alpha", "beta", "apt"]  # barclamps in apply order, then DIR


def test_the_environment_pins_each_cookbook_and_they_go_first(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("BETA_PASSWORD", "b3ta-pass")
    catalog = load_catalog(write_catalog(tmp_path / "catalog", shipping_files() | SHIPPED))
    answers = answers_with(VALID)
    objects = render(answers, catalog, site_cookbooks(catalog, answers.barclamps))
    assert objects.environment["cookbook_versions"] == {"alpha": "= 0.1.0", "beta": "= 2.0.0"}
    kinds = [t.kind for t in targets(objects, "lab")]
    assert kinds[:3] == ["cookbooks", "cookbooks", "environments"]
    assert render(answers, catalog).environment["cookbook_versions"] == {}
