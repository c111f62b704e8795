"""The barclamp catalog: barclamps as data, their dependencies and apply order.

A barclamp is ``barclamps/<name>/barclamp.yaml`` (validated by :class:`Barclamp`) with
optional jinja2 templates in ``templates/``: ``environment.yaml.j2`` renders the attributes
the barclamp puts in the Chef environment, ``data_bag.yaml.j2`` the body of its data bag
item ``bc-<barclamp>-<proposal>``. Templates are rendered with ``StrictUndefined``; loading
renders each once against a sample deployment, so a broken template fails at load, not in
the middle of a deployment.
"""

from __future__ import annotations

import functools
import heapq
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.meta
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from wizard.base.escaping import one_line
from wizard.base.fields import FORMATS, Identifier, Tag, control_character
from wizard.base.model import Model
from wizard.base.problems import CatalogError, Problem, did_you_mean
from wizard.base.yamlfile import CoreSchemaLoader, Document, read_document
from wizard.catalog.cookbooks import (
    CONSTRAINT,
    COOKBOOK_NAME,
    Provider,
    ShippedCookbook,
    metadata_line,
    run_list_recipe,
    satisfies,
    shipped_cookbooks,
)
from wizard.catalog.samples import sample_context

CORE_GROUP = "@core"
"""In ``requires``: every core barclamp not marked ``optional``."""
TEMPLATES = ("environment.yaml.j2", "data_bag.yaml.j2")
TEMPLATE_VARIABLES = frozenset({
    "barclamp", "proposal", "attributes", "roles", "nodes", "site", "admin", "networks",
    "proposals",
})
"""What a template sees (built by ``wizard.chef.objects``)."""
_RUN_LIST_ITEM = re.compile(r"^(recipe|role)\[[A-Za-z0-9_.:-]+(@[0-9.]+)?\]$")
_PYTHON_TYPES: dict[str, tuple[type[Any], ...]] = {
    "string": (str,), "integer": (int,), "float": (int, float), "boolean": (bool,),
    "list": (list,), "secret": (str,),
}


class Attribute(Model):
    """One setting of a barclamp, typed, with a default and help for the operator.

    A list holds strings. ``format`` types a string (or each item of a list) further with
    a parser from :data:`wizard.base.fields.FORMATS` (``ipv4``, ``ssh_public_key``, ``console``,
    ...); an empty string means "unset" and passes. No string holds a control character.
    """

    type: Literal["string", "integer", "float", "boolean", "list", "secret"]
    help: str = Field(min_length=1)
    default: Any = None
    required: bool = False
    enum: list[str | int] | None = None
    min: float | None = None
    max: float | None = None
    format: str | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is not None and value not in FORMATS:
            raise ValueError(f"unknown format {value!r}" + (
                did_you_mean(value, FORMATS) or f" (known: {', '.join(FORMATS)})"))
        return value

    @model_validator(mode="after")
    def _default_fits(self) -> Attribute:
        if self.format is not None and self.type not in ("string", "list"):
            raise ValueError("a format types a string or the items of a list")
        if self.type == "secret" and self.default is not None:
            raise ValueError("a secret has no default: the operator sets it (env:/file:)")
        if self.default is None:
            if not self.required and self.type != "secret":
                raise ValueError("give a default, or mark the attribute required")
            return self
        problem = self.check(self.default)
        if problem:
            raise ValueError(f"default {self.default!r}: {problem}")
        return self

    def check(self, value: Any) -> str | None:
        """Why ``value`` does not fit this attribute, or None when it does."""
        expected = _PYTHON_TYPES[self.type]
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            return f"expected {'a' if self.type[0] not in 'ai' else 'an'} {self.type}"
        if not _finite(value):  # NaN passes every bound below, and neither is JSON
            return "must be a finite number" if self.type == "float" else \
                "holds a number that is not finite (NaN or infinity)"
        if self.type == "list":
            for index, item in enumerate(value, 1):
                problem = self._check_text(item, unset_ok=False)
                if problem:
                    return f"item {index}: {problem}"
        elif isinstance(value, str):
            problem = self._check_text(value, unset_ok=True)
            if problem:
                return problem
        if self.enum is not None and value not in self.enum:
            return f"must be one of {', '.join(map(str, self.enum))}"
        if self.min is not None and value < self.min:
            return f"must be at least {format_number(self.min)}"
        if self.max is not None and value > self.max:
            return f"must be at most {format_number(self.max)}"
        return None

    def _check_text(self, value: Any, *, unset_ok: bool) -> str | None:
        """Why a string value (or list item) does not fit, or None."""
        if not isinstance(value, str):
            return f"expected a string, not {type(value).__name__}"
        problem = control_character(value)
        if problem or self.format is None or (unset_ok and value == ""):
            return problem
        try:
            normal = FORMATS[self.format](value)
        except ValueError as exc:
            return str(exc)
        return None if normal == value else f"write it as {normal!r}"


