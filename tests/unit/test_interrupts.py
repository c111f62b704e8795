"""A Ctrl-C inside ``deferred_interrupt`` lets the block finish, then interrupts."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from wizard.base.interrupts import deferred_interrupt


def test_ctrl_c_in_the_block_is_raised_when_it_ends() -> None:
    finished = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append("the pid file written")
    assert finished == ["the pid file written"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_ctrl_c_no_interrupt_and_the_handler_restored() -> None:
    with deferred_interrupt():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_ignored_before_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_the_block_just_runs() -> None:
    """signal.signal raises there: the block must still run, with nothing to defer."""
    ran = []

    def worker() -> None:
        with deferred_interrupt():
            ran.append(True)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert ran == [True]
