"""Cookbooks through a real Chef server's cookbook API: goiardi with authentication on.

What goiardi 0.11.10 does, found here and asserted below:

- it stores an environment whose ``cookbook_versions`` pin cookbooks it does not hold (only
  the constraint's syntax is checked): uploading the cookbooks first is this tool's rule,
  not the server's;
- its depsolver (``POST /environments/ENV/cookbook_versions``) resolves cookbooks, never
  recipes: a run list naming a recipe a cookbook lacks resolves as well as one naming a
  real recipe; a cookbook it lacks, or a dependency no version satisfies, is a 412;
- it applies the environment's pins to the cookbooks the run list names, not to those
  pulled in as dependencies (Chef Infra Server applies them to both).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from pathlib import Path

import httpx
import pytest

from tests.unit.test_cookbooks import cookbook as write
from wizard.answers import Answers, load, save
from wizard.catalog import Catalog, default_catalog
from wizard.catalog.cookbooks import shipped_cookbooks
from wizard.chef.api import ChefError, ChefServer
from wizard.chef.cookbooks import Cookbook, read_cookbook, read_cookbooks, site_cookbooks
from wizard.chef.objects import ChefObjects, render
from wizard.chef.push import PushError, PushReport, push
from wizard.chef.upload import upload_cookbook
from wizard.cli.main import main
from wizard.engine.journal import SITE, Journal
from wizard.engine.plan import describe
from wizard.engine.runner import Options, Runner, StepFailed
from wizard.hardware.ipmi import IpmiDriver
from wizard.lab.goiardi import Goiardi

pytestmark = pytest.mark.slow

EXAMPLE = Path("answers/examples/lab-small.yaml")
README = "Shared by both cookbooks: the server stores it once.\n"
COOKBOOKS: dict[str, dict[str, str | bytes]] = {
    "fixture_base": {
        "metadata.rb": "name 'fixture_base'\nversion '1.0'\ndescription 'A base'\n",
        "README.md": README,
        "recipes/default.rb": "log 'base'\n",
        "templates/default/motd.erb": "Welcome to <%= node['fqdn'] %>\n",
        "files/default/blob.bin": bytes(range(256)) * 4,
        "libraries/helpers.rb": "module FixtureBase; end\n",
    },
    "fixture_app": {
        "metadata.rb": "name 'fixture_app'\nversion '2.1.0'\n"
                       "depends 'fixture_base', '>= 1.0'\n",
        "README.md": README,
        "recipes/server.rb": "include_recipe 'fixture_base'\n",
        "attributes/default.rb": "default['fixture_app']['port'] = 8080\n",
    },
    "fixture_vendored": {  # as `berks vendor` writes one: metadata.json, no metadata.rb
        "metadata.json": '{"name": "fixture_vendored", "version": "0.4.2", '
                         '"dependencies": {}, "gems": [], "recipes": {}}\n',
        "recipes/default.rb": "log 'vendored'\n",
    },
}


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")


@pytest.fixture
def shelf(tmp_path: Path) -> Path:
    """A directory of cookbooks, as `berks vendor` leaves one."""
    for name, files in COOKBOOKS.items():
        write(tmp_path / "cookbooks" / name, files)
    return tmp_path / "cookbooks"


def deployment(shelf: Path) -> tuple[Answers, ChefObjects]:
    answers = load(EXAMPLE)
    cookbooks = read_cookbooks(sorted(shelf.iterdir()))
    return answers, render(answers, default_catalog(), cookbooks)


class Recorder:
    """Every request a ChefServer sends, in order."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def __call__(self, method: str, path: str) -> None:
        self.requests.append((method, path))

    def sent(self, method: str, prefix: str) -> list[str]:
        return [p for m, p in self.requests if m == method and p.startswith(prefix)]


def admin(server: Goiardi, recorder: Recorder | None = None) -> ChefServer:
    return ChefServer(server.url, "admin", server.admin_key.read_text(), on_request=recorder)


