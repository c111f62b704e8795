"""Hardware discovery: sweep a BMC range over IPMI, watch the servers fill a table, add them.

The sweep runs in a worker on the app's event loop (the IPMI driver keeps pyghmi on its
own thread), so the screen stays responsive while hundreds of BMCs answer. The password
is asked in a modal with a masked field and kept only for the sweep. Machines that PXE-boot
into discovery while an apply serves the admin network post their inventory to it; it is
in the apply's journal, and the table gains a row for each as it arrives.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

from wizard.base.secrets import SecretError
from wizard.engine.deployments import journals, lab_cabled_macs, read_events, running_lab
from wizard.engine.discover import sweep_bmcs
from wizard.engine.orders import EVENT as CHECK_EVENT
from wizard.engine.orders import CheckOutcome, held_against
from wizard.hardware.discovery import SweepResult, expand
from wizard.hardware.inventory import Inventory, InventoryConflict, InventoryReport
from wizard.tui.markup import literal
from wizard.tui.steps import StepScreen

COLUMNS = ("BMC", "found by", "power", "model", "serial", "MACs", "CPUs", "RAM GB", "disks",
           "network")
"""``network``: the last network check of a PXE-discovered machine, against today's plan."""
JOURNAL_POLL = 1.0
"""Seconds between looks for inventory that PXE-booted machines posted."""


class PasswordModal(ModalScreen[str | None]):
    """Ask the BMC password (masked); dismissed with it, or None when cancelled."""

    def __init__(self, user: str, known: str | None):
        super().__init__()
        self.user, self.known = user, known

    def compose(self) -> ComposeResult:
        with Vertical(id="modal"):
            yield Label(f"BMC password for {self.user}")
            yield Input(self.known or "", password=True, id="password")
            with Horizontal(classes="row"):
                yield Button("Sweep", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#ok")
    @on(Input.Submitted, "#password")
    def ok(self) -> None:
        self.dismiss(self.query_one("#password", Input).value)

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)


