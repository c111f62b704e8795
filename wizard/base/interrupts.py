"""Ctrl-C held back while a daemon is started and its pid recorded; Ctrl-C heard again
where it was inherited ignored.

A KeyboardInterrupt that lands between ``Popen`` returning and the pid file being written
leaves a daemon that nothing knows to stop (``lab up`` interrupted as goiardi started once
left goiardi running). Inside :func:`deferred_interrupt` a Ctrl-C is remembered, not raised;
it is raised at the end of the block, when whatever cleans up can find what was started.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block to its end; a SIGINT received in it is delivered when it ends.

    Only the main thread receives signals: elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, _frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received and callable(previous):
        previous(signal.SIGINT, None)


def interruptible() -> None:
    """Make SIGINT raise KeyboardInterrupt again if this process inherited it ignored.

    A shell runs a background job of a script with SIGINT ignored, and Python then leaves
    it so; an apply is stopped by SIGINT (Ctrl-C, the wizard's Cancel, which signals the
    journal's holder), which it would never hear: a wizard started that way could not
    cancel its deploy (found as a CI run launched in the background hung on it).
    """
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
