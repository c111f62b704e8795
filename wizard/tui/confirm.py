"""A question with two answers, in a modal: the wizard's confirmations."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static
from textual.widgets.button import ButtonVariant


class Confirm(ModalScreen[bool]):
    """A question with two answers, dismissed with True for the first (``YES``) and False
    for the second (``NO``); each answer is (button id, label, variant)."""

    YES: tuple[str, str, ButtonVariant] = ("yes", "Yes", "primary")
    NO: tuple[str, str, ButtonVariant] = ("no", "No", "default")

    def __init__(self, question: str, detail: str | None = None):
        super().__init__()
        self.question, self.detail = question, detail

    def compose(self) -> ComposeResult:
        with Vertical(id="modal"):
            yield Static(self.question, markup=False)  # names paths, users: literal
            if self.detail is not None:
                yield Static(self.detail, id="changes", markup=False)  # YAML: [a, b]
            with Horizontal(classes="row"):
                for ident, label, variant in (self.YES, self.NO):
                    yield Button(label, id=ident, variant=variant)

    @on(Button.Pressed)
    def answered(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == self.YES[0])
