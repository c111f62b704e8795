"""Which lab server each node of the answers is: kept by name, and a node added from a
sweep of the lab lands on the server whose NICs it has (no lab process is needed: the
cabling is a file in the lab directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.answers import Node
from wizard.lab.control import Lab, LabError
from wizard.lab.fleet import plan_fleet
from wizard.lab.overlay import cabled_servers, cabling

SPEC = plan_fleet(6, seed=2, network="127.79.90.0/24")


def node(name: str, server: int | None = None) -> Node:
    """A node with the NICs of lab ``server``, or with NICs no lab server has."""
    macs = (SPEC.bmcs[server].hardware.nic_macs if server is not None
            else [f"52:54:00:00:0{len(name)}:{ord(name[-1]) % 100:02d}"])
    return Node(name=name, macs=macs)


def test_a_first_file_is_cabled_in_order_and_keeps_its_servers(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    assert cabling(lab, [node("a"), node("b"), node("c")], SPEC) == {"a": 0, "b": 1, "c": 2}
    assert cabling(lab, [node("c"), node("a")], SPEC) == {"c": 2, "a": 0}
    assert cabled_servers(lab, ["a", "b", "x"]) == {"a": 0, "b": 1}


def test_a_node_swept_from_the_lab_gets_the_server_it_was_found_on(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    cabling(lab, [node("a"), node("b")], SPEC)
    found = node("found", server=5)
    assert cabling(lab, [node("a"), node("b"), found, node("other")], SPEC) == {
        "a": 0, "b": 1, "found": 5, "other": 2}


def test_a_new_node_with_the_nics_of_a_taken_server_is_refused(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    cabling(lab, [node("a"), node("b")], SPEC)
    with pytest.raises(LabError, match="node again has the NICs of lab server 1, which node b "
                       "is on"):
        cabling(lab, [node("a"), node("b"), node("again", server=1)], SPEC)
    assert cabled_servers(lab, ["a", "b", "again"]) == {"a": 0, "b": 1}, "nothing recorded"


def test_more_nodes_than_servers_says_how_to_rack_more(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    with pytest.raises(LabError, match=r"6 servers and the answers 8 nodes: `crowbar-wizard "
                       r"lab rack 2` racks more"):
        cabling(lab, [node(f"n{i}") for i in range(8)], SPEC)
