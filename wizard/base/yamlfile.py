"""YAML documents: guarded fast reading, positions for errors, and comment-keeping saves.

Reading uses libyaml (PyYAML's C loader) with YAML 1.2 core-schema scalars, so a MAC such
as ``52:54:00:12:34:56`` or a word such as ``no`` stays a string, and duplicate keys are
errors. Positions are only needed when something is wrong: :meth:`Document.locate` composes
the node graph on first use. Saving updates ruamel's round-trip tree of the text that was
read, so key order, comments and quoting of untouched values survive a load/save cycle.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from wizard.base.problems import AnswersError, InputError, Loc, Problem, format_loc

MAX_BYTES = 16 * 1024 * 1024
MAX_ELEMENTS = 1_000_000
MAX_DEPTH = 64

if TYPE_CHECKING:
    _Base = yaml.SafeLoader  # libyaml's loader has the same interface
else:
    _Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CoreSchemaLoader(_Base):
    """Safe loading with YAML 1.2 core-schema scalars; duplicate keys are refused."""

    # a class attribute in PyYAML (add_implicit_resolver copies it per class); types-PyYAML
    # declares it an instance variable
    yaml_implicit_resolvers: ClassVar[  # type: ignore[misc]
        dict[str, list[tuple[str, re.Pattern[str]]]]] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                first = seen.setdefault(key_node.value, key_node)
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None, None,
                        f"duplicate key {key_node.value!r} (first on line "
                        f"{first.start_mark.line + 1})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


for _tag, _pattern, _first in [
    ("null", r"~|null|Null|NULL|", "~nN"),
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    ("float", r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)"
     r"|\.nan|\.NaN|\.NAN", "-+.0123456789"),
]:
    CoreSchemaLoader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(rf"^(?:{_pattern})$"), [*_first, ""]
        if _tag == "null" else list(_first),
    )


def _construct_int(loader: CoreSchemaLoader, node: yaml.ScalarNode) -> int:
    text = node.value.replace("_", "")
    prefixed = text.lstrip("+-")[:2] in ("0o", "0x")
    return int(text, 0 if prefixed else 10)


CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _fail(file: str, message: str, line: int = 1, column: int = 1, *,
          error: type[InputError] = AnswersError) -> None:
    raise error([Problem(file, line, column, "(file)", message)])


def _kind(value: object) -> str:
    if value is None:
        return "empty"
    names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return names.get(type(value), f"a {type(value).__name__}")


class Document:
    """An answers document as read: plain data, and the text it came from."""

    def __init__(self, data: dict[str, Any], text: str, file: str,
                 tree: CommentedMap | None = None):
        self.data = data
        self.text = text
        self.file = file
        self._tree = tree

    @cached_property
    def _root(self) -> yaml.Node | None:
        return yaml.compose(self.text, Loader=CoreSchemaLoader)

    def locate(self, loc: Loc, *, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the scalar at ``loc``, or of the key naming it.

        A mapping or list is named by the key above it. When ``loc`` runs past what the
        document holds (a missing key), the answer is the key of the deepest value that
        exists: the mapping where the operator has to add something.
        """
        node = self._root
        key_mark, value_mark = None, node.start_mark if node is not None else None
        for part in loc:
            child = _child(node, part)
            if child is None:
                value_mark = key_mark
                break
            key_mark, node = child
            value_mark = node.start_mark
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            value_mark = key_mark
        mark = key_mark if at_key else value_mark
        return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)

    def problem(self, loc: Loc, message: str, *, at_key: bool = False) -> Problem:
        """A :class:`Problem` at ``loc`` in this document."""
        line, column = self.locate(loc, at_key=at_key)
        return Problem(self.file, line, column, format_loc(loc), message)

    def validation_problem(self, error: Any,
                           suggest: Callable[[Loc], str] | None = None) -> Problem:
        """A pydantic validation error (one of ``errors()``) as a :class:`Problem` here.

        ``suggest`` adds to an unknown key's message (e.g. `` (did you mean 'subnet'?)``).
        """
        loc: Loc = tuple(error["loc"])
        kind, message = error["type"], error["msg"]
        at_key = False
        if kind == "extra_forbidden":
            at_key = True
            message = f"unknown key {loc[-1]!r}" + (suggest(loc) if suggest else "")
        elif kind == "missing":
            message = f"required key {loc[-1]!r} is missing"
        elif kind == "model_type":
            message = "expected a mapping of keys"
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
        elif kind == "control_character":  # raised for a field, about an item inside it
            loc += tuple(error["ctx"]["at"])
        if "[key]" in loc:
            loc = tuple(p for p in loc if p != "[key]")
            at_key, message = True, f"key: {message}"
        return self.problem(loc, message, at_key=at_key)

    def round_trip_tree(self) -> CommentedMap:
        """ruamel's round-trip tree of the text (keeps comments, order and quoting).

        Parsed on first use, then the same tree, which :func:`merge` updates in place.
        """
        if self._tree is None:
            loaded: CommentedMap = _ruamel().load(self.text)  # a document is a mapping
            self._tree = loaded
        return self._tree