def _finite(value: Any) -> bool:
    """No NaN or infinity in ``value``, however deep in lists and mappings."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(_finite, value))
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    return True


def format_number(value: float) -> str:
    """``4.0`` -> ``4``, ``1.5`` -> ``1.5``: bounds as an operator wrote them."""
    return str(int(value)) if value == int(value) else str(value)


class Hints(Model):
    """Hardware a node needs to hold a role."""

    virtualization: bool = False
    min_disks: int = Field(0, ge=0)
    min_memory_gb: int = Field(0, ge=0)
    min_cpu_cores: int = Field(0, ge=0)


class Role(Model):
    """A Chef role a barclamp places on nodes, with its placement rules."""

    name: Tag
    description: str = Field(min_length=1)
    run_list: list[str] = Field(default_factory=list)
    outside_chef: str | None = Field(
        None, min_length=1, description="who does the role's work instead of a run list "
        "(crowbar-wizard's own provisioner, the installers): such a role is placed, but no "
        "Chef role is pushed for it")
    ignores: list[str] = Field(
        default_factory=list, description="attributes of the barclamp's environment section "
        "(dotted paths) the role's recipes do not read: a change to them does not "
        "re-converge the role on a deployed site (a DNS client reads the servers, not the "
        "zone's hosts; a compute node, not the list of the others)")
    min_nodes: int = Field(0, ge=0)
    max_nodes: int | None = Field(None, ge=1)
    all_nodes: bool = False
    admin: Literal["never", "allowed", "only"] = Field(
        "never", description="whether the admin node may hold the role (``only``: it alone); "
        "an ``all_nodes`` role that allows it goes on the admin node too")
    conflicts: list[Tag] = Field(default_factory=list)
    hints: Hints = Field(default_factory=Hints)
    intended: list[Tag] = Field(
        default_factory=list, description="node roles (controller, compute, ...) to prefer"
    )
    prefer: Literal["least_loaded", "most_memory", "most_disks"] = "least_loaded"
    suggested_nodes: int | None = Field(
        None, ge=1, description="how many nodes auto-allocation gives the role"
    )

    @field_validator("run_list")
    @classmethod
    def _run_list_items(cls, items: list[str]) -> list[str]:
        for item in items:
            if not _RUN_LIST_ITEM.match(item):
                raise ValueError(f"{item!r} is not a run list item such as recipe[nova::api]")
        return items

    @model_validator(mode="after")
    def _counts(self) -> Role:
        if self.max_nodes is not None and self.max_nodes < self.min_nodes:
            raise ValueError(f"max_nodes {self.max_nodes} is below min_nodes {self.min_nodes}")
        if self.all_nodes and self.admin == "only":
            raise ValueError("a role cannot be on all nodes and on the admin node only")
        if bool(self.run_list) == bool(self.outside_chef):
            raise ValueError("give a role a run_list, or say in outside_chef who does its "
                             "work instead (not both)")
        return self


class UpstreamCookbook(Model):
    """A cookbook a barclamp uses from upstream instead of shipping a second copy.

    ``recipes`` are the ones its run lists use, as they exist at ``ref``: the catalog checks
    run lists against them, and ``chef export`` pins the cookbook (a Berksfile) so a
    connected workstation can vendor it for ``chef push --cookbooks``.
    """

    name: str = Field(pattern=COOKBOOK_NAME.pattern)
    version: str = Field(pattern=CONSTRAINT.pattern,
                         description="a Chef version constraint: '= 20.0.0', '~> 8.1'")
    git: str | None = Field(None, pattern=r"^https://[A-Za-z0-9.-]+/[A-Za-z0-9._/-]+$",
                            description="its repository; unset, the Chef Supermarket")
    ref: str | None = Field(None, pattern=r"^[A-Za-z0-9._/-]+$",
                            description="the tag or commit in git to take")
    recipes: list[str] = Field(
        default_factory=list, description="the recipes of it our run lists use; none for a "
        "cookbook declared only to pin a dependency of another")
    why: str | None = Field(None, min_length=1, description="why it is declared, when no "
                            "run list uses it (a dependency pinned below a breaking release)")

    @field_validator("recipes")
    @classmethod
    def _recipe_names(cls, items: list[str]) -> list[str]:
        for item in items:
            if not COOKBOOK_NAME.match(item):
                raise ValueError(f"{item!r} is not a recipe name")
        return items

    @model_validator(mode="after")
    def _ref_needs_git(self) -> UpstreamCookbook:
        if self.ref is not None and self.git is None:
            raise ValueError("a ref is a tag or commit of the git repository: give git too")
        return self

    def same_source(self, other: UpstreamCookbook) -> bool:
        """Whether ``other`` declares the same cookbook from the same place."""
        return (self.name, self.version, self.git, self.ref) == \
            (other.name, other.version, other.git, other.ref)


class Barclamp(Model):
    """A deployable module: roles to place on nodes, attributes, and what it requires."""

    name: Identifier
    display_name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    category: Literal["core", "openstack", "hadoop", "ops"]
    optional: bool = Field(False, description=f"a core barclamp {CORE_GROUP} leaves out")
    requires: list[str] = Field(default_factory=list)
    run_order: int = Field(ge=0)
    roles: list[Role] = Field(min_length=1)
    attributes: dict[Identifier, Attribute] = Field(default_factory=dict)
    upstream_cookbooks: list[UpstreamCookbook] = Field(default_factory=list)

    def role(self, name: str) -> Role | None:
        return next((role for role in self.roles if role.name == name), None)


@dataclass(frozen=True)
class Entry:
    """A loaded barclamp: its model, where it came from, and its compiled templates."""

    barclamp: Barclamp
    directory: Path
    document: Document
    templates: dict[str, jinja2.Template]
    cookbooks: list[ShippedCookbook]


class Catalog:
    """Every barclamp, checked together: requires resolve, no cycles, templates render."""

    def __init__(self, entries: Mapping[str, Entry]):
        self.entries = dict(sorted(entries.items()))
        self.roles: dict[str, Barclamp] = {}
        for entry in self.entries.values():
            for role in entry.barclamp.roles:
                self.roles.setdefault(role.name, entry.barclamp)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __getitem__(self, name: str) -> Barclamp:
        return self.entries[name].barclamp

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def requires(self, name: str) -> list[str]:
        """The barclamps ``name`` requires directly, with ``@core`` expanded."""
        out: list[str] = []
        for item in self[name].requires:
            if item == CORE_GROUP:
                out += [n for n, e in self.entries.items()
                        if e.barclamp.category == "core" and not e.barclamp.optional and n != name]
            else:
                out.append(item)
        return list(dict.fromkeys(out))

    def closure(self, selected: Iterable[str]) -> set[str]:
        """``selected`` and everything they require, transitively."""
        seen: set[str] = set()
        stack = list(selected)
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.requires(name))
        return seen

    def apply_order(self, names: Iterable[str]) -> list[str]:
        """``names`` in apply order: requirements first, ties by run order, then name."""
        names = set(names)
        waiting = {n: {r for r in self.requires(n) if r in names} for n in names}
        ready = [(self[n].run_order, n) for n, deps in waiting.items() if not deps]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, name = heapq.heappop(ready)
            order.append(name)
            for other, deps in waiting.items():
                if name in deps:
                    deps.discard(name)
                    if not deps:
                        heapq.heappush(ready, (self[other].run_order, other))
        return order

    def template(self, barclamp: str, name: str) -> jinja2.Template | None:
        return self.entries[barclamp].templates.get(name)

    def cookbooks(self) -> dict[str, Provider]:
        """Every cookbook the catalog ships or declares, by name. Barclamps may declare the
        same upstream cookbook alike (both OpenStack services that use ``memcached``): its
        recipes are the union. A cookbook shipped twice, or declared differently, is a
        load error (the first one wins here)."""
        found: dict[str, Provider] = {}
        for name, entry in self.entries.items():
            for shipped in entry.cookbooks:
                found.setdefault(shipped.name, Provider(name, shipped.recipes, shipped))
            for upstream in entry.barclamp.upstream_cookbooks:
                known = found.get(upstream.name)
                if known is None:
                    found[upstream.name] = Provider(name, frozenset(upstream.recipes),
                                                    upstream=upstream)
                elif known.upstream is not None and known.upstream.same_source(upstream):
                    found[upstream.name] = replace(
                        known, recipes=known.recipes | set(upstream.recipes))
        return found

    def upstream(self, barclamps: Iterable[str]) -> dict[str, UpstreamCookbook]:
        """The upstream cookbooks ``barclamps`` declare, by name."""
        return {up.name: up for name in sorted(barclamps)
                for up in self[name].upstream_cookbooks}


def _default_directory() -> Path:
    return Path(str(files("wizard.barclamps")))


@functools.cache
def default_catalog() -> Catalog:
    """The catalog shipped with crowbar-wizard (loaded once per process)."""
    return load_catalog(_default_directory())


def load_catalog(directory: Path) -> Catalog:
    """Load every ``<name>/barclamp.yaml`` below ``directory``; raise :class:`CatalogError`."""
    problems: list[Problem] = []
    entries: dict[str, Entry] = {}
    environment = _jinja()
    for path in sorted(directory.glob("*/barclamp.yaml")):
        try:
            entry = _load_entry(path, environment)
        except CatalogError as exc:
            problems += exc.problems
            continue
        if entry.barclamp.name != path.parent.name:
            problems.append(entry.document.problem(
                ("name",), f"name {entry.barclamp.name!r} differs from its directory "
                f"{path.parent.name!r}"))
            continue
        entries[entry.barclamp.name] = entry
    if not problems:
        catalog = Catalog(entries)
        problems += _check_references(catalog)
        if not problems:
            problems += _check_cycles(catalog)
        if not problems:
            problems += _check_templates(catalog)
        if not problems:
            problems += _check_cookbooks(catalog)
    if problems:
        raise CatalogError(problems)
    return catalog


def _jinja() -> jinja2.Environment:
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=one_line,  # a value cannot add YAML lines of its own
    )
    environment.filters["address"] = _address
    environment.filters["fqdn"] = _fqdn
    return environment


@jinja2.pass_context
def _address(
    context: jinja2.runtime.Context, node: str, network: str = "admin",
    fallback: str | None = None,
) -> str:
    """``{{ name | address('public', 'admin') }}``: a node's address on a network (admin by
    default), or on ``fallback`` when the node has none on the first."""
    addresses = _node(context, node)["addresses"]
    for name in (network, fallback):
        if name in addresses:
            return str(addresses[name])
    raise jinja2.UndefinedError(f"node {node!r} has no address on network {network!r}")


@jinja2.pass_context
def _fqdn(context: jinja2.runtime.Context, node: str) -> str:
    """``{{ name | fqdn }}``: a node's fully qualified name."""
    return str(_node(context, node)["fqdn"])


