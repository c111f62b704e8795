"""IPMI over LAN (RMCP+), on pyghmi: power, boot device, FRU and LAN inventory, and pings.

pyghmi is blocking, and its client deadlocks when several threads drive sessions at once
(each thread may process the others' packets, taking their locks in the opposite order).
So every pyghmi call in the process runs on one worker thread; the driver's
``concurrency`` caps the operations waiting for it, whatever the number of addresses, and
retries are made around it. The timeout is enforced on that thread, inside pyghmi's own
wait (pyghmi retries a login that gets no answer for minutes): a call past its deadline
is unwound there and its session dropped, so the next call is not held behind it. The
thread is a daemon, so a process that is leaving (Ctrl-C) never waits for a BMC.
Liveness is checked differently: :meth:`IpmiDriver.ping` sends one sessionless "Get
Channel Authentication Capabilities" per address from a single asyncio socket, so a /22
of mostly silent addresses costs one timeout, not a thread each.

Errors are :class:`IpmiError` with a ``kind`` (unreachable, auth_failed, unsupported,
bmc_error) and the BMC's address; the password never appears in any message.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, TypeVarTuple

import pyghmi.ipmi.private.session as pyghmi_session
from pyghmi.exceptions import IpmiException
from pyghmi.ipmi.command import Command
from pyghmi.ipmi.private.session import Session

from wizard.hardware import pyghmi_io
from wizard.hardware.fru import decode_fru

log = logging.getLogger(__name__)
Kind = Literal["unreachable", "auth_failed", "unsupported", "bmc_error"]
PowerAction = Literal["on", "off", "cycle", "reset", "soft"]
BootDevice = Literal["network", "disk", "cd", "bios", "default"]
T = TypeVar("T")
Args = TypeVarTuple("Args")

FRU_CHUNK = 192
"""FRU bytes asked for per read; a BMC that finds it too long gets FRU_SAFE_CHUNK instead."""
FRU_SAFE_CHUNK = 32  # ipmi_sim (and some real BMCs) refuse FRU reads of 48 bytes or more
_CC_TOO_LONG = {0xC8, 0xC9, 0xCA}  # request too long, parameter out of range, cannot return
_BOOT_PYGHMI = {"network": "network", "disk": "hd", "cd": "optical", "bios": "setup",
                "default": "default"}
_BOOT_OURS = {value: key for key, value in _BOOT_PYGHMI.items()} | {"floppy": "default"}
_CHASSIS_CONTROL = {"off": 0, "on": 1, "cycle": 2, "reset": 3, "soft": 5}
_CC_UNSUPPORTED = {0xC1, 0xC2, 0x80}  # invalid command, invalid for LUN, param unsupported


class IpmiError(Exception):
    """An IPMI operation that failed, classified, naming the BMC."""

    def __init__(self, kind: Kind, address: str, detail: str):
        self.kind, self.address, self.detail = kind, address, detail
        super().__init__(f"{address}: {kind.replace('_', ' ')}: {detail}")


@dataclass(frozen=True)
class Target:
    """A BMC to talk to. ``repr`` and ``str`` never show the password."""

    address: str
    username: str
    password: str = field(repr=False)
    port: int = 623


@dataclass
class BmcInventory:
    """What a BMC tells about itself and its server."""

    address: str
    port: int
    mac: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    cpu_cores: int | None = None
    memory_gb: int | None = None
    disks: int | None = None
    virtualization: bool | None = None
    nic_macs: list[str] = field(default_factory=list)
    power: str | None = None
    """``on`` or ``off`` when the sweep looked (None when the BMC would not say)."""


def _classify(error: BaseException) -> tuple[Kind, str]:
    text = str(error)
    if text in ("", "None"):  # pyghmi's word for a session that broke mid-command
        return "unreachable", "the session broke off"
    lowered = text.lower()
    if any(word in lowered for word in ("password", "unauthorized", "privilege", "rakp")):
        return "auth_failed", "the BMC refused the user name or password"
    if any(word in lowered for word in ("timeout", "timed out", "unable to establish",
                                        "no longer connected", "unreachable", "logged out")):
        return "unreachable", "no answer"
    code = getattr(error, "ipmicode", None)
    if code in _CC_UNSUPPORTED:
        return "unsupported", text
    return "bmc_error", text


def _check(response: dict[str, Any], what: str) -> list[int]:
    if response.get("error"):
        code = response.get("code")
        raise IpmiException(f"{what}: {response['error']}", code)
    return list(response.get("data", []))


class IpmiDriver:
    """Many BMCs at once, with explicit timeouts, retries and bounded concurrency."""

    def __init__(self, *, concurrency: int = 64, timeout: float = 10.0, retries: int = 2,
                 backoff: float = 0.25):
        self.concurrency, self.timeout, self.retries, self.backoff = (
            concurrency, timeout, retries, backoff)
        self._slots: asyncio.Semaphore | None = None
        self._answered: set[tuple[str, int]] = set()
        """(address, port) of BMCs heard from: they are not pinged before a call."""

    def close(self) -> None:
        """Release the driver: nothing today, as pyghmi runs on the process's shared thread."""

    # -- plumbing -------------------------------------------------------------------------------

    async def _run(self, target: Target, work: Callable[[Command], T], *,
                   retries: int | None = None) -> T:
        """Run ``work`` on a session with ``target``; retry what may pass next time
        (``retries`` 0 for what must not happen twice).

        The timeout counts from when the call starts on the pyghmi thread, not while it
        waits its turn behind other calls.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        where = (target.address, target.port)
        if where not in self._answered:
            await self._check_alive(target)
        retries = self.retries if retries is None else retries
        kind: Kind
        for attempt in range(retries + 1):
            async with self._slots:
                try:
                    result = await asyncio.wrap_future(
                        _PYGHMI.submit(self.timeout, _session, target, work))
                    self._answered.add(where)
                    return result
                except TimeoutError:
                    kind, detail = "unreachable", f"no answer within {self.timeout:g} s"
                    self._answered.discard(where)
                except IpmiError:
                    raise
                except Exception as exc:  # pyghmi raises many types; classify them all
                    kind, detail = _classify(exc)
            if kind != "unreachable" or attempt == retries:
                raise IpmiError(kind, target.address, detail)
            log.debug("%s: %s, retry %d", target.address, detail, attempt + 1)
            await asyncio.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def _check_alive(self, target: Target) -> None:
        """Ping a BMC not heard from yet, so a silent one fails within the timeout without
        tying up the pyghmi thread for pyghmi's own (longer) login timeout."""
        async for _ in self.ping([(target.address, target.port)], timeout=self.timeout):
            return
        raise IpmiError("unreachable", target.address, f"no answer within {self.timeout:g} s")

    # -- operations ----------------------------------------------------------------------------

    async def power_status(self, target: Target) -> str:
        """``on`` or ``off``."""
        return await self._run(target, lambda cmd: cmd.get_power()["powerstate"])

    async def power(self, target: Target, action: PowerAction, *, retry: bool = True) -> str:
        """Switch power (``soft`` asks the OS to shut down); returns the state asked for.

        A cycle of a server that is off powers it on (many BMCs refuse to cycle it). With
        ``retry`` false a timeout is not retried: a command whose answer was lost may have
        been carried out, and a second cycle is not harmless.
        """
        def work(cmd: Command) -> str:
            directive = _CHASSIS_CONTROL[action]
            if action == "cycle" and cmd.get_power()["powerstate"] == "off":
                directive = _CHASSIS_CONTROL["on"]
            _check(cmd.raw_command(netfn=0, command=2, data=[directive]), "chassis control")
            return "off" if action in ("off", "soft") else "on"

        return await self._run(target, work, retries=None if retry else 0)

    async def set_boot_device(self, target: Target, device: BootDevice, *,
                              persistent: bool = False) -> None:
        """Boot from ``device`` next time, or every time when ``persistent``."""
        await self._run(target, lambda cmd: cmd.set_bootdev(
            _BOOT_PYGHMI[device], persist=persistent))

    async def boot_device(self, target: Target) -> tuple[str, bool]:
        """(device, persistent) as the BMC reports it."""
        def work(cmd: Command) -> tuple[str, bool]:
            result = cmd.get_bootdev()
            return _BOOT_OURS.get(result.get("bootdev"), result.get("bootdev")), bool(
                result.get("persistent"))

        return await self._run(target, work)

    async def inventory(self, target: Target) -> BmcInventory:
        """Device id, FRU 0 (in 32-byte reads where larger ones are refused), LAN MAC, power."""
        return await self._run(target, lambda cmd: _inventory(cmd, target))

    # -- liveness ----------------------------------------------------------------------------

    async def ping(self, addresses: Iterable[tuple[str, int]], *, timeout: float = 1.0,
                   attempts: int = 3) -> AsyncIterator[tuple[str, int]]:
        """Yield each (address, port) that answers an RMCP+ capabilities ping, as it does.

        Silent addresses are sent ``attempts`` pings spread over ``timeout`` seconds, so a
        BMC that drops its first packets is still found.
        """
        async for found in _ping(list(addresses), timeout, attempts):
            self._answered.add(found)
            yield found


