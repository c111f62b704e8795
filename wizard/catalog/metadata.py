"""A cookbook's metadata, read from ``metadata.rb`` without Ruby, or from ``metadata.json``.

Uploading a cookbook needs its name, version and dependencies; running Ruby for them
would make Ruby (and whatever a metadata.rb does) part of every push. The plain forms every
cookbook uses are read instead: ``name 'x'``, ``version '1.2.3'``, ``depends 'y'``,
``depends 'y', '>= 1.0'`` (quotes either way, parentheses optional) and the descriptive
fields. A line setting name, version or a dependency in any other form is an error naming
its file and line, never a guess; other fields in other forms (``long_description
IO.read(...)``) are left out, as nothing a Chef server or chef-client resolves depends on
them. ``metadata.json`` (what ``knife`` and ``berks vendor`` write) is plain JSON with the
same fields, and is preferred when both exist, as Chef does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from wizard.base.problems import InputError, Problem, format_loc

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_CONSTRAINT = re.compile(r"\s*(~>|>=|<=|=|>|<)?\s*(\d+\.\d+(?:\.\d+)?)\s*")
_STRING = re.compile(r"""'((?:[^'\\]|\\.)*)'|"((?:[^"\\#]|\\.|#(?!\{))*)\"""")
_HEREDOC = re.compile(r"<<[-~]?(['\"]?)([A-Z_][A-Za-z0-9_]*)\1")
_DOUBLE_ESCAPES = {"n": "\n", "t": "\t", "s": " ", "0": "\0", "e": "\x1b"}


class CookbookError(InputError):
    """A cookbook that cannot be uploaded as it is, with where and why."""


def cookbook_problem(file: Path | str, message: str, line: int = 1,
                     field: str = "(cookbook)") -> CookbookError:
    return CookbookError([Problem(str(file), line, 1, field, message)])


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a cookbook name (letters, digits, '_', '-', '.')")
    return value


def normal_version(value: str) -> str:
    """``1.2`` -> ``1.2.0``: a version as Chef spells it (``Chef::Version``)."""
    match = _VERSION.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a version such as 1.2.3")
    return ".".join(str(int(part or 0)) for part in match.groups())


def _constraint(value: str) -> str:
    """``>= 1.0`` as Chef keeps it (operator, a space, the version as written); a bare
    version means ``=``."""
    match = _CONSTRAINT.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a version constraint such as '>= 1.0' or '~> 2.1'")
    return f"{match[1] or '='} {match[2]}"


CookbookName = Annotated[str, AfterValidator(_name)]
Version = Annotated[str, AfterValidator(normal_version)]
Constraint = Annotated[str, AfterValidator(_constraint)]