def _node(context: jinja2.runtime.Context, node: str) -> dict[str, Any]:
    nodes: dict[str, dict[str, Any]] = context["nodes"]
    if node not in nodes:
        raise jinja2.UndefinedError(f"no node named {node!r}")
    return nodes[node]


def _load_entry(path: Path, environment: jinja2.Environment) -> Entry:
    document = read_document(path, CatalogError)
    try:
        barclamp = Barclamp.model_validate(document.data)
    except ValidationError as exc:
        raise CatalogError([document.validation_problem(e) for e in exc.errors()]) from None
    templates: dict[str, jinja2.Template] = {}
    problems: list[Problem] = []
    for name in TEMPLATES:
        file = path.parent / "templates" / name
        if not file.exists():
            continue
        source = file.read_text(encoding="utf-8")
        try:
            ast = environment.parse(source)
            templates[name] = environment.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(Problem(str(file), exc.lineno or 1, 1, "(template)",
                                    f"template syntax error: {exc.message}"))
            continue
        for variable in sorted(jinja2.meta.find_undeclared_variables(ast) - TEMPLATE_VARIABLES):
            line = next((i for i, text in enumerate(source.splitlines(), 1)
                         if re.search(rf"\b{re.escape(variable)}\b", text)), 1)
            problems.append(Problem(str(file), line, 1, "(template)",
                                    f"uses undefined variable {variable!r} (known: "
                                    f"{', '.join(sorted(TEMPLATE_VARIABLES))})"))
    try:
        cookbooks = shipped_cookbooks(barclamp.name, path.parent)
    except CatalogError as exc:
        problems += exc.problems
    if problems:
        raise CatalogError(problems)
    return Entry(barclamp, path.parent, document, templates, cookbooks)


