"""Problems found in input files (answers, barclamps), and the errors that carry them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Loc = tuple[str | int, ...]
"""Where a value sits in the answers document: keys and list indexes from the top."""


def format_loc(loc: Loc) -> str:
    """``('nodes', 3, 'macs', 0)`` -> ``nodes[3].macs[0]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'subnet'?)`` for the closest of ``options``, or "" if none is close."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Finding:
    """A rule broken at ``loc`` in the answers document (placed in a file by the loader)."""

    loc: Loc
    message: str


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong, at a place in a file (line and column are 1-based)."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"


class InputError(Exception):
    """Input that cannot be used, with every problem found in it."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class AnswersError(InputError):
    """An answers file that cannot be used."""


class CatalogError(InputError):
    """A barclamp (its barclamp.yaml or a template) that cannot be used."""
