"""Node addresses: every node that joins a network gets one, deterministically.

A pinned address (``node.addresses[network]``, or ``bmc_address`` on the BMC network) is
kept; the other nodes take the free host-range addresses in node order. The same answers
always give the same addresses, so DHCP reservations, Chef attributes and templates agree.
"""

from __future__ import annotations

from wizard.answers import Answers, Node


def node_addresses(answers: Answers) -> dict[str, dict[str, str]]:
    """``{node name: {network: address}}`` for every node and network it joins.

    Expects valid answers: host ranges are large enough for the nodes that need them.
    """
    result: dict[str, dict[str, str]] = {node.name: {} for node in answers.nodes}
    for network, net in answers.networks.items():
        needing = answers.nodes_needing(network)
        if not needing:
            continue
        pinned = {
            node.name: address
            for node in needing
            if (address := _pinned(answers, node, network)) is not None
        }
        taken = set(pinned.values())
        block = net.block("host")  # valid answers: there is one when a node is not pinned
        free = (str(ip) for ip in (() if block is None else block) if str(ip) not in taken)
        for node in needing:
            result[node.name][network] = pinned.get(node.name) or next(free)
    return result


def _pinned(answers: Answers, node: Node, network: str) -> str | None:
    if network == answers.bmc.network and node.bmc_address is not None:
        return node.bmc_address
    return node.addresses.get(network)
