"""What every step's screen shares: the step list, the header, the footer and F1 help."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, ListItem, ListView, Static

from wizard.answers import Answers
from wizard.base import host_facts
from wizard.tui.control import AnswersChanged, hold
from wizard.tui.state import Wizard, wizard_of

STEPS = (("welcome", "Welcome"), ("network", "Network planning"),
         ("discovery", "Hardware discovery"), ("barclamps", "Barclamps"),
         ("review", "Review & save"), ("deploy", "Deploy"))
"""The steps, in order: (screen name, title)."""


def _same(shown: Any, value: Any) -> bool:
    """Whether a cell shows ``value`` (rich's Text compares its text, not its style)."""
    if isinstance(shown, Text) and isinstance(value, Text):
        return (shown.plain, shown.style, shown.spans) == (value.plain, value.style,
                                                           value.spans)
    return bool(shown == value)


def refill(table: DataTable[Any], rows: Iterable[tuple[str, Sequence[Any]]],
           columns: Sequence[tuple[str, Text]] | None = None) -> None:
    """Show ``rows`` (key, cells in column order) in ``table`` where it stands; and
    ``columns`` (key, label), when they may change too.

    The same rows and columns as shown: the cells change in place, the cursor and the
    scroll stay (and nothing is highlighted anew). Others: the table is filled afresh,
    the cursor back on the cell it was on when its row and column are still there, the
    scroll back as it was.
    """
    rows = list(rows)
    same_columns = columns is None or [
        (column.key.value, column.label.plain, column.label.style)
        for column in table.ordered_columns] == [
        (key, label.plain, label.style) for key, label in columns]
    if same_columns and [row.key.value for row in table.ordered_rows] == [
            key for key, _ in rows]:
        keys = [column.key for column in table.ordered_columns]
        for key, cells in rows:
            for column, value in zip(keys, cells, strict=True):
                if not _same(table.get_cell(key, column), value):
                    table.update_cell(key, column, value, update_width=True)
        return
    was = None
    if table.is_valid_coordinate(table.cursor_coordinate):
        was = table.coordinate_to_cell_key(table.cursor_coordinate)
    scroll = table.scroll_offset
    table.clear(columns=not same_columns)
    if not same_columns and columns is not None:
        for key, label in columns:
            table.add_column(label, key=key)
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if was is not None and was.row_key in table.rows and was.column_key in table.columns:
        table.cursor_coordinate = Coordinate(table.get_row_index(was.row_key),
                                             table.get_column_index(was.column_key))
    table.call_after_refresh(table.scroll_to, scroll.x, scroll.y, animate=False)


class StepList(ListView):
    """The wizard's steps; select one to go there."""

    def __init__(self, current: str):
        super().__init__(*(ListItem(Static(title), id=f"step-{name}") for name, title in STEPS),
                         initial_index=[name for name, _ in STEPS].index(current),
                         id="steps")
        self.current = current

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        name = (event.item.id or "").removeprefix("step-")
        if name and name != self.current:
            event.stop()
            if not wizard_of(self).step_to(name):
                self.show_current()  # still here

    def show_current(self) -> None:
        """Mark this list's own step again (a step left through the list marks the
        step chosen there)."""
        self.index = [name for name, _ in STEPS].index(self.current)


class HelpScreen(ModalScreen[None]):
    """F1: what this step is for and its keys; any key closes it."""

    def __init__(self, title: str, text: str):
        super().__init__()
        self.title_text, self.text = title, text

    def compose(self) -> ComposeResult:
        where = "\n".join([
            "This admin node: " + (", ".join(host_facts.addresses()) or "no address"),
            "SSH host keys: " + ("; ".join(host_facts.host_keys()) or "none")])
        with Vertical(id="modal"):
            yield Static(f"[b]{self.title_text}[/b]\n\n{self.text}\n\n"
                         "Keys everywhere: ctrl+n next step, ctrl+b previous step, "
                         "tab moves between fields, ctrl+q quits, F1 this help, F2 takes "
                         f"control (when another session has it).\n\n{where}\n\n"
                         "Press any key to close.")

    def on_key(self) -> None:
        self.dismiss()

    def on_click(self) -> None:
        self.dismiss()


class StepScreen(Screen[None]):
    """A wizard step: header, step list on the left, the step's own body, footer."""

    step = "welcome"
    HELP = ""
    """What F1 says about this step."""
    BINDINGS: ClassVar[list[BindingType]] = [Binding("f1", "help", "Help")]

    @property
    def wizard(self) -> Wizard:
        """The app, as a step may use it."""
        return wizard_of(self)

    @property
    def answers(self) -> Answers | None:
        """The answers being edited."""
        return self.wizard.answers

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(dict(STEPS)[self.step], self.HELP))

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield StepList(self.step)
            with Vertical(id="body"):
                yield Static("", id="banner", markup=False)  # names a user, a tty
                yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()

    def hold_if_observing(self) -> None:
        """After fields are mounted: an observer's stay disabled."""
        self.call_after_refresh(hold, self, self.wizard.observing)

    def follow_control(self) -> None:
        """Redraw what this step shows an observer differently (called by the app when
        control changes, and as the step is shown); most steps only disable fields."""

    def show_answers(self) -> None:
        """Show the answers as they are now, where the step stands: the focus, cursors
        and scroll stay. Called as the step is shown (by the steps that show answers) and
        when an observer's answers follow the controller's (:class:`AnswersChanged`)."""

    def on_answers_changed(self, message: AnswersChanged) -> None:
        message.stop()
        self.show_answers()

    def on_screen_resume(self) -> None:
        self.query_one(StepList).show_current()
        self.wizard.show_control()
