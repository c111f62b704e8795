"""The Chef cookbooks behind the catalog's run lists: shipped ones and declared upstream ones.

A barclamp carries the Chef content that configures it, as Crowbar's did: cookbooks it
ships in ``barclamps/<name>/cookbooks/<cookbook>/`` (``metadata.rb``, ``recipes/``,
``attributes/``, ``templates/``), or upstream cookbooks it declares in ``barclamp.yaml``
(``upstream_cookbooks``: name, version constraint, where they come from, and the recipes
of theirs its run lists use). :func:`check_cookbooks` makes sure every run-list recipe
resolves to one of them, and every cookbook a shipped one depends on is shipped or
declared, so nothing is pushed that a node cannot converge.

``metadata.rb`` is Ruby, read here without Ruby: only the plain one-line forms Chef's own
generators write (``name 'x'``, ``version '1.2.3'``, ``depends 'y', '>= 1.0'``). A line
about name, version or dependencies in any other form is an error naming it, never
guessed; ``metadata.json`` (what ``berks vendor`` writes) is read as JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.base.problems import CatalogError, Problem

if TYPE_CHECKING:
    from wizard.catalog import UpstreamCookbook

COOKBOOK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
"""A cookbook or recipe name, as Chef's own metadata validation allows."""
VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
CONSTRAINT = re.compile(r"^(=|>=|>|<|<=|~>) ?(\d+\.\d+(\.\d+)?)$")
"""A Chef version constraint: an operator and a version (``~> 20.0``, ``= 1.2.3``)."""
_RUN_LIST_RECIPE = re.compile(r"^recipe\[([^\]:@]+)(?:::([^\]@]+))?(?:@[0-9.]+)?\]$")
_STRING = r"""(?:'([^'\\]*)'|"([^"\\#]*)")"""
_FIELD = re.compile(rf"^\s*(name|version)\s*\(?\s*{_STRING}\s*\)?\s*(?:#.*)?$")
_DEPENDS = re.compile(rf"^\s*depends\s*\(?\s*{_STRING}\s*(?:,\s*{_STRING}\s*)?\)?\s*(?:#.*)?$")
_MATTERS = re.compile(r"^\s*(name|version|depends)\b")


@dataclass(frozen=True)
class Metadata:
    """What a cookbook's metadata says about it: name, version, what it depends on."""

    name: str
    version: str
    depends: dict[str, str] = field(default_factory=dict)
    """Cookbook name -> version constraint (``>= 0.0.0`` when none is given)."""


def read_metadata(directory: Path) -> Metadata:
    """The metadata of the cookbook in ``directory`` (``metadata.json`` first, as Chef reads
    it); raise :class:`CatalogError` naming the file and line of what cannot be read."""
    json_file = directory / "metadata.json"
    if json_file.is_file():
        return _read_json(json_file)
    ruby_file = directory / "metadata.rb"
    if not ruby_file.is_file():
        raise CatalogError([Problem(str(directory), 1, 1, "(cookbook)",
                                    "no metadata.rb or metadata.json: not a cookbook")])
    return _read_ruby(ruby_file)


def _read_ruby(path: Path) -> Metadata:
    found: dict[str, str] = {}
    depends: dict[str, str] = {}
    problems: list[Problem] = []

    def problem(line: int, message: str) -> None:
        problems.append(Problem(str(path), line, 1, "(metadata)", message))

    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not _MATTERS.match(text):
            continue
        if match := _FIELD.match(text):
            key, value = match[1], match[2] if match[2] is not None else match[3]
            if key in found:
                problem(number, f"{key} is given twice")
            found[key] = value
        elif match := _DEPENDS.match(text):
            name = match[1] if match[1] is not None else match[2]
            constraint = match[3] if match[3] is not None else match[4]
            depends[name] = constraint if constraint is not None else ">= 0.0.0"
        else:
            problem(number, "write it as a plain line such as name 'ntp', version '1.0.0' "
                    "or depends 'apt', '>= 7.0' (this reader does not run Ruby)")
    problems += _check(path, found.get("name"), found.get("version"), depends,
                       {key: _line_of(path, key) for key in ("name", "version")})
    if problems:
        raise CatalogError(problems)
    return Metadata(found["name"], found["version"], depends)


