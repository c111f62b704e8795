"""What the provisioner remembers between requests: node states and discovered machines.

A JSON file in the provisioner's directory, rewritten atomically on every change. The
deployment engine's journal takes over node states when it drives the nodes; the HTTP
service only reads a node's state (for its boot script) and records ``installed`` callbacks
and inventory reports.
"""

from __future__ import annotations

import json
from pathlib import Path

from wizard.inventory import DiscoveredNode, Inventory, InventoryReport
from wizard.yamlfile import write_atomic


class ProvisionerState:
    """Node lifecycle states by name, and the inventory of PXE-discovered machines."""

    def __init__(self, path: Path):
        self.path = path
        self.states: dict[str, str] = {}
        self.inventory = Inventory()
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            self.states = dict(data.get("states", {}))
            self.inventory.nodes = [DiscoveredNode.from_dict(n) for n in data.get("discovered", [])]

    def state(self, node: str) -> str | None:
        return self.states.get(node)

    def set_state(self, node: str, state: str) -> None:
        self.states[node] = state
        self._save()

    def add_report(self, report: InventoryReport) -> tuple[DiscoveredNode, bool]:
        node, new = self.inventory.add_report(report)
        self._save()
        return node, new

    def _save(self) -> None:
        data = {"states": self.states,
                "discovered": [node.to_dict() for node in self.inventory.nodes]}
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n", mode=0o600)