async def held(chef: ChefServer, cookbook: Cookbook) -> dict[str, bytes]:
    """``{path: bytes}`` of the version the server holds, each file fetched by the URL the
    server gives for it."""
    version = await chef.request("GET", f"/cookbooks/{cookbook.name}/{cookbook.version}")
    found = {}
    async with httpx.AsyncClient() as http:
        for segment in ("recipes", "attributes", "definitions", "libraries", "resources",
                        "providers", "templates", "files", "root_files"):
            for entry in version.get(segment) or ():
                found[entry["path"]] = (await http.get(entry["url"])).content
                assert hashlib.md5(found[entry["path"]]).hexdigest() == entry["checksum"]
    return found


def on_disk(cookbook: Cookbook) -> dict[str, bytes]:
    return {f.path: (cookbook.directory / f.path).read_bytes() for f in cookbook.files}


def test_push_uploads_every_file_and_the_environment_pins_each_version(
        goiardi: Goiardi, shelf: Path) -> None:
    answers, objects = deployment(shelf)
    recorder = Recorder()

    async def go() -> tuple[PushReport, dict[str, dict[str, bytes]], dict | None]:
        async with admin(goiardi, recorder) as chef:
            report = await push(chef, objects, answers.site.name)
            found = {name: await held(chef, c) for name, c in objects.cookbooks.items()}
            return report, found, await chef.get("environments", answers.site.name)
    report, found, environment = asyncio.run(go())
    for name, cookbook in objects.cookbooks.items():
        assert report.outcomes[f"cookbook {name}"] == "created"
        assert found[name] == on_disk(cookbook), name
    assert environment is not None and environment["cookbook_versions"] == {
        "fixture_app": "= 2.1.0", "fixture_base": "= 1.0.0", "fixture_vendored": "= 0.4.2"}
    checksums = {f.checksum for c in objects.cookbooks.values() for f in c.files}
    assert set(recorder.sent("PUT", "/file_store/")) == {f"/file_store/{c}" for c in checksums}
    last_cookbook = max(i for i, (m, p) in enumerate(recorder.requests)
                        if m == "PUT" and p.startswith("/cookbooks/"))
    assert recorder.requests.index(("GET", f"/environments/{answers.site.name}")) \
        > last_cookbook


def test_a_second_push_uploads_nothing(goiardi: Goiardi, shelf: Path) -> None:
    answers, objects = deployment(shelf)
    recorder = Recorder()

    async def go() -> PushReport:
        await push_once(goiardi, answers, objects)
        async with admin(goiardi, recorder) as chef:
            return await push(chef, objects, answers.site.name)
    again = asyncio.run(go())
    assert not again.changed
    assert {again.outcomes[f"cookbook {name}"] for name in objects.cookbooks} == {"unchanged"}
    assert recorder.sent("POST", "/sandboxes") == []
    assert recorder.sent("PUT", "/file_store") == recorder.sent("PUT", "/cookbooks") == []


