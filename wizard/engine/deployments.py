"""Deployments as the faces see them: an apply run as its own process, and the lab.

What the wizard and the CLI do to an apply other than run it in-process lives here, once:

- start one detached (:func:`start_apply`: ``crowbar-wizard apply --json`` in its own
  session, its output appended to the site's apply log), so it goes on when the wizard
  that started it closes or loses its terminal; the same for releasing or reinstalling a
  node (:func:`start_node_command`), and say what an apply would change
  (:func:`pending_changes`: ``apply --dry-run``, also of answers not saved yet);
- find the running one to attach to (:func:`running`: whoever holds the journal's lock);
- follow its journal and output, read-only (:class:`ApplyWatch`, :func:`read_events`);
- pause and resume it (:func:`set_pause`, over :mod:`wizard.engine.pause`) and cancel it as
  Ctrl-C does (:func:`cancel`, SIGINT to the journal's holder);
- start, grow and look at the lab (:func:`start_lab`: ``crowbar-wizard lab up`` in its own
  process, as the lab outlives the wizard), and which of its servers are which nodes
  (:func:`lab_cabled_macs`).

The calls that wait on a process are async, so a face's event loop keeps running.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from wizard.answers import Answers, save
from wizard.base.ownedfs import open_append
from wizard.engine.journal import SITE, Event, holder
from wizard.engine.journal import Journal as Journal  # what a face follows: re-exported
from wizard.engine.paths import SitePaths
from wizard.engine.pause import is_paused, set_paused
from wizard.lab.control import Lab, lab_directory
from wizard.lab.fleet import FleetSpec
from wizard.lab.overlay import cabled_servers

__all__ = ["NODE_ACTIONS", "SITE", "ApplyWatch", "CannotCancel", "Event", "JournalUnreadable",
           "NotRunning", "RunsElsewhere", "StartedApply", "apply_command", "cancel", "holder",
           "is_paused", "journals", "lab_cabled_macs", "lab_is_up", "latest",
           "node_command", "pending_changes", "pending_changes_of", "rack_lab", "read_events",
           "running", "running_lab", "set_pause", "start_apply", "start_lab",
           "start_node_command"]

KINDS = ("lab", "real")
"""An apply of the answers deploys on the lab or for real; each has its own journal."""


# --- which apply -----------------------------------------------------------------------------


def journals(answers: Answers) -> dict[str, Path]:
    """Where the lab's and the real deployment's journals of ``answers`` are."""
    return {"lab": SitePaths.of(answers, lab=True).journal,
            "real": SitePaths.of(answers, lab=False).journal}


def running(answers: Answers) -> str | None:
    """``lab`` or ``real`` when an apply of ``answers`` is running now (it holds the
    journal's lock): the one to attach to."""
    return next((kind for kind, path in journals(answers).items() if apply_holder(path)),
                None)


APPLY = "crowbar-wizard apply"
"""What an apply's journal lock says it is (``Journal.open``'s default command)."""


def apply_holder(journal: Path) -> dict[str, Any] | None:
    """Who holds ``journal`` when it is an apply (None otherwise: nobody, or ``pxe serve``,
    which serves the site's nodes with no deployment to pause, cancel or follow)."""
    who = holder(journal)
    return who if who is not None and who.get("command", APPLY) == APPLY else None


def latest(answers: Answers) -> str | None:
    """The apply of ``answers`` to show: the running one, else the one whose journal was
    written last (None when neither has a journal)."""
    paths = journals(answers)
    return running(answers) or next(
        (kind for kind, path in sorted(paths.items(), key=lambda kp: -_mtime(kp[1]))
         if path.exists()), None)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# --- starting ----------------------------------------------------------------------------------


def apply_command(answers_file: Path, *, lab: bool) -> list[str]:
    """The command line of a detached apply of ``answers_file`` (events as JSON lines)."""
    return [sys.executable, "-m", "wizard.cli", "apply", str(answers_file.resolve()), "--json",
            *(["--lab"] if lab else [])]


class StartedApply:
    """An apply this process started (see :func:`start_apply`)."""

    def __init__(self, process: asyncio.subprocess.Process):
        self._process = process

    @property
    def pid(self) -> int:
        return self._process.pid

    async def wait(self) -> int:
        """Its exit code, once it has ended (130: cancelled)."""
        return await self._process.wait()


async def spawn_detached(command: list[str], log: Path) -> StartedApply:
    """Run ``command`` in its own session (it goes on when this process's terminal goes
    away), its input empty, its output appended to ``log``; raises OSError."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open_append(log) as output:
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output,
            start_new_session=True)
    return StartedApply(process)


async def start_apply(answers_file: Path, journal: Path, *, lab: bool) -> StartedApply:
    """Start an apply of ``answers_file`` that writes ``journal``, detached, its output
    going to the apply log beside the journal; raises OSError when it cannot start."""
    return await spawn_detached(apply_command(answers_file, lab=lab),
                                SitePaths(journal.parent).apply_log)


NODE_ACTIONS = ("release", "reinstall")
"""What ``crowbar-wizard node`` does to one node (see :mod:`wizard.cli.node`)."""


def node_command(action: str, node: str, answers_file: Path, *, lab: bool) -> list[str]:
    """The command line of a detached ``node release`` or ``node reinstall``."""
    if action not in NODE_ACTIONS:
        raise ValueError(f"no node action {action!r}")
    return [sys.executable, "-m", "wizard.cli", "node", action, node,
            str(answers_file.resolve()), "--json", *(["--lab"] if lab else [])]


async def start_node_command(action: str, node: str, answers_file: Path, journal: Path, *,
                             lab: bool) -> StartedApply:
    """Start ``node ACTION NODE`` on ``answers_file``, detached as an apply is (it applies
    them, writing ``journal``); raises OSError when it cannot start."""
    return await spawn_detached(node_command(action, node, answers_file, lab=lab),
                                SitePaths(journal.parent).apply_log)


async def pending_changes_of(answers: Answers, *, lab: bool) -> tuple[bool, list[str]]:
    """:func:`pending_changes` of answers not saved yet: written for it to a temporary file
    in a private directory (inline secrets may be in them), removed after."""
    with tempfile.TemporaryDirectory(prefix="crowbar-pending-") as directory:
        path = Path(directory) / "answers.yaml"
        save(answers, path)
        return await pending_changes(path, lab=lab)


async def pending_changes(answers_file: Path, *, lab: bool) -> tuple[bool, list[str]]:
    """What applying ``answers_file`` would change, as ``apply --dry-run`` says it: (True,
    its lines), or (False, why it cannot say: its error, as written)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wizard.cli", "apply", str(answers_file.resolve()), "--dry-run",
        *(["--lab"] if lab else []), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode == 0:
        return True, out.decode(errors="replace").splitlines()
    return False, [line for line in err.decode(errors="replace").splitlines() if line]


# --- pausing, cancelling ---------------------------------------------------------------------


def set_pause(journal: Path, paused: bool) -> dict[str, Any] | None:
    """Pause (or resume) the apply writing ``journal``: who it is (its lock's holder), or
    None when none runs (then nothing changes)."""
    who = apply_holder(journal)
    if who is not None:
        set_paused(journal, paused)
    return who


class NotRunning(RuntimeError):
    """No apply holds the journal."""


class RunsElsewhere(RuntimeError):
    """The apply runs on another host: it can be cancelled only there."""

    def __init__(self, host: str | None):
        super().__init__(f"the apply runs on {host}: cancel it there")
        self.host = host


class CannotCancel(RuntimeError):
    """The apply could not be signalled (it just ended, it is another user's, ...)."""


def cancel(journal: Path) -> dict[str, Any]:
    """Stop the apply writing ``journal`` as Ctrl-C would (SIGINT to its process, which
    lifts its own pause as it ends; the journal lets the next apply resume): who it was.
    Raises :class:`NotRunning`, :class:`RunsElsewhere` or :class:`CannotCancel`."""
    who = apply_holder(journal)
    if who is None:
        raise NotRunning(f"no apply holds {journal}")
    if who.get("host") != socket.gethostname():
        raise RunsElsewhere(who.get("host"))
    try:
        os.kill(int(who["pid"]), signal.SIGINT)
    except (ProcessLookupError, PermissionError, KeyError, ValueError) as exc:
        raise CannotCancel(str(exc)) from exc
    return who


# --- following -----------------------------------------------------------------------------


class JournalUnreadable(RuntimeError):
    """The journal is there but cannot be read (the message says why); try again later."""


class ApplyWatch:
    """One apply's journal and output, followed read-only as they are written: the same
    whether this process started the apply or found it running. The journal may not exist
    yet (the apply has not made it, or never will: it could not start)."""

    def __init__(self, journal: Path):
        self.path = journal
        self.paths = SitePaths(journal.parent)
        self.journal: Journal | None = None
        self.output_offset = 0
        self.skip_output()

    def open(self) -> bool:
        """Whether the journal is open (opened now if it can be); raises
        :class:`JournalUnreadable`."""
        if self.journal is None and self.path.exists():
            try:
                self.journal = Journal.open(self.path, lock=False)
            except FileNotFoundError:  # the apply is making it: next time
                pass
            except (OSError, sqlite3.Error) as exc:
                raise JournalUnreadable(f"cannot read {self.path}: {exc}") from None
        return self.journal is not None

    def events(self, after: int, limit: int | None = None) -> list[Event]:
        """The journal's events after ``after`` (none while it is not open)."""
        return [] if self.journal is None else self.journal.events(after, limit)

    def holder(self) -> dict[str, Any] | None:
        """Who runs the apply (None: it is not running)."""
        return apply_holder(self.path)

    def paused(self) -> bool:
        return is_paused(self.path)

    def skip_output(self) -> None:
        """Leave out what the apply log holds now (earlier applies' output)."""
        log = self.paths.apply_log
        self.output_offset = log.stat().st_size if log.exists() else 0

    def output(self) -> list[str]:
        """The whole lines the apply printed since the last call (besides its events: its
        errors, the provisioner's URL, as JSON lines or text)."""
        try:
            with self.paths.apply_log.open("rb") as file:
                file.seek(self.output_offset)
                data = file.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self.output_offset += end
        return data[:end].decode(errors="replace").splitlines()

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None


def read_events(journal: Path, after: int = 0, kind: str | None = None) -> list[Event]:
    """The events of ``journal`` after ``after`` (of ``kind``, if given); none when there is
    no journal yet or it cannot be read now."""
    if not journal.exists():
        return []
    try:
        with Journal.open(journal, lock=False) as opened:
            return opened.events(after, kind=kind)
    except (OSError, sqlite3.Error):
        return []


# --- the lab -----------------------------------------------------------------------------------


def _lab() -> Lab:
    return Lab(lab_directory())


def lab_is_up() -> bool:
    return _lab().pid() is not None


def running_lab() -> FleetSpec | None:
    """The servers of the lab when it runs now."""
    lab = _lab()
    return lab.spec() if lab.pid() is not None else None


def lab_cabled_macs(names: list[str]) -> dict[str, str]:
    """The node of ``names`` on each NIC MAC of the running lab's servers, for those nodes
    deployed on it: on the lab, a node's MACs in the answers are not its server's."""
    lab = _lab()
    spec = lab.spec() if lab.pid() is not None else None
    if spec is None:
        return {}
    return {mac: name for name, index in cabled_servers(lab, names).items()
            if index < len(spec.bmcs) for mac in spec.bmcs[index].hardware.nic_macs}


async def start_lab(nodes: int) -> tuple[bool, list[str]]:
    """``crowbar-wizard lab up`` with ``nodes`` servers (at least 1), in its own process
    and session (the lab outlives the wizard): whether the lab started, and what the
    command printed."""
    return await _lab_command("up", "--nodes", str(max(nodes, 1)), own_session=True)


async def rack_lab(count: int) -> tuple[bool, list[str]]:
    """``crowbar-wizard lab rack COUNT``: whether the running lab took the servers, and what
    the command printed."""
    return await _lab_command("rack", str(count))


async def _lab_command(*words: str, own_session: bool = False) -> tuple[bool, list[str]]:
    """``crowbar-wizard lab WORDS...``: whether it succeeded, and its output's lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wizard.cli", "lab", *words,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=own_session)
    out, _ = await process.communicate()
    return process.returncode == 0, out.decode(errors="replace").strip().splitlines()


