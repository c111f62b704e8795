"""The provisioner's HTTP service: boot scripts, install files and node callbacks (ASGI).

Who may call what, and why (everyone on the admin network can reach this service):

====================================  =================================  ====================
``GET  /boot/{mac}``                  anyone: a boot script holds no      the machine's iPXE
                                      secret, but discovery's token is    script for its
                                      bound to the asking address, and    current state
                                      given only to the address that
                                      holds ``mac``'s DHCP lease
``GET  /media/...``                   anyone (kernels and images)         ``DIR/media``
``GET  /install/{node}/{file}``       the node: from its address, while   its installer's
                                      it installs                         answer file
``POST /nodes/{node}/client-key``     the node: its address, its          registers the
                                      install's token, once an install    node's own Chef
                                                                          client key
``POST /nodes/{node}/installed``      the node: its address, its          the install is
                                      install's token, once; ends the     over
                                      install and its token
``POST /nodes/{node}/problem``        the node, as for ``installed``      the install failed:
                                      (either one ends the install),      the node goes to
                                      so that an install that failed      ``problem`` with the
                                      (chef-client) is known at once,     reason it posts (one
                                      not after an hour's timeout         bounded line)
``POST /inventory``                   a discovery image: the token of     its machine's
                                      its boot script, from the address   inventory
                                      that got it; rate-limited
``GET  /discovery/{mac}``             that discovery image, the same      what it is to do:
                                      way (it asks every few seconds)     ``wait``, ``reboot``
                                                                          (into the installer),
                                                                          ``poweroff`` or a
                                                                          network check
``POST /discovery/{mac}/network``     that discovery image, the same      the network check's
                                      way, answering a check asked of it; result
                                      rate-limited
====================================  =================================  ====================

Callbacks carry their token in the ``X-Crowbar-Token`` header; a wrong or missing one gets
403 and changes nothing. The Chef validator key is never handed out: a node registers the
public half of a key it made itself, through the admin node (a leaked token can at most
register one key, once, for one node in the middle of its install, and the real node then
fails loudly). Every refused request is logged with its reason, never a token or key.

What the service records (node states, install claims, discovered machines) goes to its
:class:`~wizard.provisioning.state.NodeStates`: the site's journal, whether ``pxe serve`` or
``apply`` runs it, so ``status`` and the wizard see it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

import netaddr
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from wizard.chef.api import ChefError
from wizard.hardware.inventory import InventoryConflict, InventoryReport
from wizard.provisioning.network_check import CheckResult
from wizard.provisioning.render import boot_kind, boot_script, install_files
from wizard.provisioning.site import INSTALL_FILES, ProvisionerSite, PxeNode
from wizard.provisioning.state import INSTALL_BOOT, INSTALLED, PROBLEM, NodeStates, StoreError

TOKEN_HEADER = "X-Crowbar-Token"
MAX_INVENTORY_BYTES = 64 * 1024
MAX_KEY_BYTES = 16 * 1024
MAX_REASON_BYTES = 4 * 1024
"""A problem report's body: a line of the installer's own words and a line of a tool's."""
MAX_REASON_CHARS = 300
"""What of a problem report reaches the journal and the screens (one line of a table)."""
REASON_PREFIX = "installer: "
"""Before a reported reason in the journal: the words are the node's, not the admin node's."""
MAX_DISCOVERED = 10_000
"""Machines PXE discovery takes in; more is an attack or a mistake, not a rack."""
REPORTS_PER_MINUTE = 6
"""Inventory reports one address may post a minute (a discovery image posts one a boot)."""
LEASE_WAIT = 3.0
"""How long a boot script request waits for dnsmasq to write the lease it just gave."""
RegisterClient = Callable[[str, str], Awaitable[None]]
"""``(client name, public key PEM)``: make or replace that Chef client with that key."""
log = logging.getLogger("wizard.provisioning.http")
Posted = TypeVar("Posted", bound=BaseModel)


class NetworkChecks(Protocol):
    """Orders for discovery images, network checks among them (kept by the engine)."""

    def pending(self, mac: str) -> tuple[str, str] | None:
        """``(request, instructions)`` of the check asked of ``mac``, if any."""

    def handed(self, mac: str, request: str) -> None:
        """``request`` went to ``mac``'s image (an order that needs no answer is done)."""

    def answered(self, mac: str, result: CheckResult) -> bool:
        """Record ``result``; False when it answers no check asked of ``mac``."""


