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

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from wizard.answers import Answers, load, save, to_data
from wizard.problems import InputError
from wizard.yamlfile import dump

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


class RestoreDraft(ModalScreen[bool]):
    """Offer a draft back, showing what differs; dismissed with True to restore it."""

    def __init__(self, path: Path | None, changes: list[str]):
        super().__init__()
        self.path, self.changes = path, changes

    def compose(self) -> ComposeResult:
        draft = draft_path(self.path)
        when = datetime.fromtimestamp(draft.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        with Vertical(id="modal"):
            yield Label(f"Unsaved changes from {when} were kept in {draft}.")
            yield Static("\n".join(self.changes) or "(no differences)", id="changes")
            with Horizontal(classes="row"):
                yield Button("Restore them", id="restore", variant="primary")
                yield Button("Discard", id="discard")

    @on(Button.Pressed, "#restore")
    def restore(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#discard")
    def discard(self) -> None:
        self.dismiss(False)


class ConfirmQuit(ModalScreen[bool]):
    """Quitting with unsaved changes: they stay in the draft either way."""

    def __init__(self, path: Path | None):
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="modal"):
            yield Label("The answers have unsaved changes. They are kept in "
                        f"{draft_path(self.path)} and offered back next time.")
            with Horizontal(classes="row"):
                yield Button("Quit", id="quit", variant="warning")
                yield Button("Stay", id="stay", variant="primary")

    @on(Button.Pressed, "#quit")
    def quit(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#stay")
    def stay(self) -> None:
        self.dismiss(False)
