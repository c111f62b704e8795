"""A fix for pyghmi's socket reads, for every process that runs pyghmi (client or BMC).

pyghmi's I/O thread drains a socket with ``_io_recvfrom``, which sets the socket
non-blocking and then reads; its ``_io_sendto``, called on other threads, sets the same
socket blocking before it sends. A send landing between the two makes the read block, and
the I/O thread then waits for a packet on that one socket: forever, if nobody talks to it
any more. Every session of the process stops with it (a 1,000-BMC lab fleet stopped
answering 40 s into an apply, its I/O thread in a blocking ``recvfrom``). Reading with
``MSG_DONTWAIT`` does not depend on the socket's mode.
"""

from __future__ import annotations

import socket
from typing import Any

import pyghmi.ipmi.private.session as pyghmi_session


def _recvfrom_nowait(sock: Any, size: int) -> tuple[bytes, Any] | None:
    """pyghmi's ``_io_recvfrom``: a datagram waiting on ``sock``, or None."""
    try:
        found: tuple[bytes, Any] = sock.recvfrom(size, socket.MSG_DONTWAIT)
    except OSError:  # nothing waiting (EAGAIN), or the socket went away: as pyghmi
        return None
    return found


def install() -> None:
    """Make pyghmi's I/O thread read without blocking, whatever other threads do."""
    pyghmi_session._io_recvfrom = _recvfrom_nowait
