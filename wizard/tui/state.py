"""The wizard as its steps see it: the answers being edited and what a step may ask of the app.

Every step, and the widgets in one, reach the app through :func:`wizard_of` (a step: its
``wizard`` property), typed as :class:`Wizard`: the answers, their file and whether it is
saved, read-only; changes go through :meth:`Wizard.use`. ``WizardApp`` is the one
implementation (``wizard.tui.app`` checks it against this protocol); this module imports no
screen and no app, so every step can import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, cast

from textual.dom import DOMNode

from wizard.answers import Answers


class Wizard(Protocol):
    """What the steps use of the wizard's app."""

    @property
    def answers(self) -> Answers | None:
        """The answers being edited (None until a plan, a file or the lab gives some)."""

    @property
    def path(self) -> Path | None:
        """The file they came from or go to (None: not saved anywhere yet)."""

    @property
    def saved(self) -> bool:
        """Whether ``path`` holds them as they are."""

    @property
    def observing(self) -> bool:
        """Whether another session has control (this one only looks)."""

    def may_edit(self) -> bool:
        """Whether this session may change anything; if not, it says why."""

    def problems(self) -> list[str]:
        """Why the answers are not valid yet (empty when they are)."""

    def use(self, answers: Answers, path: Path | None, *, saved: bool) -> None:
        """Take ``answers`` as the ones being edited (an observer's: not)."""

    def go(self, step: str) -> None:
        """Show ``step``."""

    def step_to(self, step: str) -> bool:
        """Go to ``step`` as Next and Back do: only Welcome until there are answers.
        Whether it went."""

    def show_control(self) -> None:
        """The banner, the editing widgets and the step shown, as control says."""

    def refresh_header_soon(self) -> None:
        """Redraw the header once after this round of changes."""


def wizard_of(node: DOMNode) -> Wizard:
    """The wizard that ``node`` (a step, or a widget on one) belongs to."""
    return cast(Wizard, node.app)
