"""Run a daemon that dies with the process that started it, however that process ends.

``python -m wizard.provisioning.tether -- COMMAND...`` runs COMMAND as its child and watches its
own stdin, a pipe whose other end only the starting process holds. When that process ends
(returns, raises, is killed by SIGTERM or SIGKILL), the kernel closes the pipe; the tether
reads end-of-file and stops COMMAND (SIGTERM, then SIGKILL after ``GRACE`` seconds).

Why not ``PR_SET_PDEATHSIG`` on the daemon itself: the kernel clears it when a process
changes its user or group, and dnsmasq drops root to an unprivileged user right after
start. It would also fire when the *thread* that started the child ends, not the process.

SIGTERM, SIGINT and SIGHUP sent to the tether are passed on to COMMAND (dnsmasq re-reads
its reservations on SIGHUP). The tether exits as COMMAND did: with its status, or killed
by the same signal, so the starting process sees COMMAND's own end.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Sequence

GRACE = 5.0
"""Seconds COMMAND has to exit on SIGTERM once its starter is gone."""
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main(argv: Sequence[str]) -> int:
    command = list(argv[1:] if argv and argv[0] == "--" else argv)
    if not command:
        print("usage: python -m wizard.provisioning.tether -- COMMAND...", file=sys.stderr)
        return 2
    children: list[subprocess.Popen[bytes]] = []
    early: list[int] = []  # signals that came before the child: passed on once it runs

    def forward(number: int, _frame: object) -> None:
        if children:
            _forward(children[0], number)
        else:
            early.append(number)
    for number in FORWARDED:
        signal.signal(number, forward)
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    children.append(child)
    for signum in early:
        _forward(child, signum)
    exited = os.pidfd_open(child.pid)
    with selectors.DefaultSelector() as watch:
        watch.register(exited, selectors.EVENT_READ)
        watch.register(sys.stdin.fileno(), selectors.EVENT_READ)
        while child.poll() is None:
            ready = {key.fd for key, _ in watch.select()}
            if sys.stdin.fileno() in ready and not os.read(sys.stdin.fileno(), 4096):
                _stop(child)  # the starter is gone
                break
    os.close(exited)
    return _mirror(child.wait())


def _forward(child: subprocess.Popen[bytes], number: int) -> None:
    if child.poll() is None:
        child.send_signal(number)


def _stop(child: subprocess.Popen[bytes]) -> None:
    _forward(child, signal.SIGTERM)
    try:
        child.wait(GRACE)
    except subprocess.TimeoutExpired:
        child.kill()


def _mirror(status: int) -> int:
    """Exit as the child did: killed by its signal (the default action), or its status."""
    if status < 0:
        for number in FORWARDED:
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        return 128 - status  # a signal whose default action does not end the process
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