class ClientError(Exception):
    """A request refused with a 4xx status and a reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def create_app(site: ProvisionerSite, state: NodeStates, media: Path | None = None, *,
               register_client: RegisterClient | None = None,
               leases: Path | None = None,
               checks: NetworkChecks | None = None) -> Starlette:
    """The provisioner's ASGI app over ``site`` (what to serve) and ``state`` (node states,
    install claims, discovered machines).

    ``register_client`` reaches the Chef server as the admin node (None: no Chef server).
    ``leases`` is dnsmasq's lease file when this admin node serves DHCP: then a discovery
    token goes only to the address leased to the MAC it is for. ``checks`` hands network
    checks to discovery images (None: none are asked).
    """
    service = _Service(site, state, register_client, leases, checks)
    routes: list[BaseRoute] = [
        Route("/", service.index),
        Route("/boot/{mac}", service.boot),
        Route("/install/{node}/{file}", service.install),
        Route("/inventory", service.inventory, methods=["POST"]),
        Route("/discovery/{mac}", service.orders),
        Route("/discovery/{mac}/network", service.network_checked, methods=["POST"]),
        Route("/nodes/{node}/client-key", service.client_key, methods=["POST"]),
        Route("/nodes/{node}/installed", service.installed, methods=["POST"]),
        Route("/nodes/{node}/problem", service.problem, methods=["POST"]),
    ]
    if media is not None:
        routes.append(Mount("/media", StaticFiles(directory=media)))
    app = Starlette(routes=routes, exception_handlers={ClientError: _refused,
                                                       StoreError: _unrecorded})
    app.state.service = service  # ``service.site`` is swapped when the answers are reloaded
    return app


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClientError)
    log.warning("%s %s from %s refused (%d): %s", request.method, request.url.path,
                _peer(request), exc.status, exc.reason)
    return JSONResponse({"error": exc.reason}, status_code=exc.status)


async def _unrecorded(request: Request, exc: Exception) -> Response:
    """The store could not record the request (a full disk): one log line, a 503 the
    node's client retries, nothing changed."""
    log.error("%s %s from %s not recorded: %s", request.method, request.url.path,
              _peer(request), exc)
    return JSONResponse({"error": "the admin node cannot record this now"}, status_code=503)


