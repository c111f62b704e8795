"""uvicorn for the provisioner's HTTP service, with limits a slow or hostile client meets.

Anyone on the admin network reaches the provisioner. uvicorn alone never times out a client
that opens a connection and does not finish its request (its keep-alive timeout stops at
the first byte), so enough of them hold every descriptor; asyncio then logs a traceback for
each failed accept. Here:

- a client has ``request_timeout`` seconds, from its connection or its previous response,
  to send a whole request (headers and body); then its connection is closed;
- a response that a client stops reading is dropped after ``send_timeout`` seconds stalled;
- at most ``max_connections`` connections are open (kept below the descriptor limit): past
  it, the one that has waited longest without sending a whole request is closed to make
  room, so stalled clients cannot lock out one that sends its request at once;
- these events, and accept failures for want of descriptors, are logged as one line at
  most once a minute each, never with a traceback; nor is a client gone before its request
  was read (a timed-out body), which is no error of the application.

:func:`provisioner_server` is what ``pxe serve`` and ``apply`` run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import Generator
from typing import Any

import h11
import uvicorn
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send a whole request: far more than any boot client needs."""
SEND_TIMEOUT = 60.0
"""Seconds a response may stay stalled on a client that does not read it."""
MAX_CONNECTIONS = 512
"""Open connections at most (fewer when the descriptor limit is low)."""
BACKLOG = 32
"""Pending connections the kernel holds; also how many asyncio accepts in one go. A few
such bursts come in before the limit has closed the connections they push out, so
descriptors for ``BURSTS`` of them are kept free."""
BURSTS = 4
RESERVED_DESCRIPTORS = 64
"""Descriptors kept for everything else the process opens (files served, state, dnsmasq)."""
LOG_INTERVAL = 60.0

log = logging.getLogger("wizard.provisioning.serving")


class _Tally:
    """An event counted and logged as one line at most once per interval: the first at
    once, those after it as a count when the interval ends (called in the event loop)."""

    def __init__(self, message: str, interval: float = LOG_INTERVAL):
        self.message = message
        self.interval = interval
        self.count = 0
        self.timer: asyncio.TimerHandle | None = None

    def add(self) -> None:
        self.count += 1
        if self.timer is None:
            self._flush()

    def _flush(self) -> None:
        self.timer = None
        if self.count:
            log.warning(self.message, self.count)
            self.count = 0
            self.timer = asyncio.get_running_loop().call_later(self.interval, self._flush)


class GuardedConfig(uvicorn.Config):
    """A uvicorn config with the limits above (read by :class:`GuardedProtocol`)."""

    def __init__(self, app: Any, *, request_timeout: float, send_timeout: float,
                 max_connections: int, **options: Any):
        super().__init__(app, http=GuardedProtocol, ws="none", **options)
        self.request_timeout = request_timeout
        self.send_timeout = send_timeout
        self.max_connections = max_connections
        self.waiting: dict[GuardedProtocol, None] = {}
        """Connections waiting for a whole request, longest-waiting first."""
        self.timed_out = _Tally("closed %d connections that sent no whole request in "
                                f"{request_timeout:g} s")
        self.stalled = _Tally(f"dropped %d responses stalled for {send_timeout:g} s on a "
                              "client that does not read")
        self.evicted = _Tally(f"%d connections closed at the limit of {max_connections} "
                              "open ones")
        self.no_descriptors = _Tally("%d connections not accepted: out of descriptors")


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a request deadline, a send stall timeout and a cap."""

    config: GuardedConfig
    _deadline: asyncio.TimerHandle | None = None
    _stall: asyncio.TimerHandle | None = None

    # uvicorn's H11Protocol narrows BaseProtocol's BaseTransport to Transport (and ignores
    # the override error itself): the same signature here
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.config.max_connections:
            oldest = next(iter(self.config.waiting), None)
            self.config.evicted.add()
            if oldest is None:  # every other connection is being answered: refuse this one
                transport.abort()
                return
            oldest._close()
        self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._request_received()
        self._cancel_stall()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._request_received()

    def on_response_complete(self) -> None:
        self._await_request()  # the next request's deadline (a pipelined one may be in)
        super().on_response_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is None:
            self._stall = self.loop.call_later(self.config.send_timeout, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_stall()

    def _await_request(self) -> None:
        self._request_received()
        self.config.waiting[self] = None
        self._deadline = self.loop.call_later(self.config.request_timeout, self._timed_out)

    def _request_received(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.config.waiting.pop(self, None)

    def _cancel_stall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _timed_out(self) -> None:
        self._deadline = None
        self.config.timed_out.add()
        self._close()

    def _stalled(self) -> None:
        self._stall = None
        self.config.stalled.add()
        self.transport.abort()  # close() would wait for the unread data to drain

    def _close(self) -> None:
        self._request_received()
        if not self.transport.is_closing():
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()


class GuardedServer(uvicorn.Server):
    """A uvicorn server whose loop logs running out of descriptors as one line, not a
    traceback per failed accept, and that leaves signals to its caller.

    uvicorn takes SIGINT and SIGTERM while it serves, and raises them again once it has
    stopped: a SIGTERM then kills the process before its own clean-up (stopping dnsmasq)
    runs. ``pxe serve`` and ``apply`` decide what a signal does; they stop the server
    with ``should_exit``.
    """

    config: GuardedConfig

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: Any = None) -> None:
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if str(context.get("message", "")).startswith("socket.accept() out of system"):
                self.config.no_descriptors.add()
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)
        loop.set_exception_handler(handler)
        await super().startup(sockets=sockets)


class _QuietDisconnects:
    """An ASGI app whose requests may end with the client gone, without a traceback."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        with contextlib.suppress(ClientDisconnect):
            await self.app(scope, receive, send)


def connection_limit(wanted: int = MAX_CONNECTIONS) -> int:
    """``wanted``, or fewer so that open connections leave descriptors for the rest; the
    process's descriptor limit is raised to its hard limit first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - BURSTS * BACKLOG - RESERVED_DESCRIPTORS))


def provisioner_server(app: Any, host: str, port: int, *, log_level: str = "info",
                       request_timeout: float = REQUEST_TIMEOUT,
                       send_timeout: float = SEND_TIMEOUT,
                       max_connections: int | None = None) -> GuardedServer:
    """The server ``pxe serve`` and ``apply`` run the provisioner's app on."""
    config = GuardedConfig(_QuietDisconnects(app), host=host, port=port, log_level=log_level,
                           access_log=False, lifespan="off", backlog=BACKLOG,
                           request_timeout=request_timeout,
                           send_timeout=send_timeout,
                           max_connections=max_connections or connection_limit())
    return GuardedServer(config)
