"""pyghmi's I/O thread reads without blocking, even while another thread sends on the socket.

pyghmi's own read sets the socket non-blocking and then reads; a send on another thread
sets it blocking in between. The socket here plays that interleaving: it ignores being set
non-blocking, as if the other thread's ``setblocking(1)`` came right after.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pyghmi.ipmi.private.session as pyghmi_session
import pytest

from wizard.hardware import pyghmi_io


class _RacedSocket:
    """A real UDP socket whose ``setblocking(0)`` is undone at once (another thread's send)."""

    def __init__(self, real: socket.socket):
        self.real = real

    def setblocking(self, flag: bool) -> None:
        self.real.setblocking(True)

    def recvfrom(self, size: int, flags: int = 0) -> Any:
        return self.real.recvfrom(size, flags)


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def _read_in_thread(sock: Any) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(pyghmi_session._io_recvfrom(sock, 3000)),
                              daemon=True)
    reader.start()
    return reader, got


def test_a_read_raced_into_blocking_mode_returns_at_once(udp: socket.socket) -> None:
    pyghmi_io.install()
    reader, got = _read_in_thread(_RacedSocket(udp))
    reader.join(10)
    if reader.is_alive():  # blocked: a datagram frees the thread before the test fails
        udp.sendto(b"free", udp.getsockname())
        reader.join(10)
        pytest.fail("the read blocked on a socket set blocking by another thread")
    assert got == [None]


def test_a_waiting_datagram_is_read(udp: socket.socket) -> None:
    pyghmi_io.install()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    try:
        sender.sendto(b"\x06\x00\xff\x07", udp.getsockname())
        reader, got = _read_in_thread(_RacedSocket(udp))
        reader.join(10)
        assert got == [(b"\x06\x00\xff\x07", sender.getsockname())]
    finally:
        sender.close()