class DiscoveryScreen(StepScreen):
    """Find the servers through their BMCs."""

    step = "discovery"
    HELP = ("Find servers through their BMCs: give the range and user and press Sweep "
            "(the password is asked, masked), or sweep the lab. Every BMC that answers is "
            "logged into for its identity, hardware and power; rows appear as they answer. "
            "Machines that PXE-boot into discovery while a deploy serves the admin network "
            "appear too (found by PXE), with their NICs and disks in the details and, in "
            "the network column, their last network check (crowbar-wizard network check) "
            "held against the plan you are editing. Type in "
            "the filter to narrow the table; highlight a row for its details. Add to answers "
            "makes each server with a known NIC a node of the plan.")

    def __init__(self) -> None:
        super().__init__()
        self.inventory = Inventory()
        self.results: dict[str, SweepResult] = {}
        self.booted: dict[str, InventoryReport] = {}
        """PXE-discovered machines by node name."""
        self.checks: dict[str, tuple[str | None, dict[str, Any]]] = {}
        """The last network check answered by each MAC (``crowbar-wizard network check``)."""
        self._seen: dict[Path, int] = {}
        self.ping_timeout = 1.0
        """Seconds an address has to answer a ping before it counts as unreachable."""
        self.known: dict[str, str] = {}
        """The plan's node on each NIC MAC (on the lab, also its server's): a swept server
        that is a node already shows as that node, and is not added again."""

    def body(self) -> ComposeResult:
        with Horizontal(classes="compact-row"):
            yield Input(placeholder="BMC range: CIDR or FIRST-LAST", id="range", compact=True)
            yield Input(placeholder="user", id="user", compact=True)
            yield Button("Sweep", id="sweep", variant="primary", compact=True)
            yield Button("Sweep the lab", id="lab", compact=True)
        with Horizontal(classes="compact-row"):
            yield Input(placeholder="filter: model, serial, MAC, address", id="filter",
                        compact=True)
            yield Button("Add to answers", id="add", compact=True)
        yield Static("", id="counts")
        table: DataTable[str] = DataTable(id="found", cursor_type="row", zebra_stripes=True)
        for column in COLUMNS:
            table.add_column(column, key=column)
        yield table
        yield Static("", id="detail", markup=False)  # FRU text from the BMC

    def on_mount(self) -> None:
        self.set_interval(JOURNAL_POLL, self.pxe_reports)

    def pxe_reports(self) -> None:
        """Rows for the inventory PXE-booted machines posted to a running apply."""
        answers = self.answers
        if answers is None:
            return
        for path in journals(answers).values():
            events = read_events(path, self._seen.get(path, 0))
            if events:
                self._seen[path] = events[-1].seq
            for event in events:
                if event.kind == CHECK_EVENT:
                    self.checks[str(event.data.get("mac"))] = (event.node, event.data)
                    self._recheck(str(event.data.get("mac")))
                elif event.kind == "inventory" and event.node:
                    try:
                        report = InventoryReport.model_validate(event.data)
                    except ValidationError:
                        continue
                    self.show_report(event.node, report)

    def show_report(self, name: str, report: InventoryReport) -> None:
        """Add (or update) a machine that PXE-booted into discovery; a report that
        contradicts what the sweep found of the same server is left out."""
        try:
            self.inventory.add_report(report)
        except InventoryConflict:
            return
        self.booted[name] = report
        if self._matches_report(name, report):
            self._put_report(name, report)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.refresh_known()
        answers = self.answers
        if answers is None or self.query_one("#range", Input).value:
            return
        net = answers.networks.get(answers.bmc.network)
        ranges = answers.discovery.bmc_ranges or (
            [net.ranges.get("host") or str(net.cidr())] if net else [])
        self.query_one("#range", Input).value = ", ".join(ranges)
        self.query_one("#user", Input).value = answers.bmc.username

    # --- sweeping ------------------------------------------------------------------------

    @on(Button.Pressed, "#sweep")
    def ask_password(self) -> None:
        answers = self.answers
        known = None
        if answers is not None:
            try:
                known = answers.bmc.password.reveal()
            except SecretError:
                known = None
        user = self.query_one("#user", Input).value.strip() or "root"
        self.app.push_screen(PasswordModal(user, known), self._sweep_with)

    def _sweep_with(self, password: str | None) -> None:
        if password is None:
            return
        try:
            addresses = [a for block in self.query_one("#range", Input).value.split(",")
                         if block.strip() for a in expand(block.strip())]
        except ValueError as exc:
            self.notify(f"BMC range: {exc}", severity="error", markup=False)
            return
        answers = self.answers
        port = answers.bmc.port if answers is not None else 623
        self.run_sweep(addresses, port, self.query_one("#user", Input).value.strip(),
                       password)

    @on(Button.Pressed, "#lab")
    def sweep_lab(self) -> None:
        spec = running_lab()
        if spec is None:
            self.notify("no lab is running: start it on Welcome (Start the lab) or with "
                        "`crowbar-wizard lab up`", severity="warning")
            return
        self.query_one("#range", Input).value = (
            f"{spec.bmcs[0].address}-{spec.bmcs[-1].address}")
        self.query_one("#user", Input).value = spec.username
        self.run_sweep([b.address for b in spec.bmcs], spec.bmcs[0].port, spec.username,
                       spec.password)

    @work(exclusive=True, group="sweep")
    async def run_sweep(self, addresses: list[str], port: int, user: str,
                        password: str) -> None:
        self.query_one("#counts", Static).update(f"sweeping {len(addresses)} addresses...")
        swept = 0
        async with contextlib.aclosing(sweep_bmcs(
                addresses, port=port, username=user, password=password,
                inventory=self.inventory, ping_timeout=self.ping_timeout)) as results:
            async for result in results:
                swept += 1
                self.show(result)
                self.query_one("#counts", Static).update(
                    f"{swept}/{len(addresses)} addresses answered or timed out; "
                    f"{len(self.results)} BMCs")
        self.notify(f"sweep done: {len(self.results)} BMCs found")

    def show(self, result: SweepResult) -> None:
        """Add (or update) one sweep result in the table."""
        if result.outcome == "unreachable":
            return
        self.results[result.address] = result
        if self._matches(result):
            self._put(result)

    def refresh_known(self) -> None:
        """Which server is which node of the plan: by its NICs, and on the lab by the
        server a node was deployed on. Rows already shown are redrawn."""
        answers = self.answers
        nodes = answers.nodes if answers is not None else []
        known = lab_cabled_macs([node.name for node in nodes]) | {
            mac: node.name for node in nodes for mac in node.macs}
        if known != self.known:
            self.known = known
            self.refilter()

    def _node_of(self, result: SweepResult) -> str | None:
        macs = result.bmc.nic_macs if result.bmc else []
        return next((self.known[mac] for mac in macs if mac in self.known), None)

    def _put(self, result: SweepResult) -> None:
        bmc = result.bmc
        node = self._node_of(result)
        row = [f"{result.address}:{result.port}",
               f"node {node}" if node else f"IPMI {result.outcome}",
               (bmc.power or "") if bmc else "",
               (bmc.model or "") if bmc else "", (bmc.serial or "") if bmc else "",
               " ".join(bmc.nic_macs) if bmc else "",
               str(bmc.cpu_cores or "") if bmc else "", str(bmc.memory_gb or "") if bmc else "",
               str(bmc.disks if bmc and bmc.disks is not None else "")]
        self._upsert(result.address, row)

    def _put_report(self, name: str, report: InventoryReport) -> None:
        outcome = self._check_of(report)
        verdict = "" if outcome is None else "ok" if outcome.ok else (
            f"{sum(finding.ok is False for finding in outcome.findings)} wrong")
        self._upsert(f"pxe:{name}", [
            report.bmc_address or "-", f"PXE {name}", "on", report.model or "",
            report.serial or "", " ".join(report.macs), str(report.cpu_cores),
            str(report.memory_gb), str(report.disks), verdict])

    def _check_of(self, report: InventoryReport) -> CheckOutcome | None:
        """The machine's last network check held against the plan being edited."""
        answers = self.answers
        recorded = next((self.checks[mac] for mac in report.macs if mac in self.checks), None)
        if answers is None or recorded is None:
            return None
        return held_against(answers, *recorded)

    def _recheck(self, mac: str) -> None:
        """Show the check ``mac`` answered on its machine's row (and details, if shown)."""
        table = self.query_one("#found", DataTable)
        for name, report in self.booted.items():
            if mac in report.macs and self._matches_report(name, report):
                self._put_report(name, report)
                if table.row_count and table.coordinate_to_cell_key(
                        table.cursor_coordinate).row_key.value == f"pxe:{name}":
                    self.query_one("#detail", Static).update(
                        _report_detail(name, report, self._check_of(report)))

    def _upsert(self, key: str, row: list[str]) -> None:
        """Update the table's row ``key``, or add it."""
        table = self.query_one("#found", DataTable)
        cells = [literal(value) for value in row]  # a str cell is markup; FRU text is not
        if key in table.rows:
            for column, cell in zip(COLUMNS, cells, strict=True):
                table.update_cell(key, column, cell)
        else:
            table.add_row(*cells, key=key)

    def _filter_text(self) -> str:
        return self.query_one("#filter", Input).value.strip().lower()

    def _matches(self, result: SweepResult) -> bool:
        bmc = result.bmc
        return self._has([result.address, result.outcome, self._node_of(result) or "", *(
            [bmc.model or "", bmc.serial or "", *bmc.nic_macs] if bmc else [])])

    def _matches_report(self, name: str, report: InventoryReport) -> bool:
        return self._has([name, "pxe", report.bmc_address or "", report.model or "",
                          report.serial or "", *report.macs])

    def _has(self, fields: list[str]) -> bool:
        text = self._filter_text()
        return not text or any(text in field.lower() for field in fields)

    @on(Input.Changed, "#filter")
    def refilter(self) -> None:
        table = self.query_one("#found", DataTable)
        table.clear()
        for result in self.results.values():
            if self._matches(result):
                self._put(result)
        for name, report in self.booted.items():
            if self._matches_report(name, report):
                self._put_report(name, report)

    @on(DataTable.RowHighlighted, "#found")
    def detail(self, event: DataTable.RowHighlighted) -> None:
        key = str(event.row_key.value)
        if key.startswith("pxe:") and key[4:] in self.booted:
            report = self.booted[key[4:]]
            self.query_one("#detail", Static).update(_report_detail(key[4:], report,
                                                                    self._check_of(report)))
            return
        result = self.results.get(key)
        if result is None:
            return
        data = result.to_json()
        if (node := self._node_of(result)) is not None:
            data["node"] = node
        self.query_one("#detail", Static).update(
            "  ".join(f"{k}: {v}" for k, v in data.items() if k != "event" and v))

    @on(Button.Pressed, "#add")
    def add_to_answers(self) -> None:
        wizard = self.wizard
        answers = wizard.answers
        if answers is None:
            self.notify("start a plan first (Welcome)", severity="warning")
            return
        self.refresh_known()
        lab = running_lab()
        cabled = {bmc.address for bmc in lab.bmcs} if lab is not None else set()
        new = [node for found in self.inventory.nodes  # the lab cables its own BMC
               if (node := found.to_answers_node(bmc=found.bmc_address not in cabled))
               is not None and not self.known.keys() & set(node.macs)]
        if not new:
            self.notify("nothing new to add: every server found is a node of the plan"
                        + ("; `crowbar-wizard lab rack N` adds N servers to the lab"
                           if lab is not None else ""), markup=False)
            return
        updated = answers.model_copy(update={"nodes": [*answers.nodes, *new]})
        wizard.use(updated, wizard.path, saved=False)
        self.refresh_known()
        self.notify(f"added {len(new)} nodes to the answers (unsaved): give them roles "
                    "in Barclamps")


