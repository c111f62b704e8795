"""Conduits: which NICs carry the networks, and how two or more of them are bonded.

Part of the Network planning step. A conduit lists interfaces in Crowbar's notation
(``?1g1``: the first 1 GbE NIC, ``eth0``: that name); two or more form a Linux bond in
the chosen teaming mode. Each change is checked as typed (the conduit itself, then every
network against the conduits) and taken only when both pass.
"""

from __future__ import annotations

from pydantic import ValidationError
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label, Select, Static

from wizard.answers import Answers
from wizard.base.problems import format_loc
from wizard.network import Conduit, check_networks
from wizard.tui.field_message import FieldMessage
from wizard.tui.state import wizard_of
from wizard.tui.steps import refill

TEAMING = {0: "balance-rr", 1: "active-backup", 2: "balance-xor", 3: "broadcast",
           4: "802.3ad (LACP)", 5: "balance-tlb", 6: "balance-alb"}
"""Linux bonding modes by number."""


def bonding(conduit: Conduit) -> str:
    if len(conduit.interfaces) < 2:
        return "single NIC"
    return f"bond, mode {conduit.teaming_mode} {TEAMING[conduit.teaming_mode]}"


class ConduitsPane(Vertical):
    """The conduits in a table, and an editor for the highlighted one."""

    def __init__(self) -> None:
        super().__init__(id="conduits-pane")
        self.current: str | None = None
        self.shown: Conduit | None = None
        """The conduit as the form has it (the last change taken, or as it was filled)."""

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="conduits", cursor_type="row")
        for column in ("conduit", "interfaces", "bonding", "networks"):
            table.add_column(column, key=column)
        yield table
        yield Static("", id="conduit-editing", classes="title")
        with Horizontal(classes="attr"):
            yield Label("interfaces", classes="field")
            yield Input(id="conduit-interfaces", placeholder="?1g1, ?1g2 or eth0, eth1")
            yield FieldMessage(id="conduitmsg-interfaces")
        with Horizontal(classes="attr"):
            yield Label("teaming mode", classes="field")
            yield Select([(f"{mode} {name}", mode) for mode, name in TEAMING.items()],
                         id="conduit-teaming", allow_blank=False, value=1, compact=True)
        yield Static("", id="conduit-problems", classes="problems", markup=False)

    def fill(self) -> None:
        """The conduits' rows, where the table stands; the form anew when the answers
        changed its conduit (else what was typed there, taken or not, stays)."""
        table = self.query_one("#conduits", DataTable)
        answers = wizard_of(self).answers
        refill(table, [] if answers is None else (
            (name, self._row(answers, name, conduit))
            for name, conduit in answers.conduits.items()))
        if answers is None or not answers.conduits:
            return
        if self.current in answers.conduits:
            if answers.conduits[self.current] != self.shown:
                self._edit(self.current)
        else:
            row = table.cursor_row if table.is_valid_row_index(table.cursor_row) else 0
            self._edit(str(table.ordered_rows[row].key.value))

    @staticmethod
    def _row(answers: Answers, name: str, conduit: Conduit) -> tuple[str, str, str, str]:
        carried = [n for n, net in answers.networks.items() if net.conduit == name]
        return name, ", ".join(conduit.interfaces), bonding(conduit), ", ".join(carried)

    @on(DataTable.RowHighlighted, "#conduits")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = str(event.row_key.value)
        if name != self.current:
            self._edit(name)

    def _edit(self, name: str) -> None:
        answers = wizard_of(self).answers
        if answers is None or name not in answers.conduits:
            return
        self.current = None  # the fields' own change events must not count as edits
        conduit = self.shown = answers.conduits[name]
        self.query_one("#conduit-editing", Static).update(f"Editing conduit {name}")
        with self.prevent(Input.Changed, Select.Changed):
            self.query_one("#conduit-interfaces", Input).value = ", ".join(conduit.interfaces)
            self.query_one("#conduit-teaming", Select).value = conduit.teaming_mode
        self.query_one("#conduitmsg-interfaces", FieldMessage).update("")
        self.query_one("#conduit-problems", Static).update("")
        self.current = name

    @on(Input.Changed, "#conduit-interfaces")
    @on(Select.Changed, "#conduit-teaming")
    def changed(self) -> None:
        answers, name = wizard_of(self).answers, self.current
        if answers is None or name is None:
            return
        text = self.query_one("#conduit-interfaces", Input).value
        mode = self.query_one("#conduit-teaming", Select).value
        message = self.query_one("#conduitmsg-interfaces", FieldMessage)
        problems = self.query_one("#conduit-problems", Static)
        message.update("")
        problems.update("")
        try:
            candidate = Conduit(interfaces=[i.strip() for i in text.split(",") if i.strip()],
                                teaming_mode=mode if isinstance(mode, int) else 1)
        except ValidationError as exc:
            message.update("; ".join(e["msg"].removeprefix("Value error, ")
                                     for e in exc.errors()))
            return
        conduits = dict(answers.conduits) | {name: candidate}
        findings = [f"{format_loc(f.loc)}: {f.message}"
                    for f in check_networks(answers.networks, conduits)]
        if findings:
            problems.update("\n".join(findings))
            return
        if candidate == answers.conduits[name]:
            return
        updated = answers.model_copy(update={"conduits": conduits})
        wizard = wizard_of(self)
        wizard.use(updated, wizard.path, saved=False)
        self.shown = candidate
        table = self.query_one("#conduits", DataTable)
        for column, value in zip(("conduit", "interfaces", "bonding", "networks"),
                                 self._row(updated, name, candidate), strict=True):
            table.update_cell(name, column, value)
