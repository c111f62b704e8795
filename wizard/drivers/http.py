"""The provisioner's HTTP service: boot scripts, install files and node callbacks (ASGI).

=========================================  ==================================================
``GET  /boot/{mac}``                       the machine's iPXE script for its current state
``GET  /install/{node}/{file}``            its installer's answer file (user-data, ks.cfg, ...)
``POST /inventory``                        a discovery image's inventory (JSON, token)
``POST /nodes/{node}/installed``           the installer's last step says the OS is in (token)
``GET  /nodes/{node}/validation.pem``      the Chef validator key for bootstrap (token)
``GET  /media/...``                        kernels, initrds and images from ``DIR/media``
=========================================  ==================================================

Callbacks carry the token of their node (or, for inventory, of the booting MAC) in the
``X-Crowbar-Token`` header; a wrong or missing one gets 403 and changes nothing. Every
refused request is logged with its reason, never with a token or key.
"""

from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path

import netaddr
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from wizard.inventory import InventoryReport
from wizard.provisioner.render import boot_kind, boot_script, install_files
from wizard.provisioner.site import INSTALL_FILES, ProvisionerSite, PxeNode
from wizard.provisioner.state import ProvisionerState
from wizard.secrets import SecretError

TOKEN_HEADER = "X-Crowbar-Token"
MAX_INVENTORY_BYTES = 64 * 1024
log = logging.getLogger("wizard.provisioner.http")


class ClientError(Exception):
    """A request refused with a 4xx status and a reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def create_app(site: ProvisionerSite, state: ProvisionerState, media: Path | None = None
               ) -> Starlette:
    """The provisioner's ASGI app over ``site`` (what to serve) and ``state`` (node states)."""
    service = _Service(site, state)
    routes = [
        Route("/", service.index),
        Route("/boot/{mac}", service.boot),
        Route("/install/{node}/{file}", service.install),
        Route("/inventory", service.inventory, methods=["POST"]),
        Route("/nodes/{node}/installed", service.installed, methods=["POST"]),
        Route("/nodes/{node}/validation.pem", service.validation_key),
    ]
    if media is not None:
        routes.append(Mount("/media", StaticFiles(directory=media)))
    app = Starlette(routes=routes, exception_handlers={ClientError: _refused})
    app.state.service = service  # ``service.site`` is swapped when the answers are reloaded
    return app


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClientError)
    client = request.client.host if request.client else "?"
    log.warning("%s %s from %s refused (%d): %s", request.method, request.url.path, client,
                exc.status, exc.reason)
    return JSONResponse({"error": exc.reason}, status_code=exc.status)


class _Service:
    def __init__(self, site: ProvisionerSite, state: ProvisionerState):
        self.site = site
        self.state = state

    async def index(self, request: Request) -> Response:
        return PlainTextResponse(f"crowbar-wizard provisioner for {self.site.domain}\n")

    async def boot(self, request: Request) -> Response:
        mac = _mac(request.path_params["mac"])
        node = self.site.by_mac.get(mac)
        state = self.state.state(node.name) if node else None
        kind = boot_kind(self.site, mac, state)
        log.info("boot script %s for %s%s", kind, mac, f" ({node.name})" if node else "")
        return PlainTextResponse(boot_script(self.site, mac, state))

    async def install(self, request: Request) -> Response:
        node = self._node(request)
        file = request.path_params["file"]
        if file not in INSTALL_FILES[self.site.os_family]:
            raise ClientError(404, f"no install file {file!r} for {self.site.os_family}")
        try:
            text = install_files(self.site, node)[file]
        except SecretError as exc:
            log.error("install file %s of %s: %s", file, node.name, exc)
            return JSONResponse({"error": "the install file needs a secret the admin node "
                                 "cannot read (see its log)"}, status_code=500)
        return PlainTextResponse(text)

    async def inventory(self, request: Request) -> Response:
        token = request.headers.get(TOKEN_HEADER)
        if not token:
            raise ClientError(403, f"no {TOKEN_HEADER} header")
        if not self.site.discovery:
            raise ClientError(403, "PXE discovery is off (discovery.methods)")
        body = await _body(request, MAX_INVENTORY_BYTES)
        try:
            report = InventoryReport.model_validate(json.loads(body))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ClientError(400, f"body is not JSON: {exc}") from None
        except ValidationError as exc:
            raise ClientError(422, "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                for e in exc.errors())) from None
        if not _token_matches(token, self.site.discovery_token(report.mac)):
            raise ClientError(403, f"wrong token for {report.mac}")
        if report.mac in self.site.by_mac:
            raise ClientError(409, f"{report.mac} is node {self.site.by_mac[report.mac].name}"
                              ", already in the answers file")
        node, new = self.state.add_report(report)
        log.info("inventory from %s: %s node %s", report.mac, "new" if new else "known",
                 node.name)
        return JSONResponse({"node": node.name, "new": new}, status_code=201 if new else 200)

    async def installed(self, request: Request) -> Response:
        node = self._node(request)
        self._authorize(request, node.name)
        self.state.set_state(node.name, "installed")
        log.info("%s reports its OS installed", node.name)
        return JSONResponse({"node": node.name, "state": "installed"})

    async def validation_key(self, request: Request) -> Response:
        node = self._node(request)
        self._authorize(request, node.name)
        key = self.site.answers.chef.validator_key
        if key is None:
            raise ClientError(404, "no Chef validator key is configured (chef.validator_key)")
        try:
            text = key.reveal()
        except SecretError as exc:
            log.error("validator key for %s: %s", node.name, exc)
            return JSONResponse({"error": "the admin node cannot read the validator key"},
                                status_code=500)
        log.info("Chef validator key sent to %s", node.name)
        return PlainTextResponse(text)

    def _node(self, request: Request) -> PxeNode:
        name = request.path_params["node"]
        node = self.site.nodes.get(name)
        if node is None:
            raise ClientError(404, f"no node named {name!r} in the answers file")
        return node

    def _authorize(self, request: Request, node: str) -> None:
        token = request.headers.get(TOKEN_HEADER, "")
        if not _token_matches(token, self.site.token(node)):
            raise ClientError(403, f"missing or wrong token for {node}")


def _token_matches(given: str, expected: str) -> bool:
    """Compare in constant time, as bytes: ``hmac.compare_digest`` raises TypeError for a
    str holding non-ASCII characters, which a client puts in a header at will (a 500)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def _mac(text: str) -> str:
    try:
        mac = netaddr.EUI(text, version=48, dialect=netaddr.mac_unix_expanded)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise ClientError(400, f"{text[:40]!r} is not a MAC address") from None
    return str(mac)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ClientError(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ClientError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