def _check_references(catalog: Catalog) -> list[Problem]:
    problems = []
    for name, entry in catalog.entries.items():
        for index, required in enumerate(entry.barclamp.requires):
            if required != CORE_GROUP and required not in catalog:
                problems.append(entry.document.problem(
                    ("requires", index), f"requires unknown barclamp {required!r}"
                    + did_you_mean(required, catalog)))
        for r, role in enumerate(entry.barclamp.roles):
            owner = catalog.roles.get(role.name)
            if owner is not None and owner.name != name:
                problems.append(entry.document.problem(
                    ("roles", r, "name"), f"role {role.name!r} is also defined by {owner.name}"))
            for c, other in enumerate(role.conflicts):
                if other not in catalog.roles:
                    problems.append(entry.document.problem(
                        ("roles", r, "conflicts", c), f"conflicts with unknown role {other!r}"))
    return problems


def _check_cookbooks(catalog: Catalog) -> list[Problem]:
    """Every run-list recipe resolves to a shipped or declared cookbook that has it; every
    cookbook is shipped or declared once; every dependency of a shipped one is known."""
    problems: list[Problem] = []
    providers = catalog.cookbooks()  # the first of each name: any other is a duplicate
    for entry in catalog.entries.values():
        for shipped in entry.cookbooks:
            first = providers[shipped.name]
            if first.shipped is not shipped:
                problems.append(Problem(
                    str(shipped.directory / "metadata.rb"),
                    metadata_line(shipped.directory, r"^\s*name\b"), 1, "name",
                    f"cookbook {shipped.name} is also shipped or declared by {first.barclamp}"))
        for i, up in enumerate(entry.barclamp.upstream_cookbooks):
            first = providers[up.name]
            if first.upstream is None or not first.upstream.same_source(up):
                problems.append(entry.document.problem(
                    ("upstream_cookbooks", i, "name"), f"cookbook {up.name} is also shipped or "
                    f"declared by {first.barclamp} (declare it alike: version, git and ref)"))
            if not up.recipes and up.why is None:
                problems.append(entry.document.problem(
                    ("upstream_cookbooks", i), f"cookbook {up.name}: no run list uses it: say "
                    "why it is declared (why)"))
    for entry in catalog.entries.values():
        for r, role in enumerate(entry.barclamp.roles):
            for i, item in enumerate(role.run_list):
                problem = _unresolved(catalog, providers, item)
                if problem:
                    problems.append(entry.document.problem(("roles", r, "run_list", i), problem))
        for shipped in entry.cookbooks:
            for other, constraint in shipped.metadata.dependencies.items():
                problem = _dependency_problem(providers, other, constraint)
                if problem:
                    problems.append(Problem(str(shipped.directory / "metadata.rb"),
                                            metadata_line(shipped.directory,
                                                          rf"\bdepends\b.*\b{other}\b"), 1,
                                            "depends", problem))
    return problems


