"""Review & save: the YAML that will be written, what is still wrong, and saving it.

For a site deployed before, it also says what applying these answers would change on it,
per node (``apply --dry-run``, of the answers as they are here, saved or not).

An observer sees the YAML with inline secrets masked (:func:`wizard.tui.control.observed_data`).
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Static, TextArea

from wizard.answers import load, save, to_data
from wizard.base.problems import InputError
from wizard.base.yamlfile import dump
from wizard.engine import deployments
from wizard.engine.plan import NOTHING_TO_DO
from wizard.tui.control import observed_data
from wizard.tui.drafts import difference, drop_draft
from wizard.tui.markup import literal
from wizard.tui.steps import StepScreen


class ReviewScreen(StepScreen):
    """What the answers file will hold."""

    step = "review"
    HELP = ("The answers file as it will be written, and what is still wrong with it. "
            "For a site deployed before, what applying these answers would change on it, "
            "per node (as apply --dry-run says it: run lists, attributes, nodes added, "
            "released or reinstalled). Save writes it (atomically, comments of an existing "
            "file kept, secrets as references) and reads it back to check it.")
    SECTIONS = ("attributes changed:", "changes per node:")
    """The parts of ``apply --dry-run`` shown here (the rest is counts; Deploy shows all)."""

    def body(self) -> ComposeResult:
        yield Static("", id="verdict", markup=False)  # problems quote what was written
        with VerticalScroll(id="pending-scroll"):
            yield Static("", id="pending", markup=False)
        yield Static("", id="diff")
        yield TextArea("", id="yaml", read_only=True, language=None)
        with Horizontal(classes="row"):
            yield Input(placeholder="save to, e.g. answers/site.yaml", id="save-path")
            yield Button("Save", id="save", variant="primary")

    def follow_control(self) -> None:
        """The YAML: as it will be written, or as an observer may see it (its cursor and
        scroll where they were)."""
        answers = self.answers
        if answers is not None:
            observing = self.wizard.observing
            text = dump(observed_data(answers) if observing else to_data(answers))
            yaml = self.query_one("#yaml", TextArea)
            if yaml.text != text:
                selection, scroll = yaml.selection, yaml.scroll_offset
                yaml.text = text
                yaml.selection = selection  # clamped to the text
                yaml.call_after_refresh(yaml.scroll_to, scroll.x, scroll.y, animate=False)

    def on_mount(self) -> None:
        self.query_one("#pending-scroll").display = False

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show_answers()
        answers = self.answers
        if answers is None:
            return
        self.show_pending()
        path = self.wizard.path or Path("answers") / f"{answers.site.name}.yaml"
        field = self.query_one("#save-path", Input)
        field.value = str(path)
        field.focus()  # enter saves

    def show_answers(self) -> None:
        """What is still wrong, what saving changes, and the YAML."""
        self.follow_control()
        if self.answers is None:
            return
        problems = self.wizard.problems()
        verdict = self.query_one("#verdict", Static)
        if problems:
            verdict.update("\n".join([f"{len(problems)} problems to fix before deploying:",
                                      *(f"  {p}" for p in problems[:8])]))
            verdict.set_classes("problems")
        else:
            verdict.update("The answers are valid.")
            verdict.set_classes("ok")
        self.query_one("#diff", Static).update(self._diff())

    def _diff(self) -> str:
        """What saving would change in the file on disk (nothing to say for a new file)."""
        wizard = self.wizard
        path, answers = wizard.path, wizard.answers
        if path is None or answers is None or wizard.saved or not path.exists():
            return ""
        try:
            on_disk = load(path, complete=False)
        except InputError:
            return f"{path} does not read as answers now: saving replaces it"
        lines = difference(on_disk, answers)
        if not lines:
            return ""
        marked = [f"[green]{literal(line)}[/]" if line.startswith("+") else
                  f"[red]{literal(line)}[/]" for line in lines]
        return "\n".join([f"Saving changes {path}:", *marked])

    @work(exclusive=True, group="pending")
    async def show_pending(self) -> None:
        """What applying the answers as they are here would change on the site they
        describe, when it was deployed (on the lab, or for real: the latest)."""
        answers, wizard = self.answers, self.wizard
        box = self.query_one("#pending-scroll")
        kind = deployments.latest(answers) if answers is not None else None
        if answers is None or kind is None or wizard.problems():
            box.display = False
            return
        where = "on the lab" if kind == "lab" else "for real"
        pending = self.query_one("#pending", Static)
        pending.update(f"Deployed {where}: asking what applying these answers would change")
        box.display = True
        lab = kind == "lab"
        said, lines = await (deployments.pending_changes(wizard.path, lab=lab)
                             if wizard.saved and wizard.path is not None
                             else deployments.pending_changes_of(answers, lab=lab))
        if not said:
            pending.update("\n".join([f"What applying them {where} would change is unknown:",
                                       *lines[-3:]]))
        elif lines[:1] == [NOTHING_TO_DO]:
            pending.update(f"Deployed {where}, as these answers say: applying them changes "
                           "nothing.")
        else:
            pending.update("\n".join([f"Applying these answers {where} would change "
                                       "(Deploy shows the whole plan):",
                                       *self._sections(lines)]))

    @classmethod
    def _sections(cls, lines: list[str]) -> list[str]:
        """The per-node and attribute parts of ``apply --dry-run``; all of it when it has
        neither (only DHCP or Chef objects to update)."""
        kept, keep = [], False
        for line in lines:
            if not line.startswith(" "):
                keep = line in cls.SECTIONS
            if keep:
                kept.append(line)
        return kept or lines

    @on(Button.Pressed, "#save")
    @on(Input.Submitted, "#save-path")
    def save(self) -> None:
        wizard = self.wizard
        answers = wizard.answers
        if answers is None:  # the step list shows Review only once there are answers
            return
        path = Path(self.query_one("#save-path", Input).value.strip())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save(answers, path)
            load(path)  # what was written must read back valid
        except (InputError, OSError) as exc:
            self.notify(f"not saved: {exc}", severity="error", timeout=10, markup=False)
            return
        previous = wizard.path
        wizard.use(answers, path, saved=True)
        drop_draft(previous)  # what it kept (the unsaved plan's, or another file's) is saved
        self.notify(f"saved {path}; it validates")