def test_an_edit_under_the_same_version_is_refused_and_force_replaces(
        goiardi: Goiardi, shelf: Path) -> None:
    answers, objects = deployment(shelf)
    asyncio.run(push_once(goiardi, answers, objects))
    app = shelf / "fixture_app"
    before = read_cookbook(app)
    original = on_disk(before)
    (app / "recipes/server.rb").write_text("include_recipe 'fixture_base'\npackage 'x'\n")
    (app / "attributes/default.rb").unlink()
    write(app, {"templates/default/app.conf.erb": "port <%= @port %>\n"})
    edited = deployment(shelf)[1]
    after = edited.cookbooks["fixture_app"]
    recorder = Recorder()

    async def go() -> tuple[PushError, dict[str, bytes], PushReport, dict[str, bytes]]:
        async with admin(goiardi, recorder) as chef:
            environment = await chef.get("environments", answers.site.name)
            with pytest.raises(PushError) as refused:
                await push(chef, edited, answers.site.name)
            kept = await held(chef, before)
            assert await chef.get("environments", answers.site.name) == environment
            assert recorder.sent("POST", "/sandboxes") == [], "the refusal uploaded nothing"
            forced = await push(chef, edited, answers.site.name, force=True)
            return refused.value, kept, forced, await held(chef, after)
    refused, kept, forced, replaced = asyncio.run(go())
    assert refused.report.failed == {"cookbook fixture_app": (
        "cookbook fixture_app 2.1.0 is on the server with other files (attributes/default.rb "
        "(gone), recipes/server.rb (changed), templates/default/app.conf.erb (new)): bump "
        "the version in metadata.rb, or push with --force")}
    assert f"environment {answers.site.name}" in refused.report.skipped
    assert kept == original
    assert forced.outcomes["cookbook fixture_app"] == "updated"
    assert forced.outcomes["cookbook fixture_base"] == "unchanged"
    assert replaced == on_disk(after)
    new = {f.checksum for f in after.files} - {f.checksum for f in before.files}
    assert set(recorder.sent("PUT", "/file_store/")) == {f"/file_store/{c}" for c in new}, \
        "only what the server lacked was uploaded"


async def push_once(goiardi: Goiardi, answers: Answers, objects: ChefObjects) -> PushReport:
    async with admin(goiardi) as chef:
        return await push(chef, objects, answers.site.name)


async def depsolve(chef: ChefServer, environment: str, run_list: list[str]) -> dict[str, str]:
    """What chef-client asks before a run: the cookbook versions for an expanded run list."""
    found = await chef.request("POST", f"/environments/{environment}/cookbook_versions",
                               {"run_list": run_list})
    return {name: version["version"] for name, version in found.items()}


def test_the_depsolver_resolves_pins_and_dependencies(goiardi: Goiardi, shelf: Path,
                                                      tmp_path: Path) -> None:
    """See the module's docstring for what goiardi checks and what it does not."""
    answers, objects = deployment(shelf)
    env = answers.site.name
    newer_app = write(tmp_path / "newer_app", dict(COOKBOOKS["fixture_app"]) | {
        "metadata.rb": "name 'fixture_app'\nversion '3.0.0'\n"})
    newer_base = write(tmp_path / "newer_base", dict(COOKBOOKS["fixture_base"]) | {
        "metadata.rb": "name 'fixture_base'\nversion '1.1.0'\n"})
    unsatisfied = write(tmp_path / "top", {
        "metadata.rb": "name 'fixture_top'\nversion '1.0.0'\n"
                       "depends 'fixture_base', '>= 2.0'\n",
        "recipes/default.rb": ""})

    async def go() -> list[dict[str, str] | str]:
        async with admin(goiardi) as chef:
            await push(chef, objects, env)
            for directory in (newer_app, unsatisfied):
                await upload_cookbook(chef, read_cookbook(directory))
            results: list[dict[str, str] | str] = []
            for run_list in (["fixture_app::server"], ["fixture_app::no_such_recipe"],
                             ["fixture_vendored"], ["no_such_cookbook"], ["fixture_top"]):
                try:
                    results.append(await depsolve(chef, env, run_list))
                except ChefError as exc:
                    results.append(f"{exc.status} {exc}")
            await upload_cookbook(chef, read_cookbook(newer_base))
            results.append(await depsolve(chef, env, ["fixture_app::server"]))
            return results
    pinned, no_recipe, vendored, missing, unsatisfiable, after_newer_base = asyncio.run(go())
    # fixture_app 3.0.0 is newer, but the environment pins 2.1.0; fixture_base comes along
    assert pinned == {"fixture_app": "2.1.0", "fixture_base": "1.0.0"}
    assert no_recipe == pinned  # recipes are not checked, only cookbooks
    assert vendored == {"fixture_vendored": "0.4.2"}
    assert isinstance(missing, str) and missing.startswith("412 ")
    assert "no such cookbook no_such_cookbook" in missing
    assert isinstance(unsatisfiable, str) and unsatisfiable.startswith("412 ")
    assert "Unable to satisfy constraints on package fixture_base" in unsatisfiable
    # goiardi: the pin on fixture_base (= 1.0.0) does not hold it as a dependency
    assert after_newer_base == {"fixture_app": "2.1.0", "fixture_base": "1.1.0"}