class _Service:
    def __init__(self, site: ProvisionerSite, state: NodeStates,
                 register_client: RegisterClient | None, leases: Path | None,
                 checks: NetworkChecks | None):
        self.site = site
        self._checks = checks
        self.state = state
        self._register_client = register_client
        self._leases = leases
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def index(self, request: Request) -> Response:
        return PlainTextResponse(f"crowbar-wizard provisioner for {self.site.domain}\n")

    async def boot(self, request: Request) -> Response:
        mac = _mac(request.path_params["mac"])
        node = self.site.by_mac.get(mac)
        state = self.state.state(node.name) if node else None
        kind = boot_kind(self.site, mac, state)
        peer = _peer(request)
        if kind == "discovery" and not await self._holds_lease(peer, mac):
            raise ClientError(403, f"{peer} does not hold a DHCP lease for {mac}")
        if kind == "install" and node is not None and peer == self.site.peer(node):
            self.state.claim(node.name, INSTALL_BOOT)  # a new attempt: a new token
        log.info("boot script %s for %s%s", kind, mac, f" ({node.name})" if node else "")
        return PlainTextResponse(boot_script(self.site, mac, state, peer=peer))

    async def install(self, request: Request) -> Response:
        node = self._installing(request)
        file = request.path_params["file"]
        if file not in INSTALL_FILES[self.site.os_family]:
            raise ClientError(404, f"no install file {file!r} for {self.site.os_family}")
        try:
            text = install_files(self.site, node, self.state.epoch(node.name))[file]
        except ValueError as exc:  # SecretError: a secret the admin node cannot read
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
        peer = _peer(request)
        self._rate_limit(peer)
        report = await _model(request, InventoryReport)
        if not _same(token, self.site.discovery_token(report.mac, peer)):
            raise ClientError(403, f"wrong token for {report.mac} from {peer}")
        if report.mac in self.site.by_mac:
            raise ClientError(409, f"{report.mac} is node {self.site.by_mac[report.mac].name}"
                              ", already in the answers file")
        known = self.state.inventory.find(report.serial, report.macs, report.bmc_mac)
        if known is None and len(self.state.inventory.nodes) >= MAX_DISCOVERED:
            raise ClientError(429, f"{MAX_DISCOVERED} machines discovered already: no more")
        try:
            node, new = self.state.add_report(report)
        except InventoryConflict as exc:
            raise ClientError(409, str(exc)) from None
        log.info("inventory from %s: %s node %s", report.mac, "new" if new else "known",
                 node.name)
        return JSONResponse({"node": node.name, "new": new}, status_code=201 if new else 200)

    async def orders(self, request: Request) -> Response:
        """What a waiting discovery image is to do: a network check when one is asked of
        it, reboot once its machine is a node of the answers file (its boot script then
        installs it), else wait."""
        mac = self._discovering(request)
        check = self._checks.pending(mac) if self._checks is not None else None
        if check is not None and self._checks is not None:
            request_id, instructions = check
            log.info("order %s (%s) handed to %s", request_id, instructions.split()[0], mac)
            self._checks.handed(mac, request_id)
            return PlainTextResponse(instructions)
        return PlainTextResponse("reboot\n" if mac in self.site.by_mac else "wait\n")

    async def network_checked(self, request: Request) -> Response:
        """A discovery image's answer to the network check asked of it."""
        mac = self._discovering(request)
        self._rate_limit(_peer(request))
        result = await _model(request, CheckResult)
        if self._checks is None or not self._checks.answered(mac, result):
            raise ClientError(409, f"no network check {result.request} was asked of {mac}")
        log.info("network check %s answered by %s", result.request, mac)
        return JSONResponse({"request": result.request}, status_code=201)

    def _discovering(self, request: Request) -> str:
        """The MAC a discovery image asks for, with the token its boot script gave it
        (bound to the address it asks from)."""
        mac = _mac(request.path_params["mac"])
        peer = _peer(request)
        if not _same(request.headers.get(TOKEN_HEADER, ""), self.site.discovery_token(mac, peer)):
            raise ClientError(403, f"missing or wrong token for {mac} from {peer}")
        return mac

    async def client_key(self, request: Request) -> Response:
        node = self._installing(request)
        self._authorize(request, node)
        if self._register_client is None:
            raise ClientError(404, "this admin node has no Chef server (chef.server_url)")
        public = _public_key(await _body(request, MAX_KEY_BYTES))
        # the same key again is the node retrying after losing the answer (the admin node
        # stopped halfway): registered again, as registering replaces; another key is refused
        holder = hashlib.sha256(public.encode()).hexdigest()
        if not self.state.claim(node.name, "client-key", holder):
            raise ClientError(409, f"{node.name} registered another Chef client key already "
                              "in this install")
        try:  # the claim stays used: a failed registration means a new install
            await self._register_client(node.fqdn, public)
        except ChefError as exc:
            log.error("Chef client %s: %s", node.fqdn, exc)
            return JSONResponse({"error": f"the Chef server refused the client: {exc}"},
                                status_code=502)
        log.info("Chef client %s registered with the key %s made", node.fqdn, node.name)
        return JSONResponse({"client": node.fqdn}, status_code=201)

    async def installed(self, request: Request) -> Response:
        node = self._installing(request)
        self._authorize(request, node)
        if not self.state.claim(node.name, INSTALLED):
            raise ClientError(409, f"{node.name} reported installed already")
        self.state.set_state(node.name, "installed")
        log.info("%s reports its OS installed", node.name)
        return JSONResponse({"node": node.name, "state": "installed"})

    async def problem(self, request: Request) -> Response:
        """The node's installer, when a part of its install failed that leaves the OS
        installed but the node not what the deployment needs (chef-client could not be
        installed or configured): the node goes to ``problem`` at once, with the reason the
        installer posts, instead of an apply waiting an hour for an ``installed`` that
        never comes. The node's own address and token, once: like ``installed`` it ends the
        install and its token. The reason is the node's text: it reaches the journal, logs
        and screens as one line of printable text, cut to :data:`MAX_REASON_CHARS`."""
        node = self._installing(request)
        self._authorize(request, node)
        reason = _reason(await _body(request, MAX_REASON_BYTES))
        if not self.state.claim(node.name, PROBLEM):
            raise ClientError(409, f"{node.name} reported a problem already")
        self.state.problem(node.name, REASON_PREFIX + reason)
        log.warning("%s reports a problem with its install: %s", node.name, reason)
        return JSONResponse({"node": node.name, "state": "problem"})

    def _installing(self, request: Request) -> PxeNode:
        """The node the path names, asking from its own address, in the middle of an
        install (after it, nothing of the install is served)."""
        name = request.path_params["node"]
        node = self.site.nodes.get(name)
        if node is None:
            raise ClientError(404, f"no node named {name!r} in the answers file")
        peer = _peer(request)
        if peer != self.site.peer(node):
            raise ClientError(403, f"{peer} is not {node.name}'s address")
        state = self.state.state(node.name)
        if boot_kind(self.site, node.macs[0], state) != "install":
            raise ClientError(403, f"{node.name} is not installing (it is {state})")
        return node

    def _authorize(self, request: Request, node: PxeNode) -> None:
        token = request.headers.get(TOKEN_HEADER, "")
        if not _same(token, self.site.token(node.name, self.state.epoch(node.name))):
            raise ClientError(403, f"missing or wrong token for {node.name}")

    def _rate_limit(self, peer: str) -> None:
        """A token bucket per address: REPORTS_PER_MINUTE, a burst of as many."""
        now = time.monotonic()
        level, then = self._buckets.pop(peer, (float(REPORTS_PER_MINUTE), now))
        level = min(REPORTS_PER_MINUTE, level + (now - then) * REPORTS_PER_MINUTE / 60)
        if level < 1:
            self._buckets[peer] = (level, now)
            raise ClientError(429, f"more than {REPORTS_PER_MINUTE} reports a minute from "
                              f"{peer}")
        self._buckets[peer] = (level - 1, now)
        while len(self._buckets) > MAX_DISCOVERED:  # forget the longest quiet
            self._buckets.popitem(last=False)

    async def _holds_lease(self, peer: str, mac: str) -> bool:
        """Whether dnsmasq leased ``peer`` to ``mac`` (always, when not serving DHCP)."""
        if self._leases is None:
            return True
        deadline = time.monotonic() + LEASE_WAIT
        while True:
            if _leased(self._leases, mac, peer):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)


