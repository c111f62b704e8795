"""Retries of the Chef driver on server errors (5xx), and a URL that is no Chef server.

A stand-in HTTP server (stdlib ``http.server`` on loopback) plays the Chef server here: a
fake, because goiardi, the real server the other Chef tests use, cannot be made to answer
503 on demand. It answers each path from a script of statuses and records what it got.
Another, a plain web server answering HTML, is what a wrong ``chef.server_url`` reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.unit.base_answers import BASE
from wizard.chef.api import ChefError, ChefServer, Retry
from wizard.cli.main import main


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` on a loopback port, in a thread, for the ``with`` block; its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Script:
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.seen: list[tuple[str, str, str]] = []


@pytest.fixture
def stand_in() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.seen.append(("GET", self.path, self.headers.get("X-Ops-Authorization-1",
                                                                   "")))
            status = script.statuses.pop(0) if script.statuses else 200
            body = json.dumps({"name": "x"} if status == 200 else {"error": ["busy"]}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url, script


@pytest.fixture(scope="module")
def key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def get(url: str, key_pem: str, attempts: int) -> dict | None:
    async def go() -> dict | None:
        async with ChefServer(url, "crowbar", key_pem,
                              retry=Retry(attempts=attempts, backoff=0.01)) as chef:
            return await chef.get("roles", "x")
    return asyncio.run(go())


def test_5xx_is_retried_with_a_fresh_signature(stand_in: tuple[str, Script],
                                               key_pem: str) -> None:
    url, script = stand_in
    script.statuses = [503, 502]
    assert get(url, key_pem, attempts=3) == {"name": "x"}
    assert [path for _, path, _ in script.seen] == ["/roles/x"] * 3
    assert all(auth for _, _, auth in script.seen)


def test_gives_up_after_its_attempts_naming_the_request(stand_in: tuple[str, Script],
                                                        key_pem: str) -> None:
    url, script = stand_in
    script.statuses = [500] * 5
    with pytest.raises(ChefError) as failed:
        get(url, key_pem, attempts=2)
    message = str(failed.value)
    assert message == "GET /roles/x: 500 busy (gave up after 2 tries)"
    assert len(script.seen) == 2 and "PRIVATE" not in message


def test_4xx_other_than_404_is_not_retried(stand_in: tuple[str, Script], key_pem: str) -> None:
    url, script = stand_in
    script.statuses = [400]
    with pytest.raises(ChefError, match="400 busy"):
        get(url, key_pem, attempts=5)
    assert len(script.seen) == 1


@pytest.fixture
def web_server() -> Iterator[str]:
    """A plain web server (not a Chef server) that answers 200 with HTML to everything."""
    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = b"<!doctype html><title>Welcome</title><p>It works!"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = answer

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url


def test_a_web_server_answering_html_is_not_a_chef_server(web_server: str, key_pem: str,
                                                          tmp_path: Path, capsys) -> None:
    with pytest.raises(ChefError) as caught:
        get(web_server, key_pem, attempts=3)
    assert str(caught.value) == (f"not a Chef server: GET {web_server}/roles/x answered 200 "
                                 "text/html, not JSON")
    answers, key = tmp_path / "a.yaml", tmp_path / "key.pem"
    answers.write_text(BASE)
    key.write_text(key_pem)
    assert main(["chef", "push", str(answers), "--server", web_server, "--client", "crowbar",
                 "--key", str(key)]) == 1
    err = capsys.readouterr().err
    assert "push failed: 1 of 1 cookbooks could not be uploaded, so nothing that pins them " \
        "was pushed" in err
    assert (f"not pushed: cookbook ntp: not a Chef server: GET {web_server}/cookbooks/ntp/"
            "1.0.0 answered 200 text/html, not JSON") in err
    assert "Traceback" not in err
