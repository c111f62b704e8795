"""``crowbar-wizard serve-web`` as a client on the admin node or a hostile web page would
see it: the real server on loopback, spoken to with aiohttp's client.

Without the token it printed nothing is served but the public static files; a Host that
is not the server's own (DNS rebinding) or an Origin of another site is refused with 403;
sessions are capped; the token is never in the server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.terminal import wait_listening
from wizard.lab.goiardi import free_port

EXAMPLE = Path("answers/examples/lab-small.yaml").resolve()
URL_LINE = re.compile(r"http://127\.0\.0\.1:(?P<port>\d+)/\?token=(?P<token>[A-Za-z0-9_-]+)")


@dataclass
class Served:
    port: int
    token: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def stop(self) -> str:
        """Stop the server; what it printed after its first line."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        if self.reader is not None:
            self.reader.join(timeout=20)
        return "".join(self.output[1:])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.base

    @property
    def url(self) -> str:
        return f"{self.base}/?token={self.token}"


@contextlib.contextmanager
def serving(tmp_path: Path, *extra: str) -> Iterator[Served]:
    (tmp_path / "lab.yaml").write_text(EXAMPLE.read_text())
    port = free_port()
    env = os.environ | {"CROWBAR_STATE_DIR": str(tmp_path / "state"),
                        "CROWBAR_LAB_DIR": str(tmp_path / "lab")}
    process = subprocess.Popen([sys.executable, "-m", "wizard.cli", "serve-web", "lab.yaml",
                                "--listen", f"127.0.0.1:{port}", *extra], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    assert process.stdout is not None
    served = Served(port, "", process)
    try:
        first = process.stdout.readline()
        served.output.append(first)
        found = URL_LINE.search(first)
        assert found, f"serve-web printed no URL with a token: {first!r}"
        served.token = found["token"]
        assert int(found["port"]) == port
        # the rest of the output is read as it comes, so the pipe never fills
        served.reader = threading.Thread(target=served.output.extend, args=(process.stdout,),
                                         daemon=True)
        served.reader.start()
        wait_listening(port, process)
        yield served
    finally:
        served.stop()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as server:
        yield server


async def status(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with (aiohttp.ClientSession() as http,
                http.get(url, headers=headers or {}, allow_redirects=False) as response):
        return response.status, await response.text()


async def websocket_status(url: str, origin: str | None) -> int:
    """The HTTP status of a websocket handshake (101 when it opened)."""
    headers = {"Origin": origin} if origin else {}
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url, headers=headers):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def ws_url(served: Served, token: str | None = None) -> str:
    return f"ws://127.0.0.1:{served.port}/ws/{served.token if token is None else token}"


def test_nothing_but_static_files_without_the_token(served: Served) -> None:
    assert asyncio.run(status(served.base + "/"))[0] == 403
    assert asyncio.run(status(served.base + "/?token=" + "x" * len(served.token)))[0] == 403
    assert asyncio.run(status(served.base + "/?token=" + served.token[:-1]))[0] == 403
    assert asyncio.run(status(served.base + "/?token=%C3%A9%00"))[0] == 403
    assert asyncio.run(status(served.base + "/ws"))[0] == 403
    assert asyncio.run(status(served.base + "/download/anything"))[0] == 403
    assert asyncio.run(websocket_status(ws_url(served, "wrong"), served.origin)) == 403
    assert asyncio.run(status(served.base + "/static/js/textual.js"))[0] == 200


def test_the_printed_url_serves_the_page_and_its_websocket(served: Served) -> None:
    code, page = asyncio.run(status(served.url))
    assert code == 200
    assert f'data-session-websocket-url="{ws_url(served)}"' in page
    assert asyncio.run(websocket_status(ws_url(served), served.origin)) == 101


def test_another_host_or_origin_is_refused(served: Served) -> None:
    other = f"http://127.0.0.1:{free_port()}"
    for host in ("evil.example", f"evil.example:{served.port}", "127.0.0.1.nip.io",
                 "[::2]", "127.0.0.1:80@evil"):
        code, text = asyncio.run(status(served.url, {"Host": host}))
        assert code == 403, host
        assert "Host" in text
    for origin in (other, "http://evil.example", "null", f"https://127.0.0.1:{served.port}"):
        code, text = asyncio.run(status(served.url, {"Origin": origin}))
        assert code == 403, origin
        assert "Origin" in text
        assert asyncio.run(websocket_status(ws_url(served), origin)) == 403
    assert asyncio.run(websocket_status(ws_url(served), None)) == 403, "a browser sends one"
    for host in (f"localhost:{served.port}", "localhost:9000"):  # ssh -L may change the port
        assert asyncio.run(status(served.url, {"Host": host}))[0] == 200
    assert asyncio.run(status(served.url, {"Origin": served.origin}))[0] == 200


async def open_session(http: aiohttp.ClientSession, served: Served,
                       ) -> aiohttp.ClientWebSocketResponse:
    """A session's websocket, once its wizard runs (it sent something)."""
    websocket = await http.ws_connect(ws_url(served), headers={"Origin": served.origin})
    await websocket.receive(timeout=60)
    return websocket


async def capped(served: Served) -> None:
    async with aiohttp.ClientSession() as http:
        first = await open_session(http, served)
        async with http.get(served.url) as page:
            assert page.status == 503
            assert "--max-sessions" in await page.text()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await open_session(http, served)
        assert refused.value.status == 503
        await first.close()
        for _ in range(600):  # its wizard stopped: the place is free again
            async with http.get(served.url) as page:
                if page.status == 200:
                    break
            await asyncio.sleep(0.05)
        await (await open_session(http, served)).close()


def test_sessions_are_capped(tmp_path: Path) -> None:
    with serving(tmp_path, "--max-sessions", "1") as served:
        asyncio.run(capped(served))
        assert served.token not in served.stop()


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_max_sessions_must_be_a_positive_number(value: str) -> None:
    result = subprocess.run([sys.executable, "-m", "wizard.cli", "serve-web",
                             "--max-sessions", value], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "--max-sessions" in result.stderr and "at least 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_token_is_never_logged(served: Served) -> None:
    asyncio.run(status(served.url))
    asyncio.run(websocket_status(ws_url(served), served.origin))
    plain = ws_url(served).replace("ws:", "http:")  # the websocket's URL, as a plain GET
    assert asyncio.run(status(plain, {"Origin": served.origin}))[0] == 400
    asyncio.run(status(served.url, {"Host": "evil.example"}))
    asyncio.run(status(served.url, {"Origin": "http://evil.example"}))
    later = served.stop()
    assert "refused" in later, "refusals are logged"
    assert served.token not in later
    assert "Traceback" not in later


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_client_that_never_finishes_its_request_is_closed(tmp_path: Path) -> None:
    """Slow clients: connections that send half a request line, half the headers, or nothing
    are closed after --request-timeout, while a prompt client is served meanwhile and an open
    session's websocket outlives it."""
    with serving(tmp_path, "--request-timeout", "2") as served:
        async def session_outlives_the_timeout() -> bool:
            async with aiohttp.ClientSession() as http, http.ws_connect(
                    ws_url(served), headers={"Origin": served.origin}) as ws:
                await asyncio.sleep(4)  # twice the timeout: the session must stay open
                return not ws.closed
        stalled = []
        for partial in (b"", b"GET /?tok", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"):
            sock = socket.create_connection(("127.0.0.1", served.port))
            sock.sendall(partial)
            stalled.append(sock)
        try:
            assert asyncio.run(status(served.url))[0] == 200
            assert asyncio.run(session_outlives_the_timeout())
            assert [_closed_by_server(sock, within=20) for sock in stalled] == [True] * 3
        finally:
            for sock in stalled:
                sock.close()
        assert "Traceback" not in served.stop()
