"""Deploy: run the engine on the saved answers and show it live, from its journal.

Deploy starts ``crowbar-wizard apply --json`` as its own process, in its own session, its
output going to ``apply.log`` beside the journal: closing the wizard or losing the SSH
link does not stop it. The screen follows the apply's journal, the same whether this
wizard started the apply or found it running (then it attaches): a grid of nodes colored
by lifecycle state, a node readying by whether it converges now or waits for other nodes'
roles (select one for its steps, the roles it converges, its last chef-client run and its
log), a bar per phase, an aggregate bar with ETA, and a log. Pause holds back new steps;
Cancel stops the apply as Ctrl-C does, leaving a journal the next Deploy resumes from.

On a site deployed before, the log first says what applying the saved answers would change
(``apply --dry-run``, run as its own process). A deployed node's pane offers Release and
Reinstall (``crowbar-wizard node release|reinstall``, run detached as an apply is, behind a
question naming what is lost); after a release the wizard reads the answers file back,
which lost the node.

An apply that ends other than with every node ready (it could not start: the lab too
small, a secret missing; or it left nodes in problem) is shown as such: what it printed
last, from ``apply.log`` and shown as written, and what to do next (rack the servers the
lab lacks for the answers' nodes, retry, the log's path).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Label, ProgressBar, RichLog, Static

from wizard.answers import Answers, load
from wizard.engine import deployments
from wizard.engine.converge_runs import clock, duration, planned_roles, role_label
from wizard.engine.deployments import ApplyWatch, Journal, JournalUnreadable, StartedApply
from wizard.engine.phases import PHASES
from wizard.engine.plan import NOTHING_TO_DO
from wizard.tui.confirm import Confirm
from wizard.tui.deploy_progress import STEP_NAMES, DeployProgress, NodeProgress
from wizard.tui.markup import literal
from wizard.tui.steps import StepScreen

STATE_COLORS = {"discovered": "#757575", "allocated": "#a0a0a0",
                "hardware-installing": "#ffd54f", "installing": "#ffa040",
                "installed": "#4dd0e1", "readying": "#64b5f6", "converging": "#ba68c8",
                "waiting": "#90caf9", "ready": "#66bb6a", "released": "#5c5c5c",
                "problem": "#ef5350"}
"""Cell backgrounds (under black text), the same in the dark and the light theme: by
lifecycle state, and for a node readying by what it does (``converging``, ``waiting``: see
:attr:`~wizard.tui.deploy_progress.NodeProgress.activity`)."""
CELL = 12
"""Width of a node's cell in the grid."""
POLL = 0.25
"""Seconds between looks at the journal."""
OUTPUT_LINES = 4
"""Last lines of what an apply printed, shown when it fails."""


class ConfirmRelease(Confirm):
    YES = ("yes", "Release", "error")
    NO = ("no", "Keep it", "default")
    AUTO_FOCUS = "#no"  # Enter keeps the node: what is lost is not got back


class ConfirmReinstall(Confirm):
    YES = ("yes", "Reinstall", "error")
    NO = ("no", "Keep it", "default")
    AUTO_FOCUS = "#no"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA --"
    minutes, secs = divmod(int(seconds), 60)
    return f"ETA {minutes // 60}:{minutes % 60:02d}:{secs:02d}"