def _dependency_problem(providers: Mapping[str, Provider], name: str,
                        constraint: str) -> str | None:
    """Why a shipped cookbook's ``depends name, constraint`` disagrees with what the catalog
    ships or declares of ``name``, or None when it agrees."""
    provider = providers.get(name)
    if provider is None:
        return (f"depends on cookbook {name!r}, which no barclamp ships or declares"
                + did_you_mean(name, providers))
    if provider.shipped is not None:
        version, where = provider.shipped.metadata.version, "ships"
    elif provider.upstream is not None and provider.upstream.version.startswith("= "):
        version, where = provider.upstream.version[2:], "pins"
    else:
        return None  # a range against a range: berks resolves both
    if satisfies(version, constraint):
        return None
    return (f"depends on {name} {constraint}, but barclamp {provider.barclamp} {where} "
            f"{name} {version}")


def _unresolved(catalog: Catalog, providers: Mapping[str, Provider], item: str) -> str | None:
    """Why run-list ``item`` points at nothing, or None when it resolves."""
    recipe = run_list_recipe(item)
    if recipe is None:
        role = item[len("role["):-1]
        return None if role in catalog.roles else f"{item} names no role of the catalog"
    cookbook, name = recipe
    provider = providers.get(cookbook)
    if provider is None:
        return (f"{item}: no barclamp ships or declares cookbook {cookbook!r}"
                + did_you_mean(cookbook, providers))
    if name not in provider.recipes:
        where = "has" if provider.shipped else "is declared with"
        return (f"{item}: {provider.describe(cookbook)} {where} no recipe {name!r} (it has "
                f"{', '.join(sorted(provider.recipes)) or 'none'})")
    return None