def test_an_environment_may_pin_a_cookbook_the_server_lacks(goiardi: Goiardi) -> None:
    """So the order is ours to keep: nothing on the server makes cookbooks go first."""
    environment = {"name": "early", "json_class": "Chef::Environment",
                   "chef_type": "environment", "default_attributes": {},
                   "override_attributes": {}, "cookbook_versions": {"absent": "= 1.0.0"}}

    async def go() -> str:
        async with admin(goiardi) as chef:
            await chef.upsert("environments", environment)
            with pytest.raises(ChefError) as unresolved:
                await depsolve(chef, "early", ["absent"])
            return f"{unresolved.value.status} {unresolved.value}"
    assert asyncio.run(go()).startswith("412 ")


def test_cli_push_with_vendored_cookbooks_refuses_an_edit_unless_forced(
        goiardi: Goiardi, shelf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["chef", "push", str(EXAMPLE), "--server", goiardi.url, "--client", "admin",
            "--key", str(goiardi.admin_key), "--cookbooks", str(shelf)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "  created cookbook fixture_vendored 0.4.2\n" in first
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "created cookbook" not in second and "updated cookbook" not in second
    assert "nothing changed: all " in second

    (shelf / "fixture_base/templates/default/motd.erb").write_text("Hello\n")
    assert main(args) == 1
    refused = capsys.readouterr()
    failed, reason = refused.err.splitlines()[:2]  # counts include what barclamps ship
    assert failed.startswith("push failed: 1 of ")
    assert failed.endswith(" cookbooks could not be uploaded, so nothing that pins them was "
                           "pushed")
    assert reason == ("  not pushed: cookbook fixture_base: cookbook fixture_base 1.0.0 is on "
                      "the server with other files (templates/default/motd.erb (changed)): "
                      "bump the version in metadata.rb, or push with --force")
    assert main([*args, "--force"]) == 0
    forced = capsys.readouterr().out
    assert "  updated cookbook fixture_base 1.0.0\n" in forced


def test_the_answers_name_the_vendored_cookbooks_for_push_and_apply(
        goiardi: Goiardi, shelf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """chef.cookbooks_path: what push uploads without --cookbooks, and what apply renders
    (its environment pins them too, so an apply after a push keeps them pinned)."""
    answers = load(EXAMPLE)
    answers = answers.model_copy(update={"chef": answers.chef.model_copy(
        update={"cookbooks_path": str(shelf)})})
    path = tmp_path / "vendored.yaml"
    save(answers, path)
    assert main(["chef", "push", str(path), "--server", goiardi.url, "--client", "admin",
                 "--key", str(goiardi.admin_key)]) == 0
    assert "  created cookbook fixture_vendored 0.4.2\n" in capsys.readouterr().out
    journal = Journal.open(tmp_path / "journal.db")
    runner = Runner(load(path), default_catalog(), journal, directory=tmp_path / "pxe",
                    ipmi=IpmiDriver(), chef=None, serve_dhcp=False)
    try:
        assert runner.objects.environment["cookbook_versions"]["fixture_vendored"] == "= 0.4.2"
    finally:
        runner.ipmi.close()
        journal.close()


def test_apply_uploads_cookbooks_before_the_environment_and_does_not_retry_a_conflict(
        goiardi: Goiardi, tmp_path: Path) -> None:
    """The runner's Chef site step (apply's), with a barclamp that ships a cookbook."""
    answers = load(EXAMPLE)
    shipped = default_catalog()
    barclamp = next(iter(answers.barclamps))
    home = write(tmp_path / barclamp, {f"cookbooks/fixture_app/{path}": content
                                       for path, content in COOKBOOKS["fixture_app"].items()})
    catalog = Catalog(shipped.entries | {barclamp: dataclasses.replace(
        shipped.entries[barclamp], directory=home, cookbooks=shipped_cookbooks(barclamp, home))})
    journal = Journal.open(tmp_path / "journal.db")
    recorder = Recorder()

    async def site_step() -> list[str]:
        async with admin(goiardi, recorder) as chef:
            runner = Runner(answers, catalog, journal, directory=tmp_path / "pxe",
                            ipmi=IpmiDriver(), chef=chef, serve_dhcp=False,
                            options=Options(attempts=3, backoff=0.01))
            try:
                plan = runner.plan()
                await runner._chef_site(plan)
            finally:
                runner.ipmi.close()
            return describe(plan)
    try:
        planned = asyncio.run(site_step())  # counts include what the barclamps ship
        assert any(re.match(r"Chef: create \d+ Chef cookbooks?, ", line) for line in planned)
        cookbook_put = recorder.requests.index(("PUT", "/cookbooks/fixture_app/2.1.0"))
        assert recorder.requests.index(("POST", "/environments")) > cookbook_put

        (home / "cookbooks/fixture_app/recipes/server.rb").write_text("log 'changed'\n")
        with pytest.raises(StepFailed, match=r"bump the version in metadata\.rb"):
            asyncio.run(site_step())
        tries = [s for s in journal.steps()
                 if s.node == SITE and s.step == "chef:cookbook fixture_app"]
        assert [(s.status, s.attempts) for s in tries] == [("failed", 2)]  # 1 per apply
    finally:
        journal.close()


@pytest.mark.parametrize("example", ["lab-small", "openstack", "hadoop"])
def test_the_shipped_cookbooks_upload_and_every_role_resolves_or_names_what_to_vendor(
        goiardi: Goiardi, example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real catalog's cookbooks, pushed for each example: every file reads back by its
    checksum URL, and each pushed role's run list resolves (goiardi's depsolver) when all
    its cookbooks ship, or names the upstream cookbook the operator still has to vendor."""
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "keystone-secret")
    answers = load(f"answers/examples/{example}.yaml")
    catalog = default_catalog()
    objects = render(answers, catalog, site_cookbooks(catalog, answers.barclamps))
    assert objects.cookbooks, "every example deploys core barclamps, which ship cookbooks"

    async def go() -> tuple[dict[str, dict[str, bytes]], dict[str, dict[str, str] | str]]:
        async with admin(goiardi) as chef:
            await push(chef, objects, answers.site.name)
            found = {name: await held(chef, c) for name, c in objects.cookbooks.items()}
            solved: dict[str, dict[str, str] | str] = {}
            for name, role in objects.roles.items():
                bare = [item[len("recipe["):-1] for item in role["run_list"]]
                try:
                    solved[name] = await depsolve(chef, answers.site.name, bare)
                except ChefError as exc:
                    solved[name] = f"{exc.status} {exc}"
            return found, solved
    found, solved = asyncio.run(go())
    for name, cookbook in objects.cookbooks.items():
        assert found[name] == on_disk(cookbook), name
    for name, role in objects.roles.items():
        cookbooks = [item[len("recipe["):-1].split("::")[0] for item in role["run_list"]]
        missing = [c for c in cookbooks if c not in objects.cookbooks]
        if missing:
            assert missing[0] in objects.upstream, f"{name}: {missing[0]} is declared nowhere"
            assert isinstance(solved[name], str) and solved[name].startswith("412 "), name
            assert "no such cookbook" in solved[name], solved[name]
            assert all(re.search(rf"\b{re.escape(c)}\b", solved[name]) for c in missing), \
                solved[name]
        else:
            assert solved[name] == {c: objects.cookbooks[c].version for c in set(cookbooks)}
