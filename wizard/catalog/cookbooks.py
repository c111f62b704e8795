"""The Chef cookbooks behind the catalog's run lists: shipped ones and declared upstream ones.

A barclamp carries the Chef content that configures it, as Crowbar's did: cookbooks it
ships in ``barclamps/<name>/cookbooks/<cookbook>/`` (``metadata.rb``, ``recipes/``,
``attributes/``, ``templates/``), or upstream cookbooks it declares in ``barclamp.yaml``
(``upstream_cookbooks``: name, version constraint, where they come from, and the recipes
of theirs its run lists use). Loading the catalog makes sure every run-list recipe
resolves to one of them, and every cookbook a shipped one depends on is shipped or
declared, so nothing is pushed that a node cannot converge. Metadata is read by
:mod:`wizard.catalog.metadata`, without Ruby.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.base.problems import CatalogError, Problem
from wizard.catalog.metadata import CookbookError, Metadata, read_metadata

if TYPE_CHECKING:
    from wizard.catalog import UpstreamCookbook

COOKBOOK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
"""A cookbook or recipe name, as Chef's own metadata validation allows."""
CONSTRAINT = re.compile(r"^(=|>=|>|<|<=|~>) ?(\d+\.\d+(\.\d+)?)$")
"""A Chef version constraint: an operator and a version (``~> 20.0``, ``= 1.2.3``)."""
_RUN_LIST_RECIPE = re.compile(r"^recipe\[([^\]:@]+)(?:::([^\]@]+))?(?:@[0-9.]+)?\]$")


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
        except CookbookError as exc:
            problems += exc.problems
            continue
        if metadata.name != cookbook.name:
            line = metadata_line(cookbook, r"^\s*name\b")
            problems.append(Problem(str(cookbook / "metadata.rb"), line, 1, "name",
                                    f"name {metadata.name!r} differs from its directory "
                                    f"{cookbook.name!r}"))
            continue
        recipes = frozenset(p.stem for p in (cookbook / "recipes").glob("*.rb"))
        found.append(ShippedCookbook(barclamp, cookbook, metadata, recipes))
    if problems:
        raise CatalogError(problems)
    return found


def satisfies(version: str, constraint: str) -> bool:
    """Whether ``version`` (``1.2.3``) meets a Chef ``constraint`` (``~> 1.2``, ``>= 1.0``,
    ``= 1.2.3``); ``~> 1.2`` means >= 1.2 and < 2.0, ``~> 1.2.3`` >= 1.2.3 and < 1.3."""
    operator, _, wanted = constraint.partition(" ")
    have, want = _parts(version), _parts(wanted)
    if operator == "~>":
        places = len(wanted.split(".")) - 1
        upper = (*want[:places - 1], want[places - 1] + 1, *[0] * (3 - places))
        return want <= have < upper
    return {"=": have == want, ">=": have >= want, ">": have > want, "<=": have <= want,
            "<": have < want}[operator]


def _parts(version: str) -> tuple[int, ...]:
    numbers = [int(part) for part in version.split(".")]
    return tuple(numbers + [0] * (3 - len(numbers)))


def metadata_line(cookbook: Path, pattern: str) -> int:
    """The first line of the cookbook's ``metadata.rb`` matching ``pattern`` (1 when none
    does): where a problem with its name or a dependency is."""
    path = cookbook / "metadata.rb"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return next((n for n, text in enumerate(lines, 1) if re.search(pattern, text)), 1)


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

