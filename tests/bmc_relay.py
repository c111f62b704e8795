"""A BMC whose logins hang: a UDP relay in front of a real (lab) BMC that passes its pings
and session set-up on but never RAKP 1, the step where a BMC checks the user. pyghmi
then retries the login for minutes, as it does with BMCs that ignore unknown users."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

RMCP_PLUS, RAKP_1 = 0x06, 0x12


@dataclass
class HangingLogins:
    """Where the relay listens, and an event set once a login has reached RAKP 1."""

    port: int
    login_started: threading.Event = field(default_factory=threading.Event)


@contextmanager
def hanging_logins(bmc: tuple[str, int]) -> Iterator[HangingLogins]:
    """Relay 127.0.0.1:PORT to ``bmc``, dropping RAKP 1 (one client at a time)."""
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", 0))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.connect(bmc)
    relay = HangingLogins(front.getsockname()[1])
    client: list[tuple[str, int]] = []
    stop = threading.Event()
    for sock in (front, back):
        sock.settimeout(0.1)  # to see ``stop``

    def forward() -> None:
        while not stop.is_set():
            try:
                data, sender = front.recvfrom(4096)
            except TimeoutError:
                continue
            client[:] = [sender]
            if len(data) > 5 and data[4] == RMCP_PLUS and data[5] & 0x3F == RAKP_1:
                relay.login_started.set()
                continue
            back.send(data)

    def answer() -> None:
        while not stop.is_set():
            try:
                data = back.recv(4096)
            except TimeoutError:
                continue
            if client:
                front.sendto(data, client[0])

    threads = [threading.Thread(target=run, daemon=True) for run in (forward, answer)]
    for thread in threads:
        thread.start()
    try:
        yield relay
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        front.close()
        back.close()
