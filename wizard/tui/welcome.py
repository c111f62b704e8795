"""Welcome: start a new plan, open an answers file, or take the lab's example."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Static

from wizard.answers import load
from wizard.answers.examples import LAB_EXAMPLE
from wizard.answers.starter import starter_answers
from wizard.base.problems import InputError
from wizard.engine.deployments import lab_is_up, start_lab
from wizard.network import PlanError
from wizard.tui.steps import StepScreen


class WelcomeScreen(StepScreen):
    """The first step."""

    step = "welcome"
    HELP = ("Start from one of three places. A new plan carves Crowbar's networks (admin, "
            "BMC, storage, public, tenant) out of one supernet, sized for the nodes you "
            "expect. Open reads an answers file you saved before; its problems, if any, are "
            "shown with file, line and field. The lab example is a 6-node deployment for "
            "the built-in lab, which simulates servers, their BMCs and a Chef server; "
            "Start the lab brings those up now (Deploy on the lab also does when needed), "
            "and `crowbar-wizard lab down` stops them.")

    def body(self) -> ComposeResult:
        yield Static("Take racks of bare servers to a running cloud. Start here:", classes="title")
        yield Static("A new plan: networks carved from one supernet, sized for your nodes")
        with Horizontal(classes="row"):
            yield Input("10.20.0.0/16", placeholder="supernet, e.g. 10.20.0.0/16",
                        id="supernet")
            yield Input("100", placeholder="nodes", id="count", type="integer")
            yield Button("New plan", id="new", variant="primary")
        yield Static("An answers file you saved before")
        with Horizontal(classes="row"):
            yield Input(placeholder="path, e.g. answers/site.yaml", id="path")
            yield Button("Open", id="open")
        yield Static("The built-in lab: 6 simulated nodes, their BMCs and a Chef server")
        with Horizontal(classes="row"):
            yield Button("Use the lab example", id="lab")
            yield Button("Start the lab", id="lab-up")

    @on(Button.Pressed, "#new")
    def new_plan(self) -> None:
        supernet = self.query_one("#supernet", Input).value.strip()
        count = self.query_one("#count", Input).value.strip()
        try:
            answers = starter_answers(supernet, int(count or 0))
        except (PlanError, ValueError) as exc:
            self.notify(f"cannot plan: {exc}", severity="error", markup=False)
            return
        self.wizard.use(answers, None, saved=False)
        self.notify(f"planned networks for {count} nodes from {supernet}")
        self.wizard.go("review")

    @on(Button.Pressed, "#open")
    @on(Input.Submitted, "#path")
    def open_file(self) -> None:
        text = self.query_one("#path", Input).value.strip()
        if text:
            self._open(Path(text))

    @on(Button.Pressed, "#lab")
    def lab(self) -> None:
        self._open(LAB_EXAMPLE, example=True)

    @on(Button.Pressed, "#lab-up")
    def lab_up(self) -> None:
        if lab_is_up():
            self.notify("the lab is up already")
            return
        self.query_one("#lab-up", Button).disabled = True
        self.notify("starting the lab: 6 simulated servers, their BMCs and a Chef server")
        self.start_lab()

    @work(exclusive=True, group="lab")
    async def start_lab(self) -> None:
        started, lines = await start_lab(6)
        self.query_one("#lab-up", Button).disabled = False
        if started:
            self.notify(lines[0] if lines else "the lab is up", timeout=8, markup=False)
        else:
            self.notify("the lab did not start: " + " ".join(lines[-3:]), severity="error",
                        timeout=15, markup=False)

    def _open(self, path: Path, *, example: bool = False) -> None:
        try:
            answers = load(path)
        except (InputError, OSError) as exc:
            self.notify(str(exc), severity="error", timeout=10, markup=False)
            return
        # the example is a starting point: saving it goes to answers/, not over it
        self.wizard.use(answers, None if example else path, saved=not example)
        self.wizard.go("review")
