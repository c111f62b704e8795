"""The lab's lean Chef client reads HTTP/1.1 answers as they come: by length, in chunks, with
the connection closed after, or kept alive and closed by the server while idle.

goiardi answers by length on a kept-alive connection (``tests/integration/
test_lab_chef_client.py`` runs the client against it); the other framings are served here
by a small asyncio server on loopback that answers each request with the next canned reply.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from wizard.chef.api import ChefError
from wizard.lab.chef_wire import LabChef

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption()).decode()


def reply(status: int, body: bytes, *, chunked: bool = False, close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
    if close:
        head += "Connection: close\r\n"
    if chunked:
        middle = len(body) // 2
        parts = [body[:middle], body[middle:]]
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"".join(
            f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts if p) + b"0\r\n\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def serve(replies: list[bytes], *, close_after: set[int]) -> tuple[asyncio.Server, list]:
    """Answer request N with ``replies[N]``; drop the connection after those in
    ``close_after`` without saying so (an idle keep-alive the server ended)."""
    seen: list[tuple[str, dict[str, str]]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            headers = {}
            while (header := await reader.readline()) != b"\r\n":
                name, _, value = header.decode().partition(":")
                headers[name.lower()] = value.strip()
            await reader.readexactly(int(headers.get("content-length", "0")))
            seen.append((line.decode().split()[1], headers))
            writer.write(replies[len(seen) - 1])
            await writer.drain()
            if len(seen) - 1 in close_after or b"Connection: close" in replies[len(seen) - 1]:
                break
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen


def test_lengths_chunks_and_closed_connections_are_read_alike() -> None:
    body = json.dumps({"name": "n1", "run_list": ["role[a]"]}).encode()

    async def go() -> list:
        server, seen = await serve([
            reply(200, body), reply(200, body, chunked=True), reply(200, body, close=True),
            reply(200, body), reply(404, b'{"error": ["not found"]}'),
            reply(412, b'{"error": ["no such cookbook x"]}'), reply(200, b"file bytes")],
            close_after={3})
        port = server.sockets[0].getsockname()[1]
        async with LabChef(f"http://127.0.0.1:{port}", "n1", KEY) as me:
            for _ in range(4):  # by length, chunked, then closed, then after a reconnect
                assert await me.get("nodes", "n1") == json.loads(body)
            assert await me.get("nodes", "gone") is None
            with pytest.raises(ChefError, match="412 no such cookbook x") as refused:
                await me.request("POST", "/environments/lab/cookbook_versions",
                                 {"run_list": ["x"]})
            assert refused.value.status == 412
            assert await me.get_file(f"http://127.0.0.1:{port}/file_store/abc") == \
                b"file bytes"
        server.close()
        return seen
    seen = asyncio.run(go())
    assert [path for path, _ in seen] == ["/nodes/n1"] * 4 + [
        "/nodes/gone", "/environments/lab/cookbook_versions", "/file_store/abc"]
    for _, headers in seen:  # every request signed as the node, version 1.3
        assert headers["x-ops-userid"] == "n1" and headers["x-ops-sign"].endswith("1.3;")
        assert headers["x-ops-authorization-1"]


def test_a_connection_the_server_drops_while_idle_is_made_again() -> None:
    body = b'{"name": "n1"}'

    async def go() -> int:
        server, seen = await serve([reply(200, body), reply(200, body)], close_after={0})
        port = server.sockets[0].getsockname()[1]
        async with LabChef(f"http://127.0.0.1:{port}", "n1", KEY) as me:
            await me.get("nodes", "n1")
            await asyncio.sleep(0)  # the server's close reaches us, or not yet: both work
            assert await me.get("nodes", "n1") == {"name": "n1"}
        server.close()
        return len(seen)
    assert asyncio.run(go()) == 2


def test_only_plain_http_is_spoken() -> None:
    with pytest.raises(ChefError, match="plain HTTP"):
        LabChef("https://chef.example.com", "n1", KEY)
