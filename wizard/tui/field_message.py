"""Why a field's typed value is not taken: on its own line under the field, only while
there is one. Beside the field (as it was) a long message took the room of the value
typed, at 80 columns all of it."""

from __future__ import annotations

from textual.visual import VisualType
from textual.widgets import Label

from wizard.tui.state import wizard_of


class FieldMessage(Label):
    """A field's message; the wizard's title counts the ones shown (fields not taken)."""

    def __init__(self, *, id: str) -> None:
        super().__init__("", id=id, classes="problems", markup=False)  # quotes what was typed
        self.display = False

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        super().update(content, layout=layout)
        shown = bool(content)
        if shown != self.display:
            self.display = shown
            wizard_of(self).refresh_header_soon()