def _leased(leases: Path, mac: str, address: str) -> bool:
    """dnsmasq's lease file (``expiry MAC address name client-id`` a line) gives
    ``address`` to ``mac``."""
    try:
        text = leases.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.split()[1:3] == [mac, address] for line in text.splitlines()
               if len(line.split()) >= 3)


async def _model(request: Request, model: type[Posted]) -> Posted:
    """The request's JSON body as ``model`` (400 when it is not JSON, 422 when it does not
    fit, 413 past :data:`MAX_INVENTORY_BYTES`)."""
    body = await _body(request, MAX_INVENTORY_BYTES)
    try:
        return model.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClientError(400, f"body is not JSON: {exc}") from None
    except ValidationError as exc:
        raise ClientError(422, "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: "
                                         f"{e['msg']}" for e in exc.errors())) from None


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison that any header text survives (non-ASCII included)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def _public_key(body: bytes) -> str:
    """The node's public key (PEM): an RSA key of 2048 bits or more, as Chef takes."""
    try:
        key = load_pem_public_key(body)
    except (ValueError, TypeError):
        raise ClientError(400, "body is not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ClientError(400, "the key is not an RSA key of 2048 bits or more")
    return body.decode()


def _reason(body: bytes) -> str:
    """A problem report's text as one line: control characters (line breaks, escapes, the
    Unicode line separators and format characters) become spaces, runs of spaces one,
    and what is past :data:`MAX_REASON_CHARS` is cut (400 when nothing is left)."""
    text = body.decode("utf-8", errors="replace")
    words = "".join(" " if unicodedata.category(char)[0] in "CZ" else char
                    for char in text).split()
    reason = " ".join(words)
    if not reason:
        raise ClientError(400, "no reason given (the body is the reason, as text)")
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS - 1].rstrip() + "\u2026"
    return reason


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
