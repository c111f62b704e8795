"""The HTTP side of ``serve-web``: textual-serve's server, with a door.

textual-serve alone serves whoever connects: any web page the operator opens can point a
websocket at it (browsers let pages open websockets anywhere; only the server can look at
``Origin``), read the screen and start one wizard process per connection. Here:

- **A secret in the URL.** Every request but the public static files must carry the random
  token printed at start: ``/?token=T`` for the page, ``/ws/T`` for its websocket (a path,
  because textual-serve's page appends its own ``?width=..`` to the websocket URL). A
  token in the URL rather than a cookie: cookies are per host, not per port, so a page
  served from any other port of the same host (another local service, another serve-web)
  would send ours along, and could overwrite it; a URL is only known to whom it was
  given. Compared in constant time; the access log leaves out queries and the websocket's
  path, so it is never logged. Pages say ``Referrer-Policy: no-referrer`` so the URL does
  not leak to the fonts the page loads, and ``no-store`` so it is not cached.
- **Host and Origin.** The ``Host`` must name this server: a loopback name or the listen
  address, any port (``ssh -L`` may forward another local port). That stops DNS
  rebinding, where an attacker's name resolves to 127.0.0.1. An ``Origin``, when sent,
  must be this very page's (``http://`` + that Host); a websocket must send one, as every
  browser does. Refusals are 403 and are logged.
- **A cap on sessions.** Each websocket runs a wizard process; past ``max_sessions`` the
  page and the websocket answer 503, saying so.
- **A deadline for requests.** A connection that has not sent a whole request within
  ``request_timeout`` seconds of opening (or of its last answer) is closed: aiohttp's
  keep-alive timer, which it starts as a connection opens, closes a connection whose
  handler still waits for its request (an open session's websocket is no such wait). Its
  default, an hour, let a client that never finishes its headers hold a descriptor as long.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from textual_serve.server import Server, to_int

log = logging.getLogger("serve-web")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::\d{1,5})?")
"""A ``Host`` header: a name or address, an IPv6 address in brackets, an optional port."""
HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
"""On every response: the page's URL holds the token; nobody frames the wizard."""


def host_name(host: str) -> str | None:
    """The name or address in a ``Host`` header, lowercased; None if it is no Host."""
    found = HOST.fullmatch(host)
    if found is None:
        return None
    return (found["v6"] or found["name"]).lower()


def shown_path(path: str) -> str:
    """A request's path for the log: the websocket's holds the token."""
    return "/ws/<token>" if path.startswith("/ws/") else path


class AccessLog(AbstractAccessLogger):
    """One line a request: address, method, path without its query (the page's token),
    status."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse,
            time: float) -> None:
        self.logger.info('%s "%s %s" %s', request.remote, request.method,
                         shown_path(request.path), response.status)


class GuardedServer(Server):
    """textual-serve's :class:`Server` behind a token, a Host and Origin check and a
    session cap (see the module's docstring for why each)."""

    def __init__(self, command: str, *, host: str, port: int, title: str,
                 max_sessions: int, request_timeout: float) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.request_timeout = request_timeout
        self.token = secrets.token_urlsafe(32)
        self.names = LOOPBACK_NAMES | {host.lower()}
        self.max_sessions = max_sessions
        self.sessions = 0

    @property
    def url(self) -> str:
        """The URL to open (it holds the token: give it only to who may see the wizard)."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/?token={self.token}"

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes([
            web.get("/", self.handle_index),
            web.get("/ws/{token}", self.handle_websocket),
            web.static("/static", self.statics_path),
        ])
        app.on_response_prepare.append(self._add_headers)
        return app

    def refusal(self, request: web.Request) -> str | None:
        """Why ``request`` is refused (403), or None."""
        if host_name(request.host) not in self.names:
            return (f"Host {request.host!r} is not this server's address (one of "
                    f"{', '.join(sorted(self.names))}, any port)")
        origin = request.headers.get("Origin")
        if origin is None and request.headers.get("Upgrade", "").lower() == "websocket":
            return "a websocket without an Origin (browsers send one)"
        if origin is not None and origin.lower() != f"http://{request.host}".lower():
            return f"Origin {origin!r} is not this server's page"
        if request.path.startswith("/static/"):
            return None  # textual-serve's own scripts and fonts: nothing of ours
        given = request.match_info.get("token") or request.query.get("token", "")
        if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                   self.token.encode()):
            return "no token, or not this server's: open the URL serve-web printed"
        return None

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                     ) -> web.StreamResponse:
        refusal = self.refusal(request)
        if refusal is not None:
            log.warning("refused %s %s from %s: %s", request.method, shown_path(request.path),
                        request.remote, refusal)
            raise web.HTTPForbidden(text=f"serve-web: {refusal}\n")
        return await handler(request)

    @staticmethod
    async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(HEADERS)

    def _full(self) -> web.HTTPServiceUnavailable:
        log.warning("refused a session: %d open, the most allowed (--max-sessions)",
                    self.sessions)
        return web.HTTPServiceUnavailable(
            text=f"serve-web: {self.sessions} sessions are open, the most it serves "
            "(--max-sessions); close one and reload\n")

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """textual-serve's page, its websocket URL holding the token, its URLs on the Host
        the browser used (a loopback name, the port ``ssh -L`` forwards)."""
        if self.sessions >= self.max_sessions:
            raise self._full()
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"ws://{request.host}/ws/{self.token}",
            "config": {"static": {"url": f"http://{request.host}/static/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """A session: one wizard process, while fewer than ``max_sessions`` run."""
        if not web.WebSocketResponse().can_prepare(request).ok:
            raise web.HTTPBadRequest(text="serve-web: this is the page's websocket\n")
        if self.sessions >= self.max_sessions:
            raise self._full()
        self.sessions += 1
        try:
            return await super().handle_websocket(request)
        finally:
            self.sessions -= 1

    def initialize_logging(self) -> None:
        """Plain lines on stderr: textual-serve's rich tracebacks show local variables,
        the request (its path holding the token) among them."""
        logging.basicConfig(level=logging.DEBUG if self.debug else logging.INFO,
                            format="serve-web: %(levelname)s %(message)s", stream=sys.stderr)

    def serve(self, debug: bool = False) -> None:
        """Serve until SIGINT or SIGTERM (textual-serve's, with :class:`AccessLog`)."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, self.request_exit)
        web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False,
                    loop=loop, print=lambda *_: None, access_log_class=AccessLog,
                    keepalive_timeout=self.request_timeout)