def _report_detail(name: str, report: InventoryReport, check: CheckOutcome | None) -> str:
    """A PXE-discovered machine in a few lines: identity, NICs, disks, its network check."""
    lines = ["  ".join(f"{key}: {value}" for key, value in {
        "node": name, "vendor": report.manufacturer, "model": report.model,
        "serial": report.serial, "CPUs": report.cpu_cores,
        "RAM": f"{report.memory_mb} MB" if report.memory_mb else f"{report.memory_gb} GB",
        "BMC": report.bmc_address or ("in-band" if report.bmc_present else None),
    }.items() if value)]
    lines += ["NICs: " + ", ".join(
        f"{nic.name} {nic.mac} {'link' if nic.link else 'no link'}"
        + (f" {nic.speed_mbps} Mb/s" if nic.speed_mbps else "") for nic in report.nics)] \
        if report.nics else []
    lines += ["disks: " + ", ".join(
        f"{drive.name} {drive.size_bytes / 1e9:.0f} GB" + (f" {drive.serial}"
                                                           if drive.serial else "")
        for drive in report.drives)] if report.drives else []
    if check is not None:
        lines.append(f"network check of {check.node}: " + ("everything as planned"
                                                            if check.ok else "differs"))
        lines += [f"  {'ok' if f.ok else 'WRONG' if f.ok is False else 'note'} {f.subject}: "
                  f"{'planned ' + f.planned + ', ' if f.planned else ''}found {f.found}"
                  for f in check.findings if f.ok is not True]
    return "\n".join(lines)
