"""Review & save: the YAML that will be written, what is still wrong, and saving it.

An observer sees the YAML with inline secrets masked (:func:`wizard.tui.control.observed_data`).
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Static, TextArea

from wizard.answers import load, save, to_data
from wizard.base.problems import InputError
from wizard.base.yamlfile import dump
from wizard.tui.control import observed_data
from wizard.tui.drafts import difference, drop_draft
from wizard.tui.markup import literal
from wizard.tui.steps import StepScreen


class ReviewScreen(StepScreen):
    """What the answers file will hold."""

    step = "review"
    HELP = ("The answers file as it will be written, and what is still wrong with it. "
            "Save writes it (atomically, comments of an existing file kept, secrets as "
            "references) and reads it back to check it.")

    def body(self) -> ComposeResult:
        yield Static("", id="verdict", markup=False)  # problems quote what was written
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

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show_answers()
        answers = self.answers
        if answers is None:
            return
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