class Metadata(BaseModel):
    """What a cookbook says of itself, as the Chef server keeps it.

    Keys this tool does not use are ignored rather than refused: a ``metadata.json``
    written by knife or berks carries many (``gems``, ``attributes``, ``privacy``...).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: CookbookName
    version: Version
    dependencies: dict[CookbookName, Constraint] = Field(default_factory=dict)
    description: str = ""
    long_description: str = ""
    maintainer: str = ""
    maintainer_email: str = ""
    license: str = ""
    source_url: str = ""
    issues_url: str = ""
    platforms: dict[str, Constraint] = Field(default_factory=dict)
    chef_versions: list[list[str]] = Field(default_factory=list)
    """Gem requirements (``>= 15``), which the server keeps and does not check."""


def read_metadata(directory: Path) -> Metadata:
    """The metadata of the cookbook in ``directory``."""
    for name, parse in (("metadata.json", parse_json), ("metadata.rb", parse_rb)):
        path = directory / name
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise cookbook_problem(path, f"cannot read: {exc}") from None
            return parse(text, path)
    raise cookbook_problem(directory, "no metadata.rb or metadata.json: not a cookbook")


def parse_json(text: str, file: Path) -> Metadata:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise cookbook_problem(file, f"not JSON: {exc.msg}", exc.lineno) from None
    if not isinstance(data, dict):
        raise cookbook_problem(file, "not a JSON object")
    return _validated(data, file, lambda loc: _json_line(text, loc))


def _json_line(text: str, loc: tuple[str | int, ...]) -> int:
    """Where the key a problem is about first appears (JSON errors carry no lines)."""
    key = next((part for part in reversed(loc) if isinstance(part, str)), None)
    at = text.find(json.dumps(key)) if key is not None else -1
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def parse_rb(text: str, file: Path) -> Metadata:
    """Read the plain forms of ``metadata.rb``; see the module's docstring."""
    fields: dict[str, Any] = {}
    lines: dict[tuple[str | int, ...], int] = {}
    heredoc: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        if heredoc is not None:
            heredoc = None if raw.strip() == heredoc else heredoc
            continue
        code = _code(raw)
        if (opened := _HEREDOC.search(code)) is not None:
            heredoc = opened[2]
        word, args = _call(code)
        if word in ("name", "version", "depends"):
            if not args or (word != "depends" and len(args) != 1):
                raise cookbook_problem(file, f"cannot read this {word} line without running "
                                       f"Ruby; write it as {_PLAIN[word]}", number, word)
            if word == "depends":
                if len(args) > 2:
                    raise cookbook_problem(file, "depends takes one version constraint",
                                           number, word)
                fields.setdefault("dependencies", {})[args[0]] = \
                    args[1] if len(args) == 2 else ">= 0.0.0"
                lines[("dependencies", args[0])] = number
            else:
                fields[word] = args[0]
            lines[(word,)] = number
        elif re.search(r"\bdepends\b", _STRING.sub("''", code)):
            raise cookbook_problem(file, "a dependency in a form this reader cannot follow; "
                                   f"write it as {_PLAIN['depends']}", number, "depends")
        elif args and word in _TEXT_FIELDS and len(args) == 1:
            fields[word] = args[0]
            lines[(word,)] = number
        elif args and word == "supports" and len(args) <= 2:
            fields.setdefault("platforms", {})[args[0]] = \
                args[1] if len(args) == 2 else ">= 0.0.0"
            lines[("platforms", args[0])] = number
        elif args and word == "chef_version":
            fields.setdefault("chef_versions", []).append(args)
            lines[("chef_versions",)] = number
    for word in ("name", "version"):
        if word not in fields:
            raise cookbook_problem(file, f"no {word} line; add {_PLAIN[word]}", field=word)
    return _validated(fields, file, lambda loc: lines.get(loc[:2], lines.get(loc[:1], 1)))


_PLAIN = {"name": "name 'my_cookbook'", "version": "version '1.0.0'",
          "depends": "depends 'other' or depends 'other', '>= 1.0'"}
_TEXT_FIELDS = ("description", "long_description", "maintainer", "maintainer_email",
                "license", "source_url", "issues_url")


def _code(line: str) -> str:
    """``line`` without its comment (a ``#`` outside the strings)."""
    at = 0
    while (hash_at := line.find("#", at)) >= 0:
        string = _STRING.search(line, at)
        if string is None or string.start() > hash_at:
            return line[:hash_at]
        at = string.end()
    return line


def _call(code: str) -> tuple[str, list[str] | None]:
    """``word 'a', "b"`` (or ``word('a', "b")``) -> ``('word', ['a', 'b'])``; the arguments
    are None when they are anything but plain string literals."""
    match = re.fullmatch(r"\s*([a-z_]+)\s*(.*?)\s*", code)
    if match is None:
        return "", None
    word, rest = match[1], match[2]
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1].strip()
    args: list[str] = []
    while rest:
        string = _STRING.match(rest)
        if string is None:
            return word, None
        args.append(_unquote(string))
        rest = rest[string.end():].lstrip()
        if rest.startswith(","):
            rest = rest[1:].lstrip()
            if not rest:
                return word, None
        elif rest:
            return word, None
    return word, args


def _unquote(string: re.Match[str]) -> str:
    if string[1] is not None:  # single quotes: only \' and \\ are escapes
        return re.sub(r"\\([\\'])", r"\1", string[1])
    return re.sub(r"\\(.)", lambda m: _DOUBLE_ESCAPES.get(m[1], m[1]), string[2])


def _validated(data: dict[str, Any], file: Path,
               line_of: Callable[[tuple[str | int, ...]], int]) -> Metadata:
    try:
        return Metadata.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise cookbook_problem(file, message, line_of(loc), format_loc(loc)) from None