class _Overdue(BaseException):
    """Raised inside pyghmi's wait when the call's deadline has passed. A BaseException,
    as pyghmi swallows ``Exception`` in some of its wait loops (and would spin on it)."""


class _PyghmiThread:
    """The one thread that calls pyghmi (see the module docstring): a daemon thread that
    runs one call at a time, each with a deadline its waits inside pyghmi keep to."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Future[Any], float, Callable[[], Any]]] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._deadline: float | None = None
        """When the call running now must give up (read on the thread only)."""

    def submit(self, seconds: float, call: Callable[[*Args], T], *args: *Args) -> Future[T]:
        """Run ``call(*args)`` on the thread, giving it ``seconds`` from when it starts; a
        call out of time raises TimeoutError. Cancelling the future drops a call not
        started yet."""
        with self._lock:
            if self._thread is None:
                pyghmi_session._io_wait = self._bounded_wait
                self._thread = threading.Thread(target=self._serve, name="pyghmi",
                                                daemon=True)
                self._thread.start()
        future: Future[T] = Future()
        self._calls.put((future, seconds, lambda: call(*args)))
        return future

    def _serve(self) -> None:
        while True:
            future, seconds, call = self._calls.get()
            if not future.set_running_or_notify_cancel():
                continue
            self._deadline = time.monotonic() + seconds
            try:
                future.set_result(call())
            except BaseException as exc:  # the caller's to handle
                future.set_exception(exc)
            finally:
                self._deadline = None

    def _bounded_wait(self, timeout: float, myaddr: Any = None, evq: Any = None) -> None:
        """pyghmi's ``_io_wait`` (every wait of pyghmi goes through it), cut short at the
        deadline of the call running on this thread, and at :data:`WAKE_UP`; other threads
        wait as pyghmi would.

        pyghmi can miss a wake-up: its I/O thread may queue a session's answer just before
        the session registers to wait for it (``awaitresponse`` checks, then waits), and
        the answer then sits until the wait times out, 0.5 to 1 s. Under load this hit 2 % of
        the calls of a 1,000-node apply, on the one thread every call waits behind. Every
        pyghmi wait loops back to look at its queue and its own deadlines, so a short wait
        only costs a wake-up."""
        if threading.current_thread() is self._thread:
            timeout = min(timeout, WAKE_UP)
            if self._deadline is not None:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    raise _Overdue
                timeout = min(timeout, left)
        _IO_WAIT(timeout, myaddr, evq)


pyghmi_io.install()
_IO_WAIT = pyghmi_session._io_wait
WAKE_UP = 0.02
"""Seconds the pyghmi thread waits at most before it looks again (see ``_bounded_wait``)."""
_PYGHMI = _PyghmiThread()


def _session(target: Target, work: Callable[[Command], T]) -> T:
    """Run ``work`` on a logged-in session (on the pyghmi thread); TimeoutError when it
    runs past its deadline, its session then dropped so the next call logs in anew.

    pyghmi keeps one session per BMC and user and keeps it alive, so later calls to the
    same BMC skip the RMCP+ handshake. (Logging out is not an option: pyghmi cannot log
    back in on a session object it has logged out.) User and password go in as bytes:
    pyghmi stores them so, and only finds its live session again when they compare equal.
    """
    try:
        cmd = Command(bmc=target.address, userid=target.username.encode(),
                      password=target.password.encode(), port=target.port)
        return work(cmd)
    except _Overdue:
        _forget_session(target)
        raise TimeoutError from None


def _forget_session(target: Target) -> None:
    """Make pyghmi give up its sessions with ``target``: no more retries or keepalives of
    theirs, and the next call logs in anew (on the pyghmi thread)."""
    sessions = {id(s): s for handlers in list(Session.bmc_handlers.values())
                if isinstance(handlers, dict) for s in list(handlers.values())
                if getattr(s, "bmc", None) == target.address
                and getattr(s, "port", None) == target.port}
    initting = Session.initting_sessions.get(
        (target.address, target.username.encode(), target.password.encode(), target.port,
         None))
    if initting is not None:
        sessions[id(initting)] = initting
    for session in sessions.values():
        session.logged = 0  # no logout message: it would wait on the BMC once more
        session._mark_broken("given up")  # pyghmi's own way to drop one


def _inventory(cmd: Command, target: Target) -> BmcInventory:
    info = BmcInventory(address=target.address, port=target.port)
    device = _check(cmd.raw_command(netfn=6, command=1), "get device id")
    if len(device) >= 4:
        info.firmware = f"{device[2] & 0x7F}.{device[3]:02x}"
    size_data = _check(cmd.raw_command(netfn=0x0A, command=0x10, data=[0]), "FRU info")
    size = size_data[0] | (size_data[1] << 8)
    fru = bytearray()
    chunk_size = FRU_CHUNK
    while len(fru) < size:
        count = min(chunk_size, size - len(fru))
        offset = len(fru)
        response = cmd.raw_command(netfn=0x0A, command=0x11,
                                   data=[0, offset & 0xFF, offset >> 8, count])
        if response.get("code") in _CC_TOO_LONG and chunk_size > FRU_SAFE_CHUNK:
            chunk_size = FRU_SAFE_CHUNK
            continue
        chunk = _check(response, "FRU read")
        if not chunk or chunk[0] == 0:
            break
        fru.extend(chunk[1:1 + chunk[0]])
    if fru:
        decoded = decode_fru(bytes(fru))
        info.manufacturer, info.model, info.serial = (
            decoded.manufacturer, decoded.model, decoded.serial)
        extra = decoded.extra
        info.cpu_cores = _int(extra.get("cpu_cores"))
        info.memory_gb = _int(extra.get("memory_gb"))
        info.disks = _int(extra.get("disks"))
        if "virtualization" in extra:
            info.virtualization = extra["virtualization"][0] == "1"
        info.nic_macs = [mac.lower() for mac in extra.get("nic", [])]
    mac = cmd.raw_command(netfn=0x0C, command=0x02, data=[1, 5, 0, 0])
    if not mac.get("error") and len(mac.get("data", [])) >= 7:
        info.mac = ":".join(f"{b:02x}" for b in mac["data"][1:7])
    status = cmd.raw_command(netfn=0, command=1)  # chassis status: bit 0 is power
    if not status.get("error") and status.get("data"):
        info.power = "on" if status["data"][0] & 1 else "off"
    return info


def _int(values: list[str] | None) -> int | None:
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


# -- RMCP ping -------------------------------------------------------------------------------

def _auth_cap_request() -> bytes:
    """Get Channel Authentication Capabilities (IPMI 1.5 session-less, for v2.0 data)."""
    body = bytes([0x81, 0x00, 0x38, 0x8E, 0x04])  # rqAddr, seq, cmd, channel 0xE + v2, admin
    header = bytes([0x20, 0x18])  # rsAddr BMC, netfn app (6 << 2)
    message = (header + bytes([(-sum(header)) & 0xFF]) + body
               + bytes([(-sum(body)) & 0xFF]))
    rmcp = bytes([0x06, 0x00, 0xFF, 0x07])
    session = bytes([0x00]) + bytes(8) + struct.pack("B", len(message))
    return rmcp + session + message


class _PingProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answered: asyncio.Queue[tuple[str, int]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 20 and data[:4] == b"\x06\x00\xff\x07":
            self.answered.put_nowait((addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable: just no answer
        log.debug("ping: %s", exc)


async def _ping(targets: list[tuple[str, int]], timeout: float,
                attempts: int) -> AsyncIterator[tuple[str, int]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _PingProtocol, local_addr=("0.0.0.0", 0))
    packet = _auth_cap_request()
    waiting = set(targets)
    try:
        start = time.monotonic()
        for attempt in range(attempts):
            for target in sorted(waiting):
                transport.sendto(packet, target)
            resend_at = start + timeout * (attempt + 1) / attempts
            while waiting and (now := time.monotonic()) < resend_at:
                try:
                    found = await asyncio.wait_for(protocol.answered.get(), resend_at - now)
                except TimeoutError:
                    break
                if found in waiting:
                    waiting.discard(found)
                    yield found
            if not waiting:
                break
    finally:
        transport.close()
