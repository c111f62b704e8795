"""Network planning: the networks in a table, an editor for the highlighted one, and the
address space drawn as bars.

Every field is checked as it is typed: the network's own model first (the message under
the field at fault), then the rules between networks (overlaps, shared segments), listed
under the form. Only a network that passes both replaces the one in the answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Checkbox, DataTable, Input, Label, Static, TabbedContent, TabPane

from wizard.base.problems import format_loc
from wizard.network import Network, check_networks
from wizard.tui.conduits import ConduitsPane
from wizard.tui.field_message import FieldMessage
from wizard.tui.steps import StepScreen, refill

BAR = 40
"""Width of an address-space bar, in cells."""
RANGE_COLORS = {"admin": "magenta", "dhcp": "yellow", "host": "green", "switch": "cyan",
                "router": "blue"}


def bar(network: Network) -> str:
    """The network's ranges across its subnet, as one line of rich markup."""
    try:
        cidr = network.cidr()
    except ValueError:
        return "[red](invalid subnet)[/]"
    size = cidr.size
    cells = ["[dim]·[/]"] * BAR
    for name in network.ranges:
        block = network.block(name)
        if block is None:
            continue
        first = int(block.first) - int(cidr.first)
        last = int(block.last) - int(cidr.first)
        color = RANGE_COLORS.get(name, "white")
        for cell in range(first * BAR // size, min(last * BAR // size, BAR - 1) + 1):
            cells[cell] = f"[{color}]█[/]"
    return "".join(cells)


class NetworkScreen(StepScreen):
    """The deployment's networks."""

    step = "network"
    HELP = ("The networks and their ranges. Highlight a network to edit it below: subnet, "
            "VLAN (and whether it is tagged), conduit, router and each range are checked as "
            "you type, the message under the field at fault; rules between networks "
            "(overlaps, shared segments) are listed under the form. A change that passes is "
            "taken at once. The bars show where each range lies in its subnet. The "
            "Conduits tab says which NICs carry the networks: two or more NICs are bonded "
            "in the teaming mode chosen (1 active-backup, 4 802.3ad/LACP, ...).")

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.shown: Network | None = None
        """The network as the form has it (the last change taken, or as it was filled)."""

    def body(self) -> ComposeResult:
        with TabbedContent(id="network-tabs"):
            with TabPane("Networks", id="networks-tab"):
                table: DataTable[str] = DataTable(id="networks", cursor_type="row")
                for column in ("network", "subnet", "vlan", "conduit", "router",
                               "address space"):
                    table.add_column(column, key=column)
                yield table
                with VerticalScroll(id="editor"):
                    yield Static("", id="editing", classes="title")
                    yield Vertical(id="fields")
                    yield Static("", id="network-problems", classes="problems",
                                 markup=False)  # messages quote what was typed
                yield Static("  ".join(f"[{c}]█[/] {n}" for n, c in RANGE_COLORS.items()),
                             id="legend")
            with TabPane("Conduits", id="conduits-tab"):
                yield ConduitsPane()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show_answers()

    def show_answers(self) -> None:
        """The networks' rows; the form anew when the answers changed its network (else
        what was typed there, taken or not, stays)."""
        table = self.query_one("#networks", DataTable)
        self._fill_table()
        answers = self.answers
        if answers is not None and self.current in answers.networks:
            if answers.networks[self.current] != self.shown:
                self._edit(self.current)
        elif answers is not None and answers.networks:
            row = table.cursor_row if table.is_valid_row_index(table.cursor_row) else 0
            self._edit(str(table.ordered_rows[row].key.value))
        self.query_one(ConduitsPane).fill()

    def _fill_table(self) -> None:
        answers = self.answers
        refill(self.query_one("#networks", DataTable),
               [] if answers is None else ((name, self._row(name, net))
                                           for name, net in answers.networks.items()))

    @staticmethod
    def _row(name: str, net: Network) -> tuple[str, ...]:
        vlan = f"{net.vlan}{' tagged' if net.use_vlan else ''}" if net.vlan else "-"
        return name, net.subnet, vlan, net.conduit, net.router or "-", bar(net)

    @on(DataTable.RowHighlighted, "#networks")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = str(event.row_key.value)
        if name != self.current:
            self._edit(name)

    def _edit(self, name: str) -> None:
        answers = self.answers
        if answers is None or name not in answers.networks:
            return
        self.current = name
        net = self.shown = answers.networks[name]
        self.query_one("#editing", Static).update(f"Editing {name}")
        fields = self.query_one("#fields", Vertical)
        fields.remove_children()
        values: dict[str, Any] = {"subnet": net.subnet, "vlan": net.vlan or "",
                                  "conduit": net.conduit, "router": net.router or ""}
        values |= {f"range {key}": value for key, value in net.ranges.items()}
        for key, value in values.items():
            ident = key.replace(" ", "-")
            fields.mount(Horizontal(Label(key, classes="field"),
                                    Input(str(value), id=f"net-{ident}"),
                                    FieldMessage(id=f"netmsg-{ident}"),
                                    classes="attr"))
            if key == "vlan":
                fields.mount(Horizontal(Label("vlan tagged", classes="field"),
                                        Checkbox("frames carry the VLAN tag", net.use_vlan,
                                                 id="net-use_vlan", compact=True),
                                        FieldMessage(id="netmsg-use_vlan"),
                                        classes="attr"))
        self.hold_if_observing()

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def changed(self, event: Input.Changed | Checkbox.Changed) -> None:
        widget = event.input if isinstance(event, Input.Changed) else event.checkbox
        if not (widget.id or "").startswith("net-") or self.current is None:
            return
        answers = self.answers
        if answers is None:
            return
        old = answers.networks[self.current]
        data = old.model_dump(exclude_none=True)
        data["ranges"] = dict(old.ranges)
        for box in self.query("#net-use_vlan").results(Checkbox):
            data["use_vlan"] = box.value
        for field in self.query("#fields .attr Input").results(Input):
            key = (field.id or "").removeprefix("net-")
            value = field.value.strip()
            if key.startswith("range-"):
                data["ranges"][key.removeprefix("range-")] = value
            elif key == "vlan":
                data["vlan"] = int(value) if value.isdigit() else (value or None)
            elif key == "router":
                data["router"] = value or None
            else:
                data[key] = value
        for label in self.query("#fields .attr .problems").results(FieldMessage):
            label.update("")
        try:
            candidate = Network.model_validate({k: v for k, v in data.items()
                                                if v is not None})
        except ValidationError as exc:
            for error in exc.errors():
                where = error["loc"]
                ident = f"range-{where[1]}" if where[0] == "ranges" and len(where) > 1 \
                    else str(where[0])
                target = self.query(f"#netmsg-{ident}")
                message = error["msg"].removeprefix("Value error, ")
                if target:
                    target.first(FieldMessage).update(message)
                else:
                    self.query_one("#network-problems", Static).update(message)
            return
        networks = dict(answers.networks) | {self.current: candidate}
        problems = [f"{format_loc(f.loc)}: {f.message}"
                    for f in check_networks(networks, answers.conduits)]
        self.query_one("#network-problems", Static).update("\n".join(problems))
        if problems or candidate == old:
            return
        self.wizard.use(answers.model_copy(update={"networks": networks}), self.wizard.path,
                        saved=False)
        self.shown = candidate
        self._fill_table()
