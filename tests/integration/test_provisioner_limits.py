"""Slow and stalled clients against the provisioner's HTTP service, over real sockets.

The service runs in its own process exactly as ``pxe serve`` and ``apply`` build it
(:func:`wizard.provisioning.serving.provisioner_server`), with short timeouts and a low
descriptor limit.
Many clients send half a request and stall: they are closed after the timeout, a
well-behaved client is served meanwhile, and the log has no traceback, also when the
process runs out of descriptors.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.terminal import wait_listening
from wizard.lab.goiardi import free_port
from wizard.provisioning.serving import BACKLOG, BURSTS, MAX_CONNECTIONS, RESERVED_DESCRIPTORS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
HALF_REQUEST = b"GET /boot/52:54:00:aa:bb:01 HTTP/1.1\r\nHost: pxe\r\nX-Slow: "
PATIENCE = 60.0
"""How long a condition may take before the test fails (generous: the machine is shared)."""


class Service:
    """The provisioner process and its log."""

    def __init__(self, tmp: Path, *, request_timeout: float, send_timeout: float = 60,
                 max_connections: int = 0, nofile: int = 0):
        self.port = free_port()
        self.log = tmp / "provisioner.log"
        (tmp / "media").mkdir()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.provisioner_process", str(self.port),
                 str(tmp), str(request_timeout), str(send_timeout), str(max_connections),
                 str(nofile)], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=os.environ | {"PYTHONPATH": str(ROOT)})
        wait_listening(self.port, self.process)

    def text(self) -> str:
        return self.log.read_text()

    def get(self, path: str = "/") -> bytes:
        """A whole request, sent at once; the whole answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=PATIENCE) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: pxe\r\nConnection: close\r\n\r\n"
                         .encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return answer

    def stalled(self, count: int, request: bytes = HALF_REQUEST) -> list[socket.socket]:
        """``count`` connections that each send part of a request and then nothing."""
        clients = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=PATIENCE)
            sock.sendall(request)
            sock.setblocking(False)
            clients.append(sock)
        return clients

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(**options: float) -> Service:
        started.append(Service(tmp_path, **options))
        return started[-1]
    yield start
    for service in started:
        if service.process.poll() is None:
            service.stop()


def closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (EOF or reset), without waiting."""
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"not within {PATIENCE:g} s: {what}"
        time.sleep(0.05)


def wait_all_closed(clients: list[socket.socket]) -> None:
    """Until the server has closed every client (select wakes on EOF)."""
    open_ = list(clients)
    deadline = time.monotonic() + PATIENCE
    while open_:
        assert time.monotonic() < deadline, f"{len(open_)} stalled connections still open"
        ready, _, _ = select.select(open_, [], [], 1.0)
        open_ = [sock for sock in open_ if sock not in ready or not closed(sock)]


def test_stalled_clients_are_closed_and_others_served(services) -> None:
    service = services(request_timeout=2)
    body_stall = (b"POST /inventory HTTP/1.1\r\nHost: pxe\r\nX-Crowbar-Token: t\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    clients = service.stalled(100) + service.stalled(5, body_stall)
    try:
        assert service.get("/").startswith(b"HTTP/1.1 200")
        assert not all(closed(sock) for sock in clients), "served only after the timeout"
        wait_all_closed(clients)
        assert service.get("/").startswith(b"HTTP/1.1 200")
    finally:
        for sock in clients:
            sock.close()
    service.stop()
    log = service.text()
    assert "Traceback" not in log, log
    assert "connections that sent no whole request in 2 s" in log


def test_at_the_connection_limit_the_longest_waiting_make_room(services) -> None:
    """Stalled clients cannot hold every connection: a new one pushes out the one that has
    waited longest, so a client that sends its request at once is served."""
    service = services(request_timeout=600, max_connections=50)
    clients = service.stalled(80)
    try:
        wait_all_closed(clients[:30])
        assert service.get("/").startswith(b"HTTP/1.1 200")
        assert not any(closed(sock) for sock in clients[-49:])
    finally:
        for sock in clients:
            sock.close()
    service.stop()
    log = service.text()
    assert "Traceback" not in log, log
    assert "connections closed at the limit of 50 open ones" in log


@pytest.mark.parametrize(("soft", "hard", "limit", "raised"), [
    (384, 384, 384 - BURSTS * BACKLOG - RESERVED_DESCRIPTORS, 384),
    (384, 2000, MAX_CONNECTIONS, 2000),
])
def test_the_default_limit_leaves_descriptors_free(soft: int, hard: int, limit: int,
                                                   raised: int) -> None:
    """The soft descriptor limit is raised to the hard one; connections leave room below it
    (in a process of its own: a lowered hard limit cannot be raised again)."""
    code = ("import resource; from wizard.provisioning.serving import connection_limit; "
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard})); "
            "print(connection_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == [str(limit), str(raised)]


def test_running_out_of_descriptors_logs_one_line(services) -> None:
    """A limit set above what the descriptors allow: accepts fail, and say so in one line."""
    service = services(request_timeout=2, max_connections=1000, nofile=48)
    clients = service.stalled(120)
    try:
        wait_until(lambda: "out of descriptors" in service.text(), "accept fails")
        wait_all_closed(clients)
        assert service.get("/").startswith(b"HTTP/1.1 200")
    finally:
        for sock in clients:
            sock.close()
    service.stop()
    log = service.text()
    assert "Traceback" not in log, log
    assert log.count("out of descriptors") == 1, log


def test_a_client_that_stops_reading_is_dropped(services, tmp_path: Path) -> None:
    service = services(request_timeout=60, send_timeout=1)
    (tmp_path / "media" / "initrd").write_bytes(os.urandom(32 * 1024 * 1024))
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=PATIENCE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(b"GET /media/initrd HTTP/1.1\r\nHost: pxe\r\n\r\n")
        wait_until(lambda: "dropped 1 responses stalled for 1 s" in service.text(),
                   "the stalled response is dropped")
        assert service.get("/").startswith(b"HTTP/1.1 200")
    finally:
        sock.close()
    service.stop()
    assert "Traceback" not in service.text(), service.text()
