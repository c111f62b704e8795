"""The wizard: a Textual app whose steps edit one ``Answers`` object and drive the engine.

Each step is a :class:`~textual.screen.Screen`; the step list on the left of every screen
and Next/Back (ctrl+n / ctrl+b) move between them. The header says which step is shown and
whether the answers are valid. The app holds the answers and the file they came from or go
to; screens never provision anything themselves (deploy runs ``crowbar-wizard apply``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.timer import Timer

from screens.drafts import (
    ConfirmQuit,
    RestoreDraft,
    difference,
    drop_draft,
    read_draft,
    write_draft,
)
from wizard.answers import Answers, check, load
from wizard.problems import format_loc

STEPS = (("welcome", "Welcome"), ("network", "Network planning"),
         ("discovery", "Hardware discovery"), ("barclamps", "Barclamps"),
         ("review", "Review & save"), ("deploy", "Deploy"))
"""The steps, in order: (screen name, title)."""
LAB_EXAMPLE = Path(__file__).resolve().parents[1] / "answers" / "examples" / "lab-small.yaml"
"""The lab's example, from the checkout the wizard runs from."""
DRAFT_DELAY = 1.0
"""Seconds after an edit before the draft is written."""


def starting_answers(path: Path | None) -> tuple[Path | None, Answers | None, bool]:
    """What the wizard opens: ``path``; else the newest answers file in ``answers/``; else
    the lab's example, unsaved (saving it goes to ``answers/lab.yaml``, not over the
    example). Returns (path, answers, saved)."""
    if path is not None:
        return path, load(path), True
    saved = sorted(Path("answers").glob("*.yaml"), key=lambda p: p.stat().st_mtime)
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
    ]

    def __init__(self, path: Path | None = None, answers: Answers | None = None, *,
                 saved: bool | None = None):
        super().__init__()
        self.path = path
        self.answers = answers
        self.saved = saved if saved is not None else path is not None and answers is not None
        self._draft_timer: Timer | None = None

    def on_mount(self) -> None:
        from screens.barclamps import BarclampsScreen
        from screens.deploy import DeployScreen, running_deploy
        from screens.discovery import DiscoveryScreen
        from screens.network import NetworkScreen
        from screens.review import ReviewScreen
        from screens.welcome import WelcomeScreen

        self.install_screen(WelcomeScreen(), "welcome")
        self.install_screen(NetworkScreen(), "network")
        self.install_screen(DiscoveryScreen(), "discovery")
        self.install_screen(BarclampsScreen(), "barclamps")
        self.install_screen(ReviewScreen(), "review")
        self.install_screen(DeployScreen(), "deploy")
        self.push_screen("review" if self.answers is not None else "welcome")
        if self.answers is not None and running_deploy(self.answers):
            self.go("deploy")  # an apply of these answers is running: attach to it
        self._offer_draft()

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
        if self.saved or self.answers is None:
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
        saved ones drop the draft.
        """
        self.answers, self.path, self.saved = answers, path, saved
        if saved:
            drop_draft(path)
        elif self._draft_timer is None:
            self._draft_timer = self.set_timer(DRAFT_DELAY, self._write_draft_now)
        self.refresh_header()

    def _write_draft_now(self) -> None:
        self._draft_timer = None
        self._keep_draft()

    def refresh_header(self) -> None:
        step = dict(STEPS).get(getattr(self.screen, "step", ""), "")
        if self.answers is None:
            validity = "no answers yet"
        else:
            problems = self.problems()
            validity = "answers valid" if not problems else f"{len(problems)} problems"
        self.sub_title = f"{step} · {validity}" + ("" if self.saved else " · unsaved")

    # --- moving between steps ------------------------------------------------------------

    def go(self, step: str) -> None:
        self.switch_screen(step)
        self.refresh_header()

    def action_step(self, offset: int) -> None:
        names = [name for name, _ in STEPS]
        current = getattr(self.screen, "step", names[0])
        index = min(max(names.index(current) + offset, 0), len(names) - 1)
        if names[index] != "welcome" and self.answers is None:
            self.notify("Start a plan, open a file or start the lab first", severity="warning")
            return
        self.go(names[index])