def _check_cycles(catalog: Catalog) -> list[Problem]:
    ordered = set(catalog.apply_order(catalog))
    stuck = sorted(set(catalog) - ordered)
    if not stuck:
        return []
    cycle = _find_cycle(catalog, stuck)
    entry = catalog.entries[cycle[0]]
    index = entry.barclamp.requires.index(cycle[1]) if cycle[1] in entry.barclamp.requires else 0
    return [entry.document.problem(("requires", index),
                                   f"dependency cycle: {' -> '.join(cycle)}")]


def _find_cycle(catalog: Catalog, stuck: list[str]) -> list[str]:
    """A cycle among barclamps that can never be ordered, as names, first repeated last."""
    path: list[str] = []
    name = stuck[0]
    while name not in path:
        path.append(name)
        name = next(r for r in catalog.requires(name) if r in stuck)
    cycle = path[path.index(name):]
    start = cycle.index(min(cycle))
    cycle = cycle[start:] + cycle[:start]
    return [*cycle, cycle[0]]


def _check_templates(catalog: Catalog) -> list[Problem]:
    """Render every template against a full and a minimal sample deployment."""
    problems = []
    for name, entry in catalog.entries.items():
        for template_name, template in entry.templates.items():
            file = str(entry.directory / "templates" / template_name)
            for minimal in (False, True):
                problem = _try_render(template, sample_context(catalog, name, minimal=minimal))
                if problem is not None:
                    line, message = problem
                    if minimal:
                        message += (" (in a minimal deployment: admin and bmc networks only, "
                                    "no node on roles that may have none)")
                    problems.append(Problem(file, line, 1, "(template)", message))
                    break
    return problems


def _try_render(template: jinja2.Template, context: dict[str, Any]) -> tuple[int, str] | None:
    """(line, message) when ``template`` fails to render to a mapping, else None."""
    try:
        render_yaml(template, context)
    except jinja2.UndefinedError as exc:
        return _template_line(exc), f"undefined value: {exc.message}"
    except TemplateOutputError as exc:
        return 1, str(exc)
    except Exception as exc:  # a template may fail in any way: report it, do not crash
        return _template_line(exc), f"{type(exc).__name__}: {exc}"
    return None


def _template_line(exc: BaseException) -> int:
    tb = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class TemplateOutputError(ValueError):
    """A template that rendered to something other than a YAML mapping."""


def render_yaml(template: jinja2.Template, context: Mapping[str, Any]) -> dict[str, Any]:
    """Render ``template`` and parse its output, which must be a YAML mapping (or empty)."""
    text = template.render(**context)
    try:
        value = yaml.load(text, Loader=CoreSchemaLoader)
    except yaml.YAMLError as exc:
        raise TemplateOutputError(f"rendered text is not YAML: {exc}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TemplateOutputError("rendered text is not a YAML mapping")
    return value
