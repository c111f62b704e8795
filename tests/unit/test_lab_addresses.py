"""Which loopback addresses a lab may take, and what holds the ones it may not: real sockets
on 127.85.0.0/16 (no lab, no fleet process)."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wizard.lab.addresses import free_block, holders, problem, unavailable
from wizard.lab.control import AddressesUnavailable, Lab
from wizard.lab.fleet import default_port, plan_fleet

Endpoint = tuple[str, int]


@pytest.fixture
def hold() -> Iterator[Callable[..., Endpoint]]:
    """``hold(address, port=0)`` binds a UDP socket there (port 0: a free one) for the
    test, as a BMC would, and gives back what it bound."""
    sockets: list[socket.socket] = []

    def bind(address: str, port: int = 0) -> Endpoint:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sockets.append(sock)
        sock.bind((address, port))
        return sock.getsockname()

    try:
        yield bind
    finally:
        for sock in sockets:
            sock.close()


def test_a_bound_address_is_unavailable_and_its_neighbour_free(hold: Callable) -> None:
    _, port = hold("127.85.0.1")
    assert unavailable([("127.85.0.1", port), ("127.85.0.2", port)]) == {
        ("127.85.0.1", port): errno.EADDRINUSE}


def test_an_address_of_no_interface_is_not_on_this_machine() -> None:
    assert unavailable([("198.51.100.1", 10623)]) == {("198.51.100.1", 10623): errno.EADDRNOTAVAIL}


def test_what_holds_an_address_is_named_by_its_pid_and_command(hold: Callable) -> None:
    endpoint = hold("127.85.0.3")
    assert holders([endpoint]) == [f"pid {os.getpid()} ({_command()})"]
    assert holders([("127.85.0.4", endpoint[1])]) == []


def test_the_free_block_skips_one_with_any_address_held(hold: Callable) -> None:
    _, port = hold("127.85.0.200")  # not among a small lab's addresses: still its block
    assert free_block(port, first="127.85.0.0/24", within="127.85.0.0/16") == "127.85.1.0/24"
    assert free_block(port, first="127.85.1.0/24", within="127.85.0.0/16") == "127.85.1.0/24"
    assert free_block(port, first="127.85.0.0/24", within="127.85.0.0/24") is None


def test_a_dual_stack_socket_on_the_port_holds_every_block() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as wildcard:
        wildcard.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        wildcard.bind(("::", 0))
        port = wildcard.getsockname()[1]
        assert free_block(port, first="127.85.0.0/24", within="127.85.0.0/16") is None
        assert holders([("127.85.0.1", port)]) == [f"pid {os.getpid()} ({_command()})"]


def test_the_problem_counts_the_addresses_and_names_the_holder(hold: Callable) -> None:
    _, port = hold("127.85.0.5")
    hold("127.85.0.6", port)
    endpoints = [(f"127.85.0.{i}", port) for i in range(4, 8)]
    assert problem(endpoints, unavailable(endpoints)) == (
        f"127.85.0.5:{port} and 1 more of the 4 BMC addresses are in use by pid {os.getpid()} "
        f"({_command()})")


def test_lab_up_on_a_held_block_starts_nothing_and_says_what_holds_it(
        hold: Callable, tmp_path: Path) -> None:
    hold("127.85.2.2", default_port())
    with pytest.raises(AddressesUnavailable) as raised:
        Lab(tmp_path / "lab").up(3, network="127.85.2.0/24")
    assert str(raised.value) == (
        f"127.85.2.2:{default_port()} is in use by pid {os.getpid()} ({_command()}); give "
        "another --network, or none to take a free block")
    assert not (tmp_path / "lab").exists()


def test_lab_up_off_this_machine_starts_nothing(tmp_path: Path) -> None:
    with pytest.raises(AddressesUnavailable, match=r"^198\.51\.100\.1:\d+ and 1 more of the 2 BMC "
                       r"addresses are not on this machine: .* loopback block \(127\.0\.0\.0/8\)"):
        Lab(tmp_path / "lab").up(2, network="198.51.100.0/24")
    assert not (tmp_path / "lab").exists()


@pytest.mark.parametrize(("network", "message"), [
    ("garbage", "'garbage' is not a network (CIDR, e.g. 127.1.0.0/22)"),
    ("::1/128", "::1/128 is not an IPv4 block (the lab's BMCs are on 127.0.0.0/8)"),
])
def test_a_network_that_is_no_ipv4_block_is_refused_in_words(network: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        plan_fleet(1, network=network)
    assert str(raised.value) == message


def _command() -> str:
    argv = Path("/proc/self/cmdline").read_bytes().decode().replace("\0", " ")
    return " ".join(argv.split())[:80]