def _read_json(path: Path) -> Metadata:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogError([Problem(str(path), 1, 1, "(metadata)",
                                    f"not JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise CatalogError([Problem(str(path), 1, 1, "(metadata)", "not a JSON object")])
    depends = data.get("dependencies") or {}
    if not isinstance(depends, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in depends.items()):
        raise CatalogError([Problem(str(path), 1, 1, "dependencies",
                                    "must map cookbook names to version constraints")])
    name, version = data.get("name"), data.get("version")
    problems = _check(path, name if isinstance(name, str) else None,
                      version if isinstance(version, str) else None, depends, {})
    if problems:
        raise CatalogError(problems)
    assert isinstance(name, str) and isinstance(version, str)
    return Metadata(name, version, dict(depends))


def _check(path: Path, name: str | None, version: str | None, depends: Mapping[str, str],
           lines: Mapping[str, int]) -> list[Problem]:
    problems = []
    if name is None or not COOKBOOK_NAME.match(name):
        problems.append(Problem(str(path), lines.get("name", 1), 1, "name",
                                "needs a cookbook name of letters, digits, '_' or '-'"))
    if version is None or not VERSION.match(version):
        problems.append(Problem(str(path), lines.get("version", 1), 1, "version",
                                "needs a version such as 1.0.0"))
    for other, constraint in depends.items():
        if not COOKBOOK_NAME.match(other) or not CONSTRAINT.match(constraint):
            problems.append(Problem(str(path), _line_of(path, other), 1, "depends",
                                    f"{other!r} {constraint!r} is not a cookbook name and a "
                                    "version constraint such as '>= 1.0'"))
    return problems


def _line_of(path: Path, word: str) -> int:
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if word in text:
            return number
    return 1


@dataclass(frozen=True)
class ShippedCookbook:
    """A cookbook a barclamp carries in its folder."""

    barclamp: str
    directory: Path
    metadata: Metadata
    recipes: frozenset[str]

    @property
    def name(self) -> str:
        return self.metadata.name


def shipped_cookbooks(barclamp: str, directory: Path) -> list[ShippedCookbook]:
    """The cookbooks in ``directory/cookbooks/*`` of ``barclamp``, each one's metadata read."""
    found = []
    problems: list[Problem] = []
    for cookbook in sorted((directory / "cookbooks").glob("*/")):
        try:
            metadata = read_metadata(cookbook)
        except CatalogError as exc:
            problems += exc.problems
            continue
        if metadata.name != cookbook.name:
            problems.append(Problem(str(cookbook / "metadata.rb"), _line_of(
                cookbook / "metadata.rb", "name"), 1, "name",
                f"name {metadata.name!r} differs from its directory {cookbook.name!r}"))
            continue
        recipes = frozenset(p.stem for p in (cookbook / "recipes").glob("*.rb"))
        found.append(ShippedCookbook(barclamp, cookbook, metadata, recipes))
    if problems:
        raise CatalogError(problems)
    return found


def run_list_recipe(item: str) -> tuple[str, str] | None:
    """``recipe[nova::api]`` -> (``nova``, ``api``); ``recipe[ntp]`` is ntp's ``default``;
    None for a ``role[...]`` item."""
    match = _RUN_LIST_RECIPE.match(item)
    if match is None:
        return None
    return match[1], match[2] or "default"


@dataclass(frozen=True)
class Provider:
    """Where a cookbook comes from: a barclamp's folder, or an upstream declaration."""

    barclamp: str
    recipes: frozenset[str]
    shipped: ShippedCookbook | None = None
    upstream: UpstreamCookbook | None = None

    def describe(self, cookbook: str) -> str:
        if self.shipped is not None:
            return f"cookbook {cookbook} shipped by barclamp {self.barclamp}"
        return f"upstream cookbook {cookbook} declared by barclamp {self.barclamp}"