def _child(node: yaml.Node | None, part: str | int) -> tuple[Any, yaml.Node] | None:
    """(mark of the key or item, value node) for ``part`` under ``node``, if present."""
    if isinstance(node, yaml.MappingNode):
        for key, value in reversed(node.value):
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key.start_mark, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item = node.value[part]
        return item.start_mark, item
    return None


def read_document(path: Path, error: type[InputError] = AnswersError) -> Document:
    """Read and parse ``path``, or raise ``error`` (an :class:`InputError`) saying why."""
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            _fail(file, f"file is {size / 2**20:.1f} MiB; answers files are limited to "
                  f"{MAX_BYTES // 2**20} MiB", error=error)
        data = path.read_bytes()
    except OSError as exc:
        _fail(file, f"cannot read file: {exc.strerror}", error=error)
    return parse_document(data, file, error)


def parse_document(data: bytes, file: str, error: type[InputError] = AnswersError) -> Document:
    """Parse YAML bytes (the contents of ``file``) into a :class:`Document` holding a mapping."""

    def fail(message: str, line: int = 1, column: int = 1) -> None:
        _fail(file, message, line, column, error=error)

    if len(data) > MAX_BYTES:
        fail(f"document is larger than {MAX_BYTES // 2**20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); "
             "is this a binary file?")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        fail("contains a NUL byte; is this a binary file?", line)
    if not text.strip():
        fail("file is empty")
    try:
        value = yaml.load(text, Loader=CoreSchemaLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        # Only the problem itself: a snippet of the line could show an inline secret.
        fail(f"YAML syntax error: {exc.problem or exc.context}", line, column)
    except yaml.YAMLError as exc:
        fail(f"YAML error: {type(exc).__name__}")
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        fail(f"YAML error: {type(exc).__name__}")
    if not isinstance(value, dict):
        fail(f"the document is {_kind(value)}; expected a mapping of keys")
    _check_size(value, file, error)
    return Document(value, text, file)


def _check_size(tree: Any, file: str, error: type[InputError]) -> None:
    """Refuse documents that expand beyond reason (anchors and aliases) or nest too deep."""
    count = 0
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_ELEMENTS:
            _fail(file, f"document expands to more than {MAX_ELEMENTS:,} values "
                  "(too many anchors/aliases?)", error=error)
        if depth > MAX_DEPTH:
            _fail(file, f"values are nested more than {MAX_DEPTH} levels deep", error=error)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _ruamel() -> YAML:
    rt = YAML(typ="rt")
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 100
    return rt


def merge(tree: Any, data: Any) -> Any:
    """Update ``tree`` in place to hold ``data``; return the value to store.

    Keys keep their order and comments; new keys go at the end; an unchanged scalar keeps
    its original object (and with it its quoting style).
    """
    if isinstance(data, dict):
        target = tree if isinstance(tree, CommentedMap) else CommentedMap()
        for key in [k for k in target if k not in data]:
            del target[key]
        for key, value in data.items():
            target[key] = merge(target.get(key), value)
        return target
    if isinstance(data, list):
        items = tree if isinstance(tree, CommentedSeq) else CommentedSeq()
        del items[len(data):]
        for index, value in enumerate(data):
            if index < len(items):
                items[index] = merge(items[index], value)
            else:
                items.append(merge(None, value))
        return items
    if tree is not None and not isinstance(tree, (dict, list)) and tree == data and (
        type(data) is not bool or isinstance(tree, bool)
    ):
        return tree
    return data


def dump(tree: Any) -> str:
    """The YAML text of a tree."""
    buffer = io.StringIO()
    _ruamel().dump(tree, buffer)
    return buffer.getvalue()


def write_atomic(path: Path, text: str, *, mode: int, sync: bool = True) -> None:
    """Write ``text`` to ``path`` through a temp file and rename: all or nothing.

    ``sync`` flushes the data to disk first (survives a power loss, not only a crash).
    """
    path = Path(path)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write there: {exc.strerror}", str(path)) from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