class DeployScreen(StepScreen):
    """Live progress of an apply."""

    step = "deploy"
    HELP = ("Deploy the saved answers: every node from bare to ready, as `crowbar-wizard "
            "apply` does. The apply runs as its own process and goes on if the wizard "
            "closes; opening the wizard again attaches to it. Each cell of the grid is a "
            "node (the admin node too, which converges the DNS, NTP and logging servers), "
            "colored by state: yellow hardware, orange installing, cyan installed, blue "
            "registering in Chef, purple converging (chef-client runs on it), pale blue "
            "waiting for other nodes' roles, green ready, red problem. Move onto one for its "
            "steps, the barclamp roles it converges, its last chef-client run (times in "
            "UTC) and its log. All steps counts each node's install steps and its converge "
            "steps, one per role it holds. Pause lets the steps under way finish and starts "
            "no new one until Resume. Cancel stops the apply; Deploy again resumes where it "
            "stopped. On a site deployed before, the log first says what Deploy would change "
            "(as apply --dry-run: roles gained or lost, roles converged again, nodes added or "
            "released, attributes changed); a deployed node's pane offers Release (powered "
            "off, out of the answers and of Chef) and Reinstall (a fresh install), each "
            "after a question naming what is lost.")

    def __init__(self) -> None:
        super().__init__()
        self.kind: str | None = None
        self.path: Path | None = None
        self.progress = DeployProgress([])
        self.picked_for: Answers | None = None
        """The answers the apply shown was picked for (edited since: picked again)."""
        self.following: ApplyWatch | None = None
        """The journal and output of the apply shown."""
        self.running = False
        self.holder: dict[str, Any] | None = None
        """Who holds the journal: pausing and cancelling need an apply that has it."""
        self.process: StartedApply | None = None
        self.columns = 0
        self.cells: dict[str, tuple[int, int]] = {}
        self.shown: str | None = None
        self.output: deque[str] = deque(maxlen=OUTPUT_LINES)
        """The last lines the apply printed besides its events (its error, when it fails)."""
        self.exit_code: int | None = None
        """How the apply this wizard started ended (None: still running, or not ours)."""
        self.failure: str | None = None
        """What went wrong with the last apply, shown until the next one."""
        self._said = ""

    def body(self) -> ComposeResult:
        with Horizontal(id="deploy-buttons"):
            yield Button("Deploy on the lab", id="lab", variant="primary", compact=True)
            yield Button("Deploy", id="real", compact=True)
            yield Button("Pause", id="pause", disabled=True, compact=True)
            yield Button("Cancel", id="cancel", variant="error", disabled=True, compact=True)
        yield Static("", id="deploy-status")
        with Vertical(id="deploy-failed"):
            with VerticalScroll(id="failed-scroll"):
                yield Static("", id="failed-output")
            with Horizontal(id="failed-actions"):
                yield Button("", id="lab-resize", variant="primary", compact=True)
                yield Button("Retry", id="retry", compact=True)
        for phase in PHASES:
            with Horizontal(classes="phase"):
                yield Label(phase.title)
                yield ProgressBar(total=1, id=f"phase-{phase.key}", show_eta=False,
                                  show_percentage=False)
                yield Label("", id=f"count-{phase.key}", classes="count")
        with Horizontal(classes="phase"):
            yield Label("All steps")
            yield ProgressBar(total=1, id="overall", show_eta=False, show_percentage=False)
            yield Label("", id="count-overall", classes="count")
            yield Label("", id="eta")
        with Horizontal(id="deploy-panes"):
            grid: DataTable[Text] = DataTable(id="grid", cursor_type="cell", show_header=False)
            yield grid
            with Vertical(id="node-pane"):
                with Horizontal(id="node-actions"):  # in view however far the pane scrolls
                    yield Button("Release", id="release", variant="error", compact=True)
                    yield Button("Reinstall", id="reinstall", compact=True)
                with VerticalScroll(id="node-scroll"):
                    yield Static("", id="node-detail")
        yield RichLog(id="log", markup=True, wrap=True, min_width=20, max_lines=2000)

    def on_mount(self) -> None:
        self.query_one("#node-actions").display = False
        self.set_interval(POLL, self.poll)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show_answers()
        self.query_one("#lab", Button).focus()

    def show_answers(self) -> None:
        """The apply of these answers: found the first time here, or again for answers
        changed since (another site, or nodes and roles edited and saved: the grid takes
        them, and the log what applying them would change)."""
        answers = self.answers
        if not self.running and answers is not None and (
                self.path not in deployments.journals(answers).values()
                or answers != self.picked_for):
            self._pick_journal()

    @property
    def journal(self) -> Journal | None:
        """The journal shown, once open (the apply may not have made it yet, or ever)."""
        return self.following.journal if self.following is not None else None

    # --- which apply -----------------------------------------------------------------------

    def _pick_journal(self) -> None:
        """Attach to the running apply of these answers, else show the last one's journal."""
        answers = self.answers
        if answers is None:
            return
        self.picked_for = answers
        kind = deployments.latest(answers)
        if kind is not None:
            self.follow(deployments.journals(answers)[kind], kind)
            wizard = self.wizard
            if deployments.running(answers) is None and wizard.path is not None and \
                    wizard.saved:  # deployed before: what applying the file would change
                self.show_pending(wizard.path, kind)
        else:
            self._status()

    def follow(self, path: Path, kind: str) -> None:
        """Show the apply whose journal is ``path`` (it may not exist yet)."""
        if self.following is not None:
            self.following.close()
        self.kind, self.path, self.following = kind, path, ApplyWatch(path)
        answers = self.answers
        # an apply converges when it has a Chef server (the lab's, on the lab)
        roles = planned_roles(answers) if answers is not None and (
            kind == "lab" or answers.chef.server_url is not None) else None
        self.progress = DeployProgress([n.name for n in answers.nodes] if answers else [], roles)
        self.output.clear()
        self.exit_code = self.failure = None
        self.query_one("#deploy-failed").display = False
        self.columns = 0
        self.call_after_refresh(self.poll)

    @work(exclusive=True, group="pending")
    async def show_pending(self, path: Path, kind: str) -> None:
        """What an apply of the saved answers would change on the site, in the log (as
        ``apply --dry-run`` says it), before Deploy applies it."""
        said, lines = await deployments.pending_changes(path, lab=kind == "lab")
        log = self.query_one("#log", RichLog)
        where = "on the lab" if kind == "lab" else "for real"
        if not said:
            log.write(f"[$warning]What Deploy {where} would change is unknown:[/]")
        elif lines[:1] == [NOTHING_TO_DO]:
            log.write(f"Nothing to deploy {where}: the site is as {literal(str(path))} says")
            return
        else:
            log.write(f"[b]Deploy {where} would change[/] (apply --dry-run):")
        for line in lines:
            log.write(literal(line))

    # --- following the journal ---------------------------------------------------------------

    def poll(self) -> None:
        watch = self.following
        if watch is None:
            return
        log = self.query_one("#log", RichLog)
        changed: set[str] = set()
        if self._open_journal(watch):
            changed, lines = self.progress.apply(watch.events(self.progress.seq, 5000))
            for line in lines:
                log.write(line)
        self._tail_apply_log(watch, log)
        # an apply that fails to start never writes a journal: its process says it ended
        own = self.process is not None
        self.holder = watch.holder()
        was_running, self.running = self.running, own or self.holder is not None
        if self.running != was_running and not self.running:
            self._ended()
        if self.running != was_running and self.shown is not None:
            changed.add(self.shown)  # its pane's Release and Reinstall come and go
        self._draw(changed)

    def _open_journal(self, watch: ApplyWatch) -> bool:
        """Whether the journal is open (the apply may not have made it yet, or ever)."""
        try:
            return watch.open()
        except JournalUnreadable as exc:  # shown; tried again next time
            self.query_one("#deploy-status", Static).update(literal(str(exc)))
            return False

    def _tail_apply_log(self, watch: ApplyWatch, log: RichLog) -> None:
        """What apply printed besides its events (errors, the provisioner's URL)."""
        for raw in watch.output():
            try:
                event = json.loads(raw)
            except ValueError:
                log.write(literal(raw))
                if raw.strip():
                    self.output.append(raw)
                continue
            if event.get("event") == "serving":
                log.write(f"provisioner serving {literal(event['url'])}")
            elif event.get("event") == "chef-export":
                log.write(f"no Chef server: wrote {event['files']} files to "
                          f"{literal(event['path'])}")

    def _ended(self) -> None:
        self.progress.paused = False
        counts = self.progress.counts()
        total = len(self.progress.nodes) - len(self.progress.released())
        code = self.exit_code
        if code == 130:  # cancelled: said in the log
            return
        if (code in (0, None) and counts.get("ready", 0) == total and total):
            self.notify(f"all {total} nodes ready")
            return
        where = "on the lab" if self.kind == "lab" else "for real"
        exit_ = "" if code is None else f" (exit {code})"
        if code is not None and self.journal is None:
            title = f"The apply {where} did not start{exit_}"
        else:
            problems = counts.get("problem", 0)
            title = (f"The apply {where} ended{exit_}: {counts.get('ready', 0)} of {total} "
                     "ready" + (f", {problems} in problem" if problems else ""))
        self._failed(title, list(self.output))

    def _failed(self, title: str, output: list[str]) -> None:
        """Show what went wrong (the title in the status line, then the output as written)
        and offer what to do next."""
        watch = self.following
        self.failure = title
        where = [] if watch is None else [
            f"full output: {_shown(watch.paths.apply_log)}"]
        self.query_one("#failed-output", Static).update(
            "\n".join(literal(line) for line in [*output, *where]))
        # its last lines (the problems, the log's path) in view; the rest scrolls
        self.query_one("#failed-scroll", VerticalScroll).anchor()
        resize = self.query_one("#lab-resize", Button)
        short = self._lab_short()
        resize.display = short is not None
        if short is not None:
            resize.label = f"Rack {short} more lab servers"
        self.query_one("#deploy-failed").display = True
        self._status()
        self.query_one("#lab-resize" if short is not None else "#retry", Button).focus()
        if not self.is_current:  # on another step: told there
            self.notify(title, severity="error", markup=False)

    def _lab_short(self) -> int | None:
        """How many servers the running lab lacks for the nodes to deploy (None: none)."""
        answers = self.answers
        spec = deployments.running_lab()
        if self.kind != "lab" or answers is None or spec is None:
            return None
        return len(answers.nodes) - len(spec.bmcs) if len(spec.bmcs) < len(answers.nodes) \
            else None

    def _draw(self, changed: set[str]) -> None:
        progress = self.progress
        nodes = len(progress.nodes) - len(progress.released())
        for phase, value in zip(PHASES, progress.phases(), strict=True):
            self.query_one(f"#phase-{phase.key}", ProgressBar).update(
                total=nodes or 1, progress=value)
            self.query_one(f"#count-{phase.key}", Label).update(f"{value}/{nodes}")
        self.query_one("#overall", ProgressBar).update(total=progress.total or 1,
                                                       progress=len(progress.done))
        self.query_one("#count-overall", Label).update(f"{len(progress.done)}/{progress.total}")
        self.query_one("#eta", Label).update(
            format_eta(progress.eta()) if self.running else "")
        self._grid(changed)
        self._status()
        if self.shown is not None and self.shown in changed:
            self._detail(self.shown)

    def _grid(self, changed: set[str]) -> None:
        grid = self.query_one("#grid", DataTable)
        columns = max(1, (grid.size.width - 2) // CELL) if grid.size.width else 4
        names = list(self.progress.nodes)
        if columns != self.columns or len(names) != len(self.cells):
            self.columns = columns
            grid.clear(columns=True)
            for column in range(columns):
                grid.add_column("", key=str(column), width=CELL - 2)
            self.cells = {}
            for row in range((len(names) + columns - 1) // columns):
                chunk = names[row * columns:(row + 1) * columns]
                grid.add_row(*(self._cell(n) for n in chunk),
                             *([Text("")] * (columns - len(chunk))), key=str(row))
                self.cells.update({n: (row, i) for i, n in enumerate(chunk)})
            return
        for name in changed & set(self.cells):
            row, column = self.cells[name]
            grid.update_cell(str(row), str(column), self._cell(name))

    def _cell(self, name: str) -> Text:
        color = STATE_COLORS.get(self.progress.nodes[name].activity, "white")
        return Text(f"{_fit(name, CELL - 2):<{CELL - 2}}", style=f"black on {color}")

    def _status(self) -> None:
        status = self.query_one("#deploy-status", Static)
        say = self._say
        buttons = {name: self.query_one(f"#{name}", Button)
                   for name in ("lab", "real", "pause", "cancel")}
        observing = self.wizard.observing
        buttons["lab"].disabled = buttons["real"].disabled = self.running or observing
        buttons["pause"].disabled = buttons["cancel"].disabled = (self.holder is None
                                                                  or observing)
        if self.following is None:
            say(status, "No deploy of these answers has run yet.")
            return
        paused = self.holder is not None and (self.progress.paused or self.following.paused())
        buttons["pause"].label = "Resume" if paused else "Pause"
        counts = ", ".join(f"[{STATE_COLORS.get(s, 'white')}]■[/] {n} {s}"
                           for s, n in sorted(self.progress.activities().items()))
        where = "on the lab" if self.kind == "lab" else "for real"
        if self.holder is not None:
            state = "[b $warning]paused[/]" if paused else "running"
            say(status, f"Apply {where} {state} (pid {self.holder.get('pid', '?')}): {counts}")
        elif self.running:
            say(status, f"Starting the apply {where}...")
        elif self.failure is not None:
            say(status, f"[b $error]{literal(self.failure)}[/]")
        elif self.journal is None:
            say(status, f"No apply {where} has written its journal yet.")
        else:
            say(status, f"Last apply {where}: {counts}")

    def _say(self, status: Static, text: str) -> None:
        """Update the status line only when it changes (every redraw goes down the wire)."""
        if text != self._said:
            self._said = text
            status.update(text)

    # --- a node's steps and log --------------------------------------------------------------

    @on(DataTable.CellHighlighted, "#grid")
    def highlighted(self, event: DataTable.CellHighlighted) -> None:
        row, column = event.coordinate.row, event.coordinate.column
        name = next((n for n, cell in self.cells.items() if cell == (row, column)), None)
        if name is not None:
            self._detail(name)

    def _detail(self, name: str) -> None:
        self.shown = name
        node = self.progress.nodes[name]
        color = STATE_COLORS.get(node.activity, "white")
        last = node.runs.last
        # a failed run's error, said under that run when it is also the reason
        said = last is not None and last.error is not None and last.error == node.reason
        reason = f"\n[$error]{literal(node.reason)}[/]" if node.reason and not said else ""
        lines = [f"[b]{literal(name)}[/b] [{color}]■[/] {node.activity}{reason}",
                 *_steps(node), *_converging(node, self.progress.roles(name)), "", *node.log]
        self.query_one("#node-detail", Static).update("\n".join(lines))
        self.query_one("#node-actions").display = self._changeable(name)

    def _changeable(self, name: str) -> bool:
        """Whether ``name`` may be released or reinstalled from here now: a node of the
        saved answers, deployed (ready, or in problem), while no apply runs."""
        answers, node = self.answers, self.progress.nodes.get(name)
        return (node is not None and answers is not None and not self.running
                and not self.wizard.observing and self.wizard.saved
                and node.state in ("ready", "problem") and node.lifecycle
                and name in {n.name for n in answers.nodes})

    # --- releasing, reinstalling a node ------------------------------------------------------

    @on(Button.Pressed, "#release")
    def release(self) -> None:
        self._node_action("release")

    @on(Button.Pressed, "#reinstall")
    def reinstall(self) -> None:
        self._node_action("reinstall")

    def _node_action(self, action: str) -> None:
        """Ask, naming what will be lost; on yes, run ``node ACTION`` as Deploy runs apply."""
        name, wizard = self.shown, self.wizard
        if name is None or wizard.path is None or not self._changeable(name) or \
                not wizard.may_edit():
            return
        path, roles = wizard.path, ", ".join(self.progress.roles(name)) or "none"
        where = "on the lab" if self.kind == "lab" else "for real"
        question: Confirm
        if action == "release":
            question = ConfirmRelease(
                f"Release {name} {where}?",
                f"{name} is powered off through its BMC and taken out of {path}: its roles "
                f"({roles}) leave it, its DHCP reservation and boot files go, its Chef node "
                f"and client are deleted. Other changes saved in {path} are applied too.")
        else:
            question = ConfirmReinstall(
                f"Reinstall {name} {where}?",
                f"{name} is power-cycled into a fresh install: everything on its disks is "
                f"lost. It registers a new Chef client key and converges its roles "
                f"({roles}) again. Other changes saved in {path} are applied too.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_node_action(action, name, path)
        self.app.push_screen(question, answered)

    @work(exclusive=True, group="apply")
    async def run_node_action(self, action: str, node: str, path: Path) -> None:
        log = self.query_one("#log", RichLog)
        assert self.path is not None and self.kind is not None
        kind = self.kind
        log.write(f"{action} {literal(node)} " + ("on the lab" if kind == "lab" else
                                                 "for real"))
        try:
            process = await deployments.start_node_command(action, node, path, self.path,
                                                           lab=kind == "lab")
        except OSError as exc:
            self._failed(f"{action} {node} did not start", [str(exc)])
            return
        self.query_one("#node-actions").display = False
        code = await self._until_ended(process)
        if action == "release" and code == 0:  # the answers on disk lost the node
            answers = load(path)
            self.wizard.use(answers, path, saved=True)
            self.follow(self.path, kind)

    # --- starting, pausing, cancelling -------------------------------------------------------

    @on(Button.Pressed, "#lab")
    def deploy_lab(self) -> None:
        self._deploy(lab=True)

    @on(Button.Pressed, "#real")
    def deploy_real(self) -> None:
        self._deploy(lab=False)

    @on(Button.Pressed, "#retry")
    def retry(self) -> None:
        self._deploy(lab=self.kind == "lab")

    @on(Button.Pressed, "#lab-resize")
    def resize_lab(self) -> None:
        """Rack the servers the lab lacks (those it has keep their state), then apply."""
        self._deploy(lab=True, rack=self._lab_short() or 0)

    def _deploy(self, *, lab: bool, rack: int = 0) -> None:
        wizard = self.wizard
        if not wizard.may_edit():
            return
        if wizard.path is None or not wizard.saved:
            self.notify("Save the answers first (Review & save)", severity="warning")
            return
        answers = self.answers
        assert answers is not None
        kind = "lab" if lab else "real"
        self.follow(deployments.journals(answers)[kind], kind)
        self.run_apply(wizard.path, lab, len(answers.nodes), rack=rack)

    @work(exclusive=True, group="apply")
    async def run_apply(self, path: Path, lab: bool, nodes: int, *, rack: int = 0) -> None:
        log = self.query_one("#log", RichLog)
        if rack and not await self._lab_done(
                f"racking {rack} more lab servers", deployments.rack_lab(rack),
                "The lab did not take more servers"):
            return
        if lab and not deployments.lab_is_up() and not await self._lab_done(
                f"starting the lab: {nodes} simulated servers and a Chef server",
                deployments.start_lab(nodes), "The lab did not start"):
            return
        assert self.path is not None
        try:  # detached: goes on when the wizard's terminal goes away
            process = await deployments.start_apply(path, self.path, lab=lab)
        except OSError as exc:
            self._failed("The apply did not start", [str(exc)])
            return
        if await self._until_ended(process) == 130:
            log.write("cancelled: the journal keeps what was done; Deploy resumes")

    async def _lab_done(self, saying: str, command: Awaitable[tuple[bool, list[str]]],
                        failure: str) -> bool:
        """Run a lab command (rack, start) before an apply, its output in the log; whether
        it did what it says, else the failure shown."""
        log = self.query_one("#log", RichLog)
        log.write(saying)
        done, lines = await command
        for line in lines:
            log.write(literal(line))
        if not done:
            self._failed(failure, lines[-OUTPUT_LINES:])
        return done

    async def _until_ended(self, process: StartedApply) -> int:
        """Show ``process`` (an apply, or a node command applying) running until it ends:
        its exit code."""
        self.process, self.running = process, True
        self._status()
        try:
            code = await process.wait()
        finally:
            self.process = None
        self.exit_code = code
        self.poll()
        return code

    @on(Button.Pressed, "#pause")
    def toggle_pause(self) -> None:
        if self.path is None or self.holder is None or not self.wizard.may_edit():
            return
        paused = not deployments.is_paused(self.path)
        if deployments.set_pause(self.path, paused) is None:  # it ended meanwhile
            return
        self.query_one("#pause", Button).label = "Resume" if paused else "Pause"
        self.notify("pausing: steps under way finish, no new one starts" if paused else
                    "resuming")

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        """Stop the apply as Ctrl-C would; the journal lets the next deploy resume."""
        running = self.path is not None and deployments.holder(self.path) is not None
        if not running or not self.wizard.may_edit():
            return
        assert self.path is not None
        try:  # the apply lifts its own pause as it ends
            deployments.cancel(self.path)
        except deployments.NotRunning:  # it ended meanwhile
            pass
        except deployments.RunsElsewhere as exc:
            self.notify(str(exc), severity="warning")
        except deployments.CannotCancel as exc:
            self.notify(f"cannot cancel: {exc}", severity="error", markup=False)


def _fit(name: str, width: int) -> str:
    """``name`` in ``width`` characters: a longer one keeps its start and its end, where
    names made from a MAC (d52-54-00-7e-5b-1e, as a sweep names a server) differ."""
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    return f"{name[:head]}…{name[head + 1 - width:]}"


def _shown(path: Path) -> str:
    """``path`` relative to here when under it (shorter), else as it is."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _steps(node: NodeProgress) -> list[str]:
    """A node's lifecycle steps, a line each, until they are all done (then its state says
    so, and the pane's room goes to what it converges); none for the admin node."""
    if not node.lifecycle or all(node.steps.get(step) == "done" for step in STEP_NAMES):
        return []
    marks = {"done": "[$success]✓[/]", "failed": "[$error]✗[/]"}
    lines = []
    for step in STEP_NAMES:
        status = node.steps.get(step)
        mark = "·" if status is None else marks.get(status, "[$warning]…[/]")
        lines.append(f" {mark} {step}" + (f" {status}" if status not in (None, "done") else ""))
    return lines


def _converging(node: NodeProgress, roles: list[str]) -> list[str]:
    """What a node converges now (each role with its barclamp) or that it waits, how many
    of its ``roles`` it converged, its last chef-client run: when, how long, how it ended."""
    runs, lines = node.runs, []
    if runs.running:
        lines.append(f"since {clock(runs.since)}"
                     + (f", try {runs.attempt}" if runs.attempt > 1 else ""))
        lines += [f" {literal(role_label(role))}" for role in runs.running]
    elif node.activity == "waiting":
        lines.append("waiting for others' roles")
    if roles and (runs.roles or node.state in ("readying", "ready")):
        lines.append(f"{len(runs.converged)} of {len(roles)} roles converged")
    last = runs.last
    if last is not None:
        lines.append(f"last run {clock(last.started)}")
        lines.append(f" [$success]✓[/] success in {duration(last.elapsed)}" if last.ok else
                     f" [$error]✗[/] failed after {duration(last.elapsed)}")
        if last.error:
            lines.append(f"[$error]{literal(last.error)}[/]")
    return lines
