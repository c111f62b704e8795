"""Address budget: how much of each network the plan uses and how much is left."""

from __future__ import annotations

from dataclasses import dataclass

from wizard.answers import Answers


@dataclass(frozen=True)
class NetworkBudget:
    """One network's addresses: usable, held by ranges, needed by nodes, and spare."""

    name: str
    subnet: str
    usable: int
    in_ranges: dict[str, int]
    host_range: int
    needed: int

    @property
    def spare(self) -> int:
        """Host addresses left after every node that needs one has one."""
        return self.host_range - self.needed


def budget(answers: Answers) -> list[NetworkBudget]:
    """The address budget of every network of a valid answers file, in file order."""
    rows = []
    for name, net in answers.networks.items():
        cidr = net.cidr()
        sizes: dict[str, int] = {range_name: block.size for range_name in net.ranges
                                 if (block := net.block(range_name)) is not None}
        rows.append(
            NetworkBudget(
                name=name,
                subnet=str(cidr),
                usable=max(cidr.size - 2, 0),
                in_ranges=sizes,
                host_range=sizes.get("host", 0),
                needed=len(answers.nodes_needing(name)),
            )
        )
    return rows
