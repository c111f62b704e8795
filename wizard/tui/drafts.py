"""Nothing typed is lost: unsaved answers are kept in a draft beside the answers file.

The draft of ``answers/site.yaml`` is ``answers/.site.yaml.draft``; answers never saved
have ``answers/.unsaved.yaml.draft``. It is written (atomically, secrets as the answers
file holds them: references stay references) a moment after each edit, removed when the
answers are saved, and offered back when the wizard next opens on the same file.
"""

from __future__ import annotations

import difflib
from datetime import datetime
from pathlib import Path

from wizard.answers import Answers, load, save, to_data
from wizard.base.problems import InputError
from wizard.base.yamlfile import dump
from wizard.tui.confirm import Confirm

UNSAVED = Path("answers") / ".unsaved.yaml"


def draft_path(path: Path | None) -> Path:
    target = path or UNSAVED
    return target.with_name(f".{target.name.lstrip('.')}.draft")


def write_draft(answers: Answers, path: Path | None) -> Path:
    draft = draft_path(path)
    draft.parent.mkdir(parents=True, exist_ok=True)
    save(answers, draft)
    return draft


def read_draft(path: Path | None) -> Answers | None:
    """The draft for ``path`` if there is one that still reads as answers."""
    draft = draft_path(path)
    if not draft.exists():
        return None
    try:
        return load(draft, complete=False)
    except InputError:
        return None


def drop_draft(path: Path | None) -> None:
    draft_path(path).unlink(missing_ok=True)


def difference(old: Answers | None, new: Answers, limit: int = 12) -> list[str]:
    """The changed lines between two answers, as a unified diff (at most ``limit``)."""
    before = dump(to_data(old)).splitlines() if old is not None else []
    after = dump(to_data(new)).splitlines()
    lines = [line for line in difflib.unified_diff(before, after, lineterm="", n=0)
             if not line.startswith(("---", "+++", "@@"))]
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit
                            else [])


class RestoreDraft(Confirm):
    """Offer a draft back, showing what differs; dismissed with True to restore it."""

    YES = ("restore", "Restore them", "primary")
    NO = ("discard", "Discard", "default")

    def __init__(self, path: Path | None, changes: list[str]):
        draft = draft_path(path)
        when = datetime.fromtimestamp(draft.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        super().__init__(f"Unsaved changes from {when} were kept in {draft}.",
                         "\n".join(changes) or "(no differences)")
        self.path, self.changes = path, changes


class ConfirmQuit(Confirm):
    """Quitting with unsaved changes: they stay in the draft either way."""

    YES = ("quit", "Quit", "warning")
    NO = ("stay", "Stay", "primary")

    def __init__(self, path: Path | None):
        super().__init__("The answers have unsaved changes. They are kept in "
                         f"{draft_path(path)} and offered back next time.")
