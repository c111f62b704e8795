"""Barclamps: pick what to deploy, set its attributes, and place its roles on nodes.

The catalog is a tree by category; space or enter selects the highlighted barclamp and
everything it requires (and says what came along). The panel on the right describes it,
holds a field per attribute (checked as you type, the message under the field), and a
role x node matrix. "Auto-allocate" places every empty role as ``crowbar-wizard allocate``
does; what still breaks a rule is listed under the matrix.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, Static, Tree
from textual.widgets.tree import TreeNode

from wizard.answers import Answers
from wizard.answers.proposals import AllocationError, Proposal, allocate, assignments
from wizard.answers.proposals import check as check_proposals
from wizard.base.problems import format_loc
from wizard.catalog import Attribute, Catalog, default_catalog
from wizard.tui.field_message import FieldMessage
from wizard.tui.steps import StepScreen, refill


def parse_value(attribute: Attribute, text: str) -> Any:
    """What an attribute field's text means, by the attribute's type; ``ValueError`` if
    it means nothing."""
    if attribute.type == "integer":
        return int(text)
    if attribute.type == "float":
        return float(text)
    if attribute.type == "boolean":
        if text.lower() not in ("true", "false", "yes", "no"):
            raise ValueError("expected true or false")
        return text.lower() in ("true", "yes")
    if attribute.type == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


class BarclampsScreen(StepScreen):
    """The barclamp catalog and the selected proposals."""

    step = "barclamps"
    HELP = ("Pick what to deploy. Space or enter on a barclamp selects it and whatever it "
            "requires (or removes it, unless another needs it). The panel shows its "
            "attributes, checked as you type, and which node holds each of its roles: "
            "enter or a click on a cell of the matrix puts that node in that role or takes "
            "it out (◦ marks roles every node gets by itself). Auto-allocate places every "
            "empty role by the barclamps' rules and the hardware. What breaks a rule is "
            "red: the cell at fault, the role's header when it has too few or too many "
            "nodes, and the list under the matrix.")

    def __init__(self) -> None:
        super().__init__()
        self.catalog: Catalog = default_catalog()
        self.current: str | None = None

    def body(self) -> ComposeResult:
        with Horizontal():
            tree: Tree[str] = Tree("catalog", id="catalog")
            tree.show_root = False
            yield tree
            with VerticalScroll(id="detail-pane"):
                yield Static("", id="about")
                yield Vertical(id="attributes")
                with Horizontal(classes="row"):
                    yield Button("Auto-allocate", id="allocate", variant="primary")
                matrix: DataTable[Text] = DataTable(id="matrix", cursor_type="cell")
                matrix.fixed_columns = 1  # the node's name stays while the roles scroll by
                yield matrix
                yield Static("", id="violations", classes="problems", markup=False)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show_answers()
        self.query_one("#catalog", Tree).focus()

    def show_answers(self) -> None:
        """The catalog's marks and the panel of the barclamp shown, in place."""
        self._fill_tree()

    def _fill_tree(self) -> None:
        tree = self.query_one("#catalog", Tree)
        selected = set(self.answers.barclamps) if self.answers else set()
        if tree.root.children:  # the marks change in place: the cursor and scroll stay
            for branch in tree.root.children:
                for leaf in branch.children:
                    mark = "[green]●[/]" if leaf.data in selected else "○"
                    leaf.set_label(f"{mark} {leaf.data}")
            self._show(self.current)
            return
        cursor: TreeNode[str] | None = None
        for category in ("core", "openstack", "hadoop", "ops"):
            names = sorted((n for n in self.catalog if self.catalog[n].category == category),
                           key=lambda n: (self.catalog[n].run_order, n))
            if not names:
                continue
            branch = tree.root.add(category, expand=True)
            for name in names:
                mark = "[green]●[/]" if name in selected else "○"
                leaf = branch.add_leaf(f"{mark} {name}", data=name)
                if name == self.current or (self.current is None and cursor is None):
                    cursor = leaf
        if cursor is not None:  # the cursor stays on the barclamp shown (else the first)
            self.call_after_refresh(tree.move_cursor, cursor)
        self._show(self.current or (cursor.data if cursor is not None else None))

    @on(Tree.NodeHighlighted, "#catalog")
    def highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        if event.node.data:
            self._show(event.node.data)

    @on(Tree.NodeSelected, "#catalog")
    def toggle(self, event: Tree.NodeSelected[str]) -> None:
        name, answers = event.node.data, self.answers
        if not name or answers is None or not self.wizard.may_edit():
            return
        barclamps = dict(answers.barclamps)
        if name in barclamps:
            needed = [n for n in barclamps if n != name and name in self.catalog.closure([n])]
            if needed:
                self.notify(f"{name} stays: {', '.join(needed)} require it", severity="warning")
                return
            del barclamps[name]
            self.notify(f"removed {name}")
        else:
            added = sorted(self.catalog.closure([name]) - set(barclamps))
            for each in added:
                barclamps[each] = Proposal()
            extra = [n for n in added if n != name]
            self.notify(f"added {name}" + (f", and what it requires: {', '.join(extra)}"
                                           if extra else ""))
        self._update(answers.model_copy(update={"barclamps": barclamps}))
        self._fill_tree()

    def _update(self, answers: Answers) -> None:
        self.wizard.use(answers, self.wizard.path, saved=False)

    # --- the right-hand panel ------------------------------------------------------------

    def _show(self, name: str | None) -> None:
        answers = self.answers
        proposal = answers.barclamps.get(name) if answers and name else None
        if name is not None and name == self.current and proposal is not None and (
                self._show_values(name, proposal)):
            self._matrix(name)  # the same form: its values in place, where it stands
            return
        self.current = name
        about = self.query_one("#about", Static)
        fields = self.query_one("#attributes", Vertical)
        fields.remove_children()
        matrix = self.query_one("#matrix", DataTable)
        matrix.clear(columns=True)
        if name is None:
            about.update("Highlight a barclamp to see it; space or enter selects it.")
            return
        barclamp = self.catalog[name]
        requires = ", ".join(barclamp.requires) or "nothing"
        about.update(f"[b]{barclamp.display_name}[/b] ({barclamp.category}, run order "
                     f"{barclamp.run_order}; requires {requires})\n{barclamp.description}")
        if proposal is None:
            return
        for key, attribute in barclamp.attributes.items():
            fields.mount(Horizontal(
                Label(key, classes="field"),
                Input(self._text(proposal, key, attribute), id=f"attr-{key}",
                      name=name,  # its barclamp: see attribute_changed
                      password=attribute.type == "secret"),
                FieldMessage(id=f"msg-{key}"), classes="attr"))
        self.hold_if_observing()
        self._matrix(name)

    @staticmethod
    def _text(proposal: Proposal, key: str, attribute: Attribute) -> str:
        """An attribute's value as its field shows it."""
        value = proposal.attributes.get(key, attribute.default)
        return ", ".join(map(str, value)) if isinstance(value, list) else (
            "" if value is None else str(value))

    def _show_values(self, name: str, proposal: Proposal) -> bool:
        """Put the proposal's values in the fields shown for ``name`` (a field whose text
        differs from its value gets the value, its message cleared); False when the
        fields are not that barclamp's."""
        attributes = self.catalog[name].attributes
        fields = list(self.query("#attributes Input").results(Input))
        if [(f.id, f.name) for f in fields] != [(f"attr-{key}", name) for key in attributes]:
            return False
        with self.prevent(Input.Changed):
            for field, (key, attribute) in zip(fields, attributes.items(), strict=True):
                text = self._text(proposal, key, attribute)
                if field.value != text:
                    field.value = text
                    self.query_one(f"#msg-{key}", FieldMessage).update("")
        return True

    def _matrix(self, name: str) -> None:
        """Nodes down, roles across: ● holds it, ◦ holds it by itself (every node), red
        where a rule is broken (a role header in red: too few or too many nodes)."""
        answers = self.answers
        matrix = self.query_one("#matrix", DataTable)
        if answers is None:
            matrix.clear(columns=True)
            return
        placed = assignments(answers, self.catalog).get(name, {})
        roles = self.catalog[name].roles
        findings = [f for f in check_proposals(answers, self.catalog, complete=True)
                    if f.loc[:2] == ("barclamps", name)]
        listed = answers.barclamps[name].roles
        bad_cells = {(f.loc[3], listed[f.loc[3]][f.loc[4]]) for f in findings
                     if len(f.loc) == 5 and isinstance(f.loc[3], str)
                     and isinstance(f.loc[4], int)}
        bad_roles = {str(f.loc[3]) for f in findings if len(f.loc) == 4} | (
            {role.name for role in roles if any(f.loc == ("barclamps", name, "roles") and
                                                f" role {role.name} " in f.message
                                                for f in findings)})
        columns = [("node", Text("node"))] + [
            (role.name, Text(role.name, style="bold red" if role.name in bad_roles else ""))
            for role in roles]
        rows = []
        for node in [answers.admin.hostname, *(n.name for n in answers.nodes)]:
            cells = []
            for role in roles:
                mark = ("◦" if role.all_nodes else "●") if node in placed.get(role.name, []) \
                    else "·"
                cells.append(Text(mark, style="bold red" if (role.name, node) in bad_cells
                                  else "green" if mark != "·" else "dim"))
            rows.append((node, [node, *cells]))
        refill(matrix, rows, columns)  # where it stands: the cursor and scroll stay
        self.query_one("#violations", Static).update(
            "\n".join(f"{format_loc(f.loc)}: {f.message}" for f in findings))

    @on(DataTable.CellSelected, "#matrix")
    def toggle_role(self, event: DataTable.CellSelected) -> None:
        """Enter or a click on a cell puts the node in the role, or takes it out."""
        answers, name = self.answers, self.current
        if answers is None or name is None or name not in answers.barclamps:
            return
        if not self.wizard.may_edit():
            return
        column = event.coordinate.column
        if column == 0:
            return
        role = self.catalog[name].roles[column - 1]
        node = str(event.cell_key.row_key.value)
        if role.all_nodes:
            self.notify(f"{role.name} goes on every node by itself", severity="warning")
            return
        proposal = answers.barclamps[name]
        holders = list(proposal.roles.get(role.name, []))
        if node in holders:
            holders.remove(node)
        else:
            holders.append(node)
        roles = dict(proposal.roles) | {role.name: holders}
        if not holders:
            del roles[role.name]
        barclamps = dict(answers.barclamps)
        barclamps[name] = proposal.model_copy(update={"roles": roles})
        self._update(answers.model_copy(update={"barclamps": barclamps}))
        self._matrix(name)
        self.query_one("#matrix", DataTable).move_cursor(row=event.coordinate.row,
                                                         column=column)

    @on(Input.Changed)
    def attribute_changed(self, event: Input.Changed) -> None:
        key = (event.input.id or "").removeprefix("attr-")
        if not event.input.id or key == event.input.id or self.current is None:
            return
        if event.input.name != self.current:
            return  # from the form of the barclamp shown before, still being removed
        attribute = self.catalog[self.current].attributes[key]
        message = self.query_one(f"#msg-{key}", FieldMessage)
        try:
            value = parse_value(attribute, event.value)
            problem = attribute.check(value)
        except ValueError as exc:
            problem = str(exc)
        message.update(problem or "")
        answers = self.answers
        if problem or answers is None or self.current not in answers.barclamps:
            return
        proposal = answers.barclamps[self.current]
        if proposal.attributes.get(key, attribute.default) == value:
            return
        barclamps = dict(answers.barclamps)
        barclamps[self.current] = proposal.model_copy(
            update={"attributes": proposal.attributes | {key: value}})
        self._update(answers.model_copy(update={"barclamps": barclamps}))

    @on(Button.Pressed, "#allocate")
    def auto_allocate(self) -> None:
        answers = self.answers
        if answers is None or not self.wizard.may_edit():
            return
        try:
            placed, placements = allocate(answers, self.catalog)
        except AllocationError as exc:
            self.notify(f"cannot place: {exc}", severity="error", timeout=10, markup=False)
            return
        self._update(placed)
        self.notify(f"placed {len(placements)} roles")
        self._fill_tree()
