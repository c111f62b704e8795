"""Deploy: run ``crowbar-wizard apply`` on the saved answers and show it live.

The deployment runs as its own process (``apply --json``), so the screen only reads its
events: a table of nodes by lifecycle state, a bar per phase, and a log.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Label, ProgressBar, RichLog, Static

from screens.steps import StepScreen
from wizard.cli_apply import PHASE_REACHED

PHASES = (("hardware", "Boot device + power cycle"), ("install", "OS install"),
          ("chef", "Chef node, ready"))
STATE_STYLE = {"ready": "green", "problem": "bold red", "installed": "cyan",
               "installing": "yellow", "readying": "cyan", "hardware-installing": "yellow"}


class DeployScreen(StepScreen):
    """Live progress of an apply."""

    step = "deploy"
    HELP = ("Deploy the saved answers: every node from bare to ready, as `crowbar-wizard "
            "apply` does (the wizard runs it and reads its events; an interrupted deploy "
            "resumes where it stopped when run again). "
            "The bars count nodes past each phase; the table has every node's state and, "
            "in problem, why; the log has the rest.")

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, str] = {}
        self.process: asyncio.subprocess.Process | None = None

    def body(self) -> ComposeResult:
        yield Static("Deploy the saved answers: every node from bare to ready.",
                     classes="title")
        with Horizontal(classes="row"):
            yield Button("Deploy on the lab", id="lab", variant="primary")
            yield Button("Deploy", id="real")
            yield Button("Cancel", id="cancel", variant="error", disabled=True)
        for key, label in PHASES:
            with Horizontal(classes="phase"):
                yield Label(label)
                yield ProgressBar(id=f"phase-{key}", show_eta=False)
        table: DataTable[str] = DataTable(id="nodes", cursor_type="row")
        for column in ("node", "state", "reason"):
            table.add_column(column, key=column)
        yield table
        yield RichLog(id="log", markup=True)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.query_one("#lab", Button).focus()

    def apply_event(self, event: dict[str, Any]) -> None:
        """Show one engine event (as ``apply --json`` prints them)."""
        table = self.query_one("#nodes", DataTable)
        log = self.query_one("#log", RichLog)
        kind = event.get("event")
        if kind == "plan":
            for key, _ in PHASES:
                self.query_one(f"#phase-{key}", ProgressBar).update(total=event["nodes"])
            log.write(f"plan: {event['nodes']} nodes to take to ready")
        elif kind == "state":
            node, state = event["node"], event["state"]
            self.states[node] = state
            styled = f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"
            reason = event.get("reason") or ""
            if node in table.rows:
                table.update_cell(node, "state", styled)
                table.update_cell(node, "reason", reason)
            else:
                table.add_row(node, styled, reason, key=node)
            if state == "problem":
                log.write(f"[red]{node}: {reason}[/]")
            self._phases()
        elif kind == "step" and event.get("status") == "failed":
            log.write(f"{event['node']}: {event['step']} failed: {event.get('error', '')}")
        elif kind == "serving":
            log.write(f"provisioner serving {event['url']}")
        elif kind == "done":
            problems = event.get("problems") or {}
            log.write(f"[b]done: {event['ready']} ready, {len(problems)} in problem[/]")

    def _phases(self) -> None:
        reached = [PHASE_REACHED.get(state, 0) for state in self.states.values()]
        for index, (key, _) in enumerate(PHASES, 1):
            self.query_one(f"#phase-{key}", ProgressBar).update(
                progress=sum(r >= index for r in reached))

    @on(Button.Pressed, "#lab")
    def deploy_lab(self) -> None:
        self._deploy(lab=True)

    @on(Button.Pressed, "#real")
    def deploy_real(self) -> None:
        self._deploy(lab=False)

    def _deploy(self, *, lab: bool) -> None:
        app = self.app
        if app.path is None or not app.saved:  # type: ignore[attr-defined]
            self.notify("Save the answers first (Review & save)", severity="warning")
            return
        self.run_apply(str(app.path), lab)  # type: ignore[attr-defined]

    @work(exclusive=True)
    async def run_apply(self, path: str, lab: bool) -> None:
        log = self.query_one("#log", RichLog)
        command = [sys.executable, "-m", "wizard.cli"]
        if lab:
            up = await asyncio.create_subprocess_exec(
                *command, "lab", "status", "--json", stdout=asyncio.subprocess.PIPE)
            status, _ = await up.communicate()
            if not json.loads(status or b"{}").get("running"):
                log.write("starting the lab: 6 simulated nodes")
                started = await asyncio.create_subprocess_exec(
                    *command, "lab", "up", "--nodes", "6", stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT)
                out, _ = await started.communicate()
                for line in out.decode().splitlines():
                    log.write(line)
        process = await asyncio.create_subprocess_exec(
            *command, "apply", path, "--json", *(["--lab"] if lab else []),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self.process = process
        self.query_one("#cancel", Button).disabled = False
        assert process.stdout is not None
        async for line in process.stdout:
            try:
                self.apply_event(json.loads(line))
            except ValueError:
                log.write(line.decode().rstrip())
        _, errors = await process.communicate()
        for line in errors.decode().splitlines():
            log.write(line)
        code = process.returncode
        self.process = None
        self.query_one("#cancel", Button).disabled = True
        if code == 130:
            log.write("cancelled: the journal keeps what was done; deploy again to resume")
        self.notify("all nodes ready" if code == 0 else "cancelled" if code == 130 else
                    f"apply ended with exit {code}",
                    severity="information" if code in (0, 130) else "error")

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        """Stop the apply as Ctrl-C would: it ends its current steps' bookkeeping and exits;
        the journal lets the next deploy resume."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
