"""The wizard: a Textual app whose steps edit one ``Answers`` object and drive the engine.

Each step is a :class:`~textual.screen.Screen`; the step list on the left of every screen
and Next/Back (ctrl+n / ctrl+b) move between them. The header says which step is shown and
whether the answers are valid. The app holds the answers and the file they came from or go
to; screens never provision anything themselves (deploy runs ``crowbar-wizard apply``).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, ClassVar

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from wizard.answers import Answers, check, load
from wizard.answers.examples import LAB_EXAMPLE
from wizard.base.problems import InputError, format_loc
from wizard.engine.deployments import running
from wizard.engine.sessions import HANDOVER, Control, describe, this_session
from wizard.tui.barclamps import BarclampsScreen
from wizard.tui.control import AnswersChanged, TakeControl, answers_stamp, banner_text, hold
from wizard.tui.deploy import DeployScreen
from wizard.tui.discovery import DiscoveryScreen
from wizard.tui.drafts import (
    ConfirmQuit,
    RestoreDraft,
    difference,
    draft_path,
    drop_draft,
    read_draft,
    write_draft,
)
from wizard.tui.field_message import FieldMessage
from wizard.tui.network import NetworkScreen
from wizard.tui.review import ReviewScreen
from wizard.tui.state import Wizard
from wizard.tui.steps import STEPS, StepList, StepScreen
from wizard.tui.welcome import WelcomeScreen

DRAFT_DELAY = 1.0
"""Seconds after an edit before the draft is written."""


def starting_answers(path: Path | None, *, lab: bool = False
                     ) -> tuple[Path | None, Answers | None, bool]:
    """What the wizard opens: ``path``; else (unless ``lab``) the newest answers file in
    ``answers/``; else the lab's example, unsaved (saving it goes to ``answers/lab.yaml``,
    not over the example). Returns (path, answers, saved)."""
    if path is not None:
        return path, load(path), True
    saved = [] if lab else sorted(Path("answers").glob("*.yaml"),
                                  key=lambda p: p.stat().st_mtime)
    if saved:
        return saved[-1], load(saved[-1]), True
    if LAB_EXAMPLE.exists():
        return None, load(LAB_EXAMPLE), False
    return None, None, False


class WizardApp(App[None]):
    """Crowbar Wizard."""

    TITLE = "Crowbar Wizard"
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "step(1)", "Next"),
        Binding("ctrl+b", "step(-1)", "Back"),
        Binding("ctrl+q", "quit", "Quit"),
        Binding("f2", "take_control", "Take control"),
    ]

    def __init__(self, path: Path | None = None, answers: Answers | None = None, *,
                 saved: bool | None = None, kind: str = "terminal",
                 observe_only: bool = False):
        super().__init__()
        self.path = path
        self.answers = answers
        self.saved = saved if saved is not None else path is not None and answers is not None
        self._draft_timer: Timer | None = None
        self._header_due = False
        self.control = Control(this_session(kind))
        self.observe_only = observe_only
        """Started read-only (``--observe``, serve-web without --control): never controls."""
        self._seen: tuple[float, float] = (0.0, 0.0)
        self._controller_shown: dict[str, Any] | None = None

    @property
    def observing(self) -> bool:
        """Whether another session has control (this one only looks)."""
        return not self.control.held

    def on_mount(self) -> None:

        self.install_screen(WelcomeScreen(), "welcome")
        self.install_screen(NetworkScreen(), "network")
        self.install_screen(DiscoveryScreen(), "discovery")
        self.install_screen(BarclampsScreen(), "barclamps")
        self.install_screen(ReviewScreen(), "review")
        self.install_screen(DeployScreen(), "deploy")
        if not self.observe_only:
            self.control.try_take()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(HANDOVER, self._hand_over)
        self.set_interval(1.0, self._watch_control)
        self.push_screen("review" if self.answers is not None else "welcome")
        if self.answers is not None and running(self.answers):
            self.go("deploy")  # an apply of these answers is running: attach to it
        if self.observing:
            self._seen = answers_stamp(self.path, draft_path(self.path))
        else:
            self._offer_draft()

    def on_unmount(self) -> None:
        self.control.release()

    # --- control -----------------------------------------------------------------------------

    def _watch_control(self) -> None:
        """Observers: follow the controller's answers; take control when it is free."""
        if not self.observing or not self.screen_stack:  # the app is closing: no screen
            return
        if not self.observe_only and self.control.try_take():
            self.notify("you have control now: the other session ended")
            self.show_control()
            return
        stamp = answers_stamp(self.path, draft_path(self.path))
        if stamp != self._seen:
            self._seen = stamp
            shown = read_draft(self.path) if stamp[1] else None
            if shown is None and self.path is not None and self.path.exists():
                with contextlib.suppress(InputError, OSError):
                    shown = load(self.path, complete=False)
            if shown is not None:
                self.answers = shown
                self.screen.post_message(AnswersChanged())  # the others: as they are shown
                self.refresh_header()
        who = self.control.controller()
        if who != self._controller_shown:  # redraw the banner only when it changes
            self._controller_shown = who
            self.show_control()
        elif isinstance(self.screen, Screen):
            hold(self.screen, True)  # fields mounted since stay disabled

    def show_control(self) -> None:
        """The banner, the editing widgets and what else of the step shown depends on
        control (:meth:`~wizard.tui.steps.StepScreen.follow_control`), as control says."""

        for banner in self.screen.query("#banner").results(Static):
            banner.update(banner_text(self.control.controller()) if self.observing else "")
            banner.display = self.observing
        if isinstance(self.screen, Screen):
            hold(self.screen, self.observing)
        if isinstance(self.screen, StepScreen):
            self.screen.follow_control()
        self.refresh_bindings()
        self.refresh_header()

    def _hand_over(self) -> None:
        """Another session took control over: keep the edits in the draft, then observe."""
        self._keep_draft()
        self.control.release()
        self.notify("another session took control; your unsaved edits are in the draft",
                    severity="warning", timeout=10)
        self.show_control()

    def may_edit(self) -> bool:
        """Whether this session may change anything; if not, say why."""
        if self.observing:
            who = self.control.controller()
            self.notify(f"Read-only: {describe(who) if who else 'another session'} has "
                        "control (F2 takes it over)", severity="warning", markup=False)
        return not self.observing

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """F2 (take control) is for observers only."""
        return self.observing if action == "take_control" else True

    def action_take_control(self) -> None:
        if not self.observing:
            self.notify("this session has control already")
            return
        if self.observe_only:
            self.notify("this view was started read-only (serve-web --control grants "
                        "control)", severity="warning")
            return

        def chosen(take: bool | None) -> None:
            if take:
                self._take_over()
        self.push_screen(TakeControl(self.control.controller()), chosen)

    @work(exclusive=True, group="control")
    async def _take_over(self) -> None:
        if await asyncio.to_thread(self.control.take_over):
            self.notify("you have control")
        else:
            self.notify("the other session did not hand control over", severity="error")
        self.show_control()

    def on_key(self, event: events.Key) -> None:
        """Keys that would edit, pressed by an observer, say why they do nothing (on the
        step list, enter goes to a step: observers may)."""
        if event.key == "enter" and isinstance(self.focused, StepList):
            return
        if self.observing and (event.is_printable or event.key in ("enter", "space",
                                                                   "backspace", "delete")):
            self.may_edit()

    # --- drafts ----------------------------------------------------------------------------

    def _offer_draft(self) -> None:
        draft = read_draft(self.path)
        if draft is None or draft == self.answers:
            return

        def chosen(restore: bool | None) -> None:
            if restore:  # the step under the modal redraws from the answers when it resumes
                self.use(draft, self.path, saved=False)
                self.notify("restored the unsaved changes")
            else:
                drop_draft(self.path)
        self.push_screen(RestoreDraft(self.path, difference(self.answers, draft)), chosen)

    def _keep_draft(self) -> None:
        if self.answers is not None and not self.saved:
            write_draft(self.answers, self.path)

    async def action_quit(self) -> None:
        if self.saved or self.answers is None or self.observing:
            self.exit()
            return
        self._keep_draft()

        def chosen(quit_: bool | None) -> None:
            if quit_:
                self.exit()
        self.push_screen(ConfirmQuit(self.path), chosen)

    # --- state ---------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Why the answers are not valid yet (empty when they are)."""
        if self.answers is None:
            return ["no answers yet"]
        return [f"{format_loc(f.loc)}: {f.message}" for f in check(self.answers)]

    def use(self, answers: Answers, path: Path | None, *, saved: bool) -> None:
        """Take ``answers`` (from a new plan, a file or the lab) as the ones being edited.

        Unsaved answers go to the draft a moment later (edits in a burst, one write);
        saved ones drop the draft. An observer changes nothing (and is told why).
        """
        if not self.may_edit():
            return
        self.answers, self.path, self.saved = answers, path, saved
        if saved:
            drop_draft(path)
        elif self._draft_timer is None:
            self._draft_timer = self.set_timer(DRAFT_DELAY, self._write_draft_now)
        self.refresh_header()

    def _write_draft_now(self) -> None:
        self._draft_timer = None
        self._keep_draft()

    def refresh_header_soon(self) -> None:
        """Once after this round of changes (a form clears and sets its messages at once)."""
        if not self._header_due:
            self._header_due = True
            self.call_after_refresh(self.refresh_header)

    def refresh_header(self) -> None:
        self._header_due = False
        step = dict(STEPS).get(getattr(self.screen, "step", ""), "")
        # a field whose typed value is not taken: what is on screen is not valid
        invalid = sum(1 for message in self.screen.query(FieldMessage) if message.display)
        parts = [f"{invalid} invalid field{'s' if invalid > 1 else ''}"] if invalid else []
        if self.answers is None:
            parts.append("no answers yet")
        elif problems := self.problems():
            parts.append(f"{len(problems)} problems")
        elif not invalid:
            parts.append("answers valid")
        validity = " · ".join(parts)
        self.sub_title = (f"{step} · {validity}" + ("" if self.saved else " · unsaved")
                          + (" · observing" if self.observing else ""))

    # --- moving between steps ------------------------------------------------------------

    def go(self, step: str) -> None:
        self.switch_screen(step)
        self.refresh_header()

    def action_step(self, offset: int) -> None:
        names = [name for name, _ in STEPS]
        current = getattr(self.screen, "step", names[0])
        self.step_to(names[min(max(names.index(current) + offset, 0), len(names) - 1)])

    def step_to(self, step: str) -> bool:
        """Go to ``step`` as Next and Back do (and the step list): only Welcome until
        there are answers. Whether it went."""
        if step != "welcome" and self.answers is None:
            self.notify("Start a plan, open a file or start the lab first", severity="warning")
            return False
        self.go(step)
        return True


_THE_STEPS_WIZARD: type[Wizard] = WizardApp
"""The steps reach the app as a :class:`~wizard.tui.state.Wizard`: checked here (mypy)."""
