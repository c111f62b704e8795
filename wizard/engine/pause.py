"""Pausing a running apply: a file named ``paused`` beside its journal.

Any process may make or remove it (the wizard, ``crowbar-wizard pause``/``resume``, an
observer); the runner looks for it a few times a second. While it is there no new step
starts; steps already under way finish. A new apply removes a pause left behind by an
earlier one (made before it took the journal's lock), and keeps any made since.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from wizard.base.ownedfs import touch
from wizard.engine.paths import pause_file

POLL = 0.25
"""Seconds between the runner's looks at the pause file."""


def set_paused(journal: Path, paused: bool) -> None:
    """Pause (or resume) the apply writing ``journal``."""
    path = pause_file(journal)
    if paused:
        touch(path)
    else:
        path.unlink(missing_ok=True)


def is_paused(journal: Path) -> bool:
    return pause_file(journal).exists()


def drop_stale_pause(journal: Path, since: float) -> None:
    """Remove a pause made before ``since`` (a time.time()): it was of an earlier apply."""
    path = pause_file(journal)
    try:
        if path.stat().st_mtime < since:
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        pass


class PauseGate:
    """What the runner awaits before each step: it looks at the pause file then and there
    (so a pause holds back every step that has not started), and while paused until the
    file is gone. :meth:`watch` also tells of a pause while no step is starting."""

    def __init__(self, journal: Path, changed: Callable[[bool], None]):
        self.journal = journal
        self._changed = changed
        self._paused = False

    def _note(self, paused: bool) -> None:
        if paused != self._paused:
            self._paused = paused
            self._changed(paused)

    async def wait(self) -> None:
        while is_paused(self.journal):
            self._note(True)
            await asyncio.sleep(POLL)
        self._note(False)

    async def watch(self) -> None:
        """Follow the pause file until cancelled."""
        while True:
            self._note(is_paused(self.journal))
            await asyncio.sleep(POLL)
