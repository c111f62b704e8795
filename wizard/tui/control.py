"""Controller and observers in the wizard: the banner, read-only steps, taking control.

One session controls (:mod:`wizard.engine.sessions`); the others observe: a banner names the
controller, the steps' fields and buttons are disabled, keys that would edit say why, and
the answers on screen follow what the controller saves (or keeps in its draft), inline
secrets masked (a read-only browser tab is no place for the BMC password), the focus and
cursors where the observer left them (:class:`AnswersChanged`). F2 takes
control over, after a confirmation; when the controller's process ends, the next observer
gets control by itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Input, Select, TextArea

from wizard.answers import Answers, to_data
from wizard.engine.sessions import describe
from wizard.tui.confirm import Confirm

EDITING = (Input, Button, Checkbox, Select, TextArea)
"""Widgets an observer may look at but not use."""
HELD = "observer-held"
"""Class of the widgets disabled because this session observes."""
MASK = "********"
"""What an observer sees of an inline secret."""


class AnswersChanged(Message):
    """Posted to an observer's screen when it follows the controller to other answers:
    the step shows them where it stands (focus, cursors and scroll kept; see
    :meth:`~wizard.tui.steps.StepScreen.show_answers`)."""


def banner_text(controller: dict[str, Any] | None) -> str:
    if controller is None:
        return "Observing: nobody has control; it passes to this session in a moment."
    return f"Observing (read-only): {describe(controller)} has control. F2 takes it over."


def hold(screen: Screen[Any], observing: bool) -> None:
    """Disable (or give back) the editing widgets of ``screen``."""
    if observing:
        for widget in screen.query("#body *").results():
            if isinstance(widget, EDITING) and not widget.disabled:
                widget.disabled = True
                widget.add_class(HELD)
    else:
        for widget in screen.query(f".{HELD}").results():
            widget.disabled = False
            widget.remove_class(HELD)


def observed_data(answers: Answers) -> dict[str, Any]:
    """The answers as an observer may see them: as they will be saved, but each inline
    secret masked (a reference, ``env:``/``file:``, is no secret and stays)."""
    data = to_data(answers)
    for loc, secret in answers.secrets():
        if secret.is_inline:
            *parents, key = loc
            section: Any = data  # mappings and lists down to the secret
            for part in parents:
                section = section[part]
            section[key] = MASK
    return data


def answers_stamp(path: Path | None, draft: Path) -> tuple[float, float]:
    """When the answers file and its draft last changed (0 for a missing one)."""
    stamps = []
    for each in (path, draft):
        try:
            stamps.append(each.stat().st_mtime if each is not None else 0.0)
        except OSError:
            stamps.append(0.0)
    return stamps[0], stamps[1]


class TakeControl(Confirm):
    """F2 for an observer: take control from the controller, after saying what happens."""

    YES = ("take", "Take control", "warning")
    NO = ("keep", "Keep observing", "primary")

    def __init__(self, controller: dict[str, Any] | None):
        who = describe(controller) if controller else "nobody"
        super().__init__(f"Take control from {who}? That session becomes an observer; its "
                         "unsaved edits stay in the draft.")
