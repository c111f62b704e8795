"""YAML documents with positions: guarded reading, locating a path, and atomic rewriting.

Reading keeps ruamel's round-trip tree, which remembers where every key and item sits, so
errors can name a line and column, and saving can update the same tree in place: key order,
comments and quoting of untouched values survive a load/save cycle.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from wizard.problems import AnswersError, Loc, Problem, format_loc

MAX_BYTES = 16 * 1024 * 1024
MAX_ELEMENTS = 1_000_000
MAX_DEPTH = 64


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


def _fail(file: str, message: str, line: int = 1, column: int = 1, path: str = "(file)"):
    raise AnswersError([Problem(file, line, column, path, message)])


def read_document(path: Path) -> CommentedMap:
    """Parse ``path`` into a round-trip mapping, or raise :class:`AnswersError`."""
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            _fail(file, f"file is {size / 2**20:.1f} MiB; answers files are limited to "
                  f"{MAX_BYTES // 2**20} MiB")
        data = path.read_bytes()
    except OSError as exc:
        _fail(file, f"cannot read file: {exc.strerror}")
    return parse_document(data, file)


def parse_document(data: bytes, file: str) -> CommentedMap:
    """Parse YAML bytes (the text of ``file``) into a round-trip mapping."""
    if len(data) > MAX_BYTES:
        _fail(file, f"document is larger than {MAX_BYTES // 2**20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(file, f"not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); "
              "is this a binary file?")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        _fail(file, "contains a NUL byte; is this a binary file?", line)
    if not text.strip():
        _fail(file, "file is empty: an answers file starts with 'schema_version: 1'")
    try:
        tree = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        # Only the problem itself: ruamel's snippet of the line could show an inline secret.
        problem = exc.problem or exc.context or "invalid YAML"
        _fail(file, f"YAML syntax error: {problem}", line, column)
    except RecursionError:
        _fail(file, "YAML nesting is too deep")
    except (YAMLError, ValueError, TypeError, AttributeError) as exc:
        _fail(file, f"YAML error: {type(exc).__name__}")
    if not isinstance(tree, CommentedMap):
        kind = "empty" if tree is None else f"a {type(tree).__name__}"
        _fail(file, f"the document is {kind}; an answers file is a mapping of keys "
              "(schema_version, site, networks, ...)")
    _check_size(tree, file)
    return tree


def _check_size(tree: Any, file: str) -> None:
    """Refuse documents that would expand beyond reason (anchors) or nest too deep."""
    count = 0
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_ELEMENTS:
            _fail(file, f"document expands to more than {MAX_ELEMENTS:,} values "
                  "(too many anchors/aliases?)")
        if depth > MAX_DEPTH:
            _fail(file, f"values are nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def locate(tree: Any, loc: Loc, *, at_key: bool = False) -> tuple[int, int]:
    """1-based (line, column) of the scalar at ``loc``, or of the key naming it.

    When ``loc`` runs past what the tree holds (a missing key), the answer is the key of the
    deepest value that exists: the mapping where the operator has to add something.
    """
    value_at, key_at = (0, 0), (0, 0)
    node = tree
    for part in loc:
        if isinstance(node, CommentedMap) and _has_key(node, part):
            key = _key_of(node, part)
            key_at, value_at = node.lc.key(key), node.lc.value(key)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            key_at = value_at = node.lc.item(part)
            node = node[part]
        else:
            value_at = key_at
            break
    if isinstance(node, (CommentedMap, CommentedSeq)):
        value_at = key_at  # a block of keys or items is named by the key above it
    line, column = key_at if at_key else value_at
    return line + 1, column + 1


def _has_key(node: CommentedMap, part: object) -> bool:
    try:
        return _key_of(node, part) is not None
    except TypeError:
        return False


def _key_of(node: CommentedMap, part: object) -> object:
    if part in node:
        return part
    return next((key for key in node if str(key) == str(part)), None)


def problem_at(tree: Any, file: str, loc: Loc, message: str, *, at_key: bool = False) -> Problem:
    line, column = locate(tree, loc, at_key=at_key)
    return Problem(file, line, column, format_loc(loc), message)


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
        target = tree if isinstance(tree, CommentedSeq) else CommentedSeq()
        del target[len(data):]
        for index, value in enumerate(data):
            if index < len(target):
                target[index] = merge(target[index], value)
            else:
                target.append(merge(None, value))
        return target
    if tree is not None and not isinstance(tree, (dict, list)) and tree == data and (
        type(data) is not bool or isinstance(tree, bool)
    ):
        return tree
    return data


def dump(tree: Any) -> str:
    """The YAML text of a tree."""
    buffer = io.StringIO()
    _yaml().dump(tree, buffer)
    return buffer.getvalue()


def write_atomic(path: Path, text: str, *, mode: int) -> None:
    """Write ``text`` to ``path`` through a temp file and rename: all or nothing."""
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
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
