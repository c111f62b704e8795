"""What every step's screen shares: the step list, the header, the footer and F1 help."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Header, ListItem, ListView, Static

from screens.app import STEPS
from screens.control import hold
from wizard import host_facts


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
            if not self.app.step_to(name):  # type: ignore[attr-defined]
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
        self.call_after_refresh(hold, self, self.app.observing)  # type: ignore[attr-defined]

    def follow_control(self) -> None:
        """Redraw what this step shows an observer differently (called by the app when
        control changes, and as the step is shown); most steps only disable fields."""

    def on_screen_resume(self) -> None:
        self.query_one(StepList).show_current()
        self.app.show_control()  # type: ignore[attr-defined]
