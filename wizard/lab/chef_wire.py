"""A lean Chef API client for the lab's chef-clients: signed requests over one kept-alive
HTTP/1.1 connection on asyncio streams.

The lab plays a thousand chef-clients on the admin node's own CPUs, and ``httpx`` spends
~1.7 ms of Python per request here, more than the RSA signature: a thousand servers' first
runs make some 40,000 requests. Requests are signed as :class:`wizard.chef.api.ChefServer`
signs them (:func:`wizard.chef.signing.sign_headers`, version 1.3), and answers read as
HTTP/1.1 says (a length, or chunks). Only for a plain-HTTP server on the lab's loopback: the
engine and every real server keep :class:`wizard.chef.api.ChefServer`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, urlsplit

from wizard.chef.api import ChefError, server_message
from wizard.chef.signing import load_key, sign_headers


class LabChef:
    """One client (a lab server's node name and key) of a plain-HTTP Chef server."""

    def __init__(self, url: str, client_name: str, key_pem: str,
                 organization: str | None = None):
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme != "http" or parts.hostname is None:
            raise ChefError(f"the lab's Chef client speaks plain HTTP, not {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path + (f"/organizations/{organization}" if organization else "")
        self.client_name = client_name
        self._key = load_key(key_pem, f"lab client {client_name!r}")
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def __aenter__(self) -> LabChef:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self.request(
            "GET", f"/{kind}/{quote(name, safe='')}", missing_ok=True)
        return found

    async def request(self, method: str, path: str, body: Any = None,
                      missing_ok: bool = False) -> Any:
        """A signed API call; its JSON answer (None for 404 with ``missing_ok``)."""
        full = self.prefix + path
        data = b"" if body is None else json.dumps(body, sort_keys=True).encode()
        status, answer = await self._exchange(method, full, data)
        if status == 404 and missing_ok:
            return None
        if status >= 300:
            raise ChefError(f"{method} {full}: {status} {server_message(answer)}", status)
        return json.loads(answer) if answer else {}

    async def get_file(self, url: str) -> bytes:
        """A cookbook file from the URL a depsolve gave, signed for its path."""
        status, answer = await self._exchange("GET", urlsplit(url).path, b"")
        if status >= 300:
            raise ChefError(f"GET {url}: {status} {server_message(answer)}", status)
        return answer

    async def _exchange(self, method: str, path: str, data: bytes) -> tuple[int, bytes]:
        headers = sign_headers(self._key, "1.3", method, path, data, self.client_name)
        headers |= {"Host": f"{self.host}:{self.port}", "Accept": "application/json",
                    "X-Chef-Version": "12.0.0", "Content-Length": str(len(data))}
        if data:
            headers["Content-Type"] = "application/json"
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            reused = self._streams is not None
            if self._streams is None:
                self._streams = await asyncio.open_connection(self.host, self.port)
            reader, writer = self._streams
            try:
                writer.write(head.encode() + data)
                await writer.drain()
                return await self._answer(reader)
            except (ConnectionError, asyncio.IncompleteReadError, EOFError) as exc:
                await self.close()
                if not reused or attempt == 2:
                    raise OSError(f"{method} {path}: {exc or type(exc).__name__}") from None
        raise AssertionError("unreachable")

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        status_line = await reader.readline()
        if not status_line:
            raise EOFError("the server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = value == "close"
        if chunked:
            body = bytearray()
            while size := int((await reader.readline()).split(b";")[0], 16):
                body += await reader.readexactly(size)
                await reader.readline()
            await reader.readline()  # the trailer's end
            answer = bytes(body)
        else:
            answer = await reader.readexactly(length)
        if close:
            await self.close()
        return status, answer

