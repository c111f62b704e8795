"""The Chef Server API over httpx: signed requests, retries, create-or-update of objects.

One :class:`ChefServer` holds one pooled ``httpx.AsyncClient``. Every request is signed
(``wizard.chef.signing``); connection errors and 5xx answers are retried with
exponential backoff; 401 and 403 raise :class:`ChefAuthError` at once, naming the client
(a wrong key does not get better by asking again). Errors carry the server's message,
never the key.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx

from wizard.chef.signing import SignVersion, load_key, sign_headers

CHEF_VERSION = "12.0.0"
Outcome = Literal["created", "updated", "unchanged"]
log = logging.getLogger("wizard.chef")


class ChefError(RuntimeError):
    """A Chef API request that failed (after its retries)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ChefAuthError(ChefError):
    """The server refused who we are (401/403): never retried."""


@dataclass
class Retry:
    """How often and how patiently to retry connection errors and 5xx answers."""

    attempts: int = 5
    backoff: float = 0.2
    """Seconds before the first retry; doubles each time."""
    max_backoff: float = 5.0


class ChefServer:
    """A Chef server (or an organization on one), as one client."""

    def __init__(self, url: str, client_name: str, key_pem: str | bytes, *,
                 organization: str | None = None, sign_version: SignVersion = "1.3",
                 api_version: str = "0", timeout: float = 30.0, retry: Retry | None = None,
                 max_connections: int = 8,
                 on_request: Callable[[str, str], None] | None = None):
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ChefError(f"Chef server URL {url!r} is not http(s)://HOST[:PORT][/PATH]")
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path + (f"/organizations/{organization}" if organization else "")
        self.client_name = client_name
        self._key = load_key(key_pem, f"Chef client {client_name!r}")
        self.sign_version = sign_version
        self.api_version = api_version
        self.retry = retry or Retry()
        self._on_request = on_request
        self._bag_locks: dict[str, asyncio.Lock] = {}
        self._http = httpx.AsyncClient(
            base_url=self.base, timeout=timeout,
            verify=parts.scheme == "https",  # plain HTTP: skip loading CA certificates (~20 ms)
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
        )

    async def __aenter__(self) -> ChefServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # --- requests ------------------------------------------------------------------------

    async def request(self, method: str, path: str, body: Any = None,
                      missing_ok: bool = False) -> Any:
        """One signed API call; the decoded JSON answer (None for 404 when ``missing_ok``)."""
        full = self.prefix + path
        data = b"" if body is None else json.dumps(body, sort_keys=True).encode()
        content = {} if body is None else {"Content-Type": "application/json"}
        response = await self._send(method, full, full, data, content, missing_ok)
        return None if response is None else self._json(response, method, full)

    async def put_file(self, url: str, data: bytes) -> None:
        """Upload a cookbook file to the URL a sandbox gave for it, as knife does: signed
        (for the URL's path), as ``application/x-binary`` with its ``Content-MD5``. The URL
        is absolute and may be another host's (a Chef Infra Server's bookshelf, whose answer
        is not JSON: it is not read)."""
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        await self._send("PUT", url, urlsplit(url).path, data,
                         {"Content-Type": "application/x-binary", "Content-MD5": md5})

    async def get_file(self, url: str) -> bytes:
        """A cookbook file from the URL a depsolve gave for it, as chef-client fetches it:
        signed for the URL's path (the server may store it elsewhere)."""
        response = await self._send("GET", url, urlsplit(url).path, b"", {})
        assert response is not None  # only missing_ok gives None
        return response.content

    async def _send(self, method: str, url: str, path: str, data: bytes,
                    extra: dict[str, str], missing_ok: bool = False) -> httpx.Response | None:
        """Send with retries; the 2xx answer (None for 404 when ``missing_ok``)."""
        delay = self.retry.backoff
        for attempt in range(1, self.retry.attempts + 1):
            headers = sign_headers(self._key, self.sign_version, method, path, data,
                                   self.client_name, api_version=self.api_version)
            headers |= {"Accept": "application/json", "X-Chef-Version": CHEF_VERSION} | extra
            if self._on_request is not None:
                self._on_request(method, path)
            try:
                response = await self._http.request(method, url, headers=headers,
                                                    content=data)
            except httpx.TransportError as exc:
                problem, status = f"{type(exc).__name__}: {exc}".rstrip(": "), None
            else:
                status = response.status_code
                if status < 300:
                    return response
                if status == 404 and missing_ok:
                    return None
                message = _server_message(response)
                if status in (401, 403):
                    raise ChefAuthError(
                        f"the Chef server at {self.base} refused client {self.client_name!r} "
                        f"({status}): {message}", status)
                if status < 500:
                    raise ChefError(f"{method} {path}: {status} {message}", status)
                problem = f"{status} {message}"
            if attempt == self.retry.attempts:
                raise ChefError(f"{method} {path}: {problem} (gave up after {attempt} tries)",
                                status)
            log.info("%s %s: %s; retry %d in %.1f s", method, path, problem, attempt, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry.max_backoff)
        raise AssertionError("unreachable")

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        """A 2xx answer's JSON. A Chef server answers JSON; anything else at the URL (a web
        server, a login page) is not one, and asking again does not make it one."""
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise ChefError(f"not a Chef server: {method} {self.base}{path} answered "
                            f"{response.status_code} {kind}, not JSON") from None

    # --- objects -------------------------------------------------------------------------

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """An environment, role, node or client by name (None when there is none)."""
        found: dict[str, Any] | None = await self.request(
            "GET", f"/{kind}/{quote(name, safe='')}", missing_ok=True)
        return found

    async def delete(self, kind: str, name: str) -> bool:
        """Delete an object; False when it was not there."""
        found = await self.request("DELETE", f"/{kind}/{quote(name, safe='')}",
                                   missing_ok=True)
        return found is not None

    async def list(self, kind: str) -> list[str]:
        return sorted(await self.request("GET", f"/{kind}"))

    async def upsert(self, kind: str, body: dict[str, Any], *, merge: bool = False,
                     known_missing: bool = False) -> Outcome:
        """Create ``body`` (an environment, role or node), or update it where it differs.

        With ``merge`` (nodes: chef-client writes attributes of its own), what the server
        holds beside ``body`` is kept; otherwise ``body`` replaces it. ``known_missing``
        (a listing just said it is not there) saves the read before creating.
        """
        name = body["name"]
        if known_missing and await self._create(f"/{kind}", body):
            return "created"
        current = await self.get(kind, name)
        if current is None:
            await self.request("POST", f"/{kind}", body)
            return "created"
        if _holds(current, body, deep=merge):
            return "unchanged"
        await self.request("PUT", f"/{kind}/{quote(name, safe='')}",
                           _merged(current, body) if merge else body)
        return "updated"

    async def _create(self, collection: str, body: dict[str, Any]) -> bool:
        """POST a new object; False when it exists after all (409)."""
        try:
            await self.request("POST", collection, body)
        except ChefError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def ensure_data_bag(self, bag: str) -> bool:
        """Create the data bag unless it exists; True when it was made."""
        return await self._create("/data", {"name": bag})

    async def delete_data_bag(self, bag: str) -> bool:
        """Delete a data bag and its items; False when it was not there."""
        found = await self.request("DELETE", f"/data/{quote(bag)}", missing_ok=True)
        return found is not None

    async def get_item(self, bag: str, item: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self.request(
            "GET", f"/data/{quote(bag)}/{quote(item)}", missing_ok=True)
        return found

    async def list_items(self, bag: str) -> builtins.list[str]:  # list: the method above
        found = await self.request("GET", f"/data/{quote(bag)}", missing_ok=True)
        return sorted(found or {})

    async def delete_item(self, bag: str, item: str) -> bool:
        async with self._bag_locks.setdefault(bag, asyncio.Lock()):
            found = await self.request("DELETE", f"/data/{quote(bag)}/{quote(item)}",
                                       missing_ok=True)
        return found is not None

    async def upsert_item(self, bag: str, body: dict[str, Any], *,
                          known_missing: bool = False) -> Outcome:
        """Create or update a data bag item (its ``id`` names it).

        Writes to one bag go one at a time: goiardi loses items POSTed to a bag at once
        (seen with 0.11.10: 201 Created, then 404).
        """
        async with self._bag_locks.setdefault(bag, asyncio.Lock()):
            if known_missing and await self._create(f"/data/{quote(bag)}", body):
                return "created"
            return await self._upsert_item(bag, body)

    async def _upsert_item(self, bag: str, body: dict[str, Any]) -> Outcome:
        current = await self.get_item(bag, body["id"])
        if current is None:
            await self.request("POST", f"/data/{quote(bag)}", body)
            return "created"
        if _holds(current, body):
            return "unchanged"
        await self.request("PUT", f"/data/{quote(bag)}/{quote(body['id'])}", body)
        return "updated"

    async def create_client(self, name: str, *, rotate: bool = False,
                            public_key: str | None = None) -> str | None:
        """Make an API client; its new private key (PEM), made by the server. With
        ``public_key`` (PEM) the client keeps its own key pair and None is returned. An
        existing client is kept and gives None, unless ``rotate``, which gives it a new key."""
        body: dict[str, Any] = {"name": name, "admin": False}
        if public_key is not None:
            body["public_key"] = public_key
        try:
            made = await self.request("POST", "/clients", body)
            if public_key is not None:
                return None
        except ChefError as exc:
            if exc.status != 409 or public_key is not None:
                raise
            if not rotate:
                return None
            made = await self.request("PUT", f"/clients/{quote(name)}",
                                      {"name": name, "private_key": True})
        return made.get("private_key") or (made.get("chef_key") or {}).get("private_key")


def _holds(current: dict[str, Any], wanted: dict[str, Any], *, deep: bool = False) -> bool:
    """Whether the server's object already has every field we would send (``deep``: every
    leaf, other keys of nested mappings allowed)."""
    for key, value in wanted.items():
        have = current.get(key)
        if deep and isinstance(value, dict) and isinstance(have, dict):
            if not _holds(have, value, deep=True):
                return False
        elif have != value:
            return False
    return True


def _merged(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    out = dict(current)
    for key, value in wanted.items():
        have = out.get(key)
        out[key] = (_merged(have, value) if isinstance(value, dict) and isinstance(have, dict)
                    else value)
    return out


def _server_message(response: httpx.Response) -> str:
    return server_message(response.content, response.reason_phrase)


def server_message(answer: bytes, reason: str = "") -> str:
    """The error a Chef server's answer gives (its JSON ``error``), else ``reason``."""
    try:
        error = json.loads(answer).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, list):
        error = "; ".join(map(str, error))
    return str(error or reason or "no message")[:300]
