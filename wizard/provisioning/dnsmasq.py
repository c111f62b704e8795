"""dnsmasq, the admin network's DHCP and TFTP server: checked configs, safe swaps, reloads.

A directory holds everything one dnsmasq uses::

    dnsmasq.conf            the running config      dnsmasq.conf.last-good  the one before it
    hosts/nodes             DHCP reservations       hosts/nodes.last-good
    leases                  the lease database      dnsmasq.pid, dnsmasq.log

:meth:`Dnsmasq.install` never lets dnsmasq see a config it rejects: the new config and
reservations are first run through ``dnsmasq --test`` together, and only then swapped in
(atomic rename, the previous files kept as ``.last-good``). Reservations live in a
``dhcp-hostsdir``, so a change there is a SIGHUP (dnsmasq re-reads them); a changed main
config restarts dnsmasq. Neither drops a lease: leases live in the lease file, which
dnsmasq reads back on start. Nothing here writes through a symbolic link in the directory
(see :mod:`wizard.base.ownedfs`): dnsmasq runs as root, and a planted link must not aim its
writes elsewhere.

dnsmasq lives as long as the process that started it: :meth:`Dnsmasq.start` returns once
it has passed its own start-up checks (or raises with its reason), and it is stopped when
that process ends, by :meth:`Dnsmasq.stop` or, on SIGKILL or any other death, by its tether
(:mod:`wizard.provisioning.tether`). :meth:`Dnsmasq.failure` says why one that died did.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from wizard.base.ownedfs import open_append, real_dir, touch
from wizard.base.yamlfile import write_atomic

Change = Literal["unchanged", "reservations", "config"]


class DnsmasqError(RuntimeError):
    """dnsmasq refused a config, or would not start or stop."""


def find_dnsmasq() -> str | None:
    """The dnsmasq binary (it lives in /usr/sbin, often off a normal user's PATH)."""
    return shutil.which("dnsmasq") or shutil.which("dnsmasq", path="/usr/sbin:/sbin")


class Dnsmasq:
    """One dnsmasq and its directory.

    ``prefix`` runs it elsewhere (``ip netns exec NS``); ``user`` is the account dnsmasq
    drops to (its default, ``nobody``, must be able to read the TFTP root).
    """

    def __init__(self, directory: Path, *, binary: str | None = None,
                 prefix: Sequence[str] = (), user: str | None = None):
        self.directory = directory
        self.config = directory / "dnsmasq.conf"
        self.hosts_dir = directory / "hosts"
        self.hosts = self.hosts_dir / "nodes"
        self.leases = directory / "leases"
        self.pid_file = directory / "dnsmasq.pid"
        self.log = directory / "dnsmasq.log"
        found = binary or find_dnsmasq()
        if found is None:
            raise DnsmasqError("dnsmasq is not installed (Debian: apt-get install dnsmasq-base)")
        self.binary = found
        self.prefix = list(prefix)
        self.user = user
        self._process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    # --- config --------------------------------------------------------------------------

    def check(self, config: str, reservations: str) -> None:
        """Run ``dnsmasq --test`` on the config with the reservations inlined; raise
        :class:`DnsmasqError` with dnsmasq's own message when it refuses them."""
        self.directory.mkdir(parents=True, exist_ok=True)
        hosts = "".join(f"dhcp-host={line}\n" for line in reservations.splitlines()
                        if line.strip() and not line.startswith("#"))
        fd, name = tempfile.mkstemp(prefix=".trial-", suffix=".conf", dir=self.directory)
        trial = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(config + "\n" + hosts)
            result = subprocess.run([*self.prefix, self.binary, "--test", "-C", str(trial)],
                                    capture_output=True, text=True, timeout=30)
        finally:
            trial.unlink(missing_ok=True)
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip().replace(str(trial), "config")
            raise DnsmasqError(f"dnsmasq refused the new config: {message}")

    def install(self, config: str, reservations: str) -> Change:
        """Check, then swap in ``config`` and ``reservations`` and reload a running dnsmasq.

        A refused config raises :class:`DnsmasqError` and changes nothing.
        """
        old_config = _read(self.config)
        old_hosts = _read(self.hosts)
        if config == old_config and reservations == old_hosts:
            return "unchanged"
        self.check(config, reservations)
        real_dir(self.hosts_dir, self.directory)
        change: Change = "config" if config != old_config else "reservations"
        for path, old, new in ((self.config, old_config, config),
                               (self.hosts, old_hosts, reservations)):
            if new == old:
                continue
            if old is not None:
                write_atomic(path.with_name(path.name + ".last-good"), old, mode=0o644)
            write_atomic(path, new, mode=0o644)
        if self.running():
            if change == "config":
                self.stop()
                self.start()
            else:
                self._signal(signal.SIGHUP)
        return change

    # --- process -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start dnsmasq in the foreground of a child process; return once it has passed
        its start-up checks, or raise :class:`DnsmasqError` with its own reason.

        dnsmasq runs under a tether (:mod:`wizard.provisioning.tether`) that stops it when this
        process ends, however it ends: no dnsmasq is left answering DHCP behind a stopped
        ``pxe serve`` or ``apply``. Its pid file is written before it drops root and checks
        its TFTP root, so start-up is over only at its "started" log line.
        """
        if self.running():
            return
        self.pid_file.unlink(missing_ok=True)  # a link there goes too: dnsmasq makes it anew
        touch(self.leases)  # dnsmasq (as root) writes it: a link there is refused
        with open_append(self.log) as log:
            self._log_start = log.seek(0, os.SEEK_END)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "wizard.provisioning.tether", "--", *self.command()],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "LC_ALL": "C"},  # its log lines, read below, in English
                start_new_session=True,  # Ctrl-C at a terminal is for us: we stop it
            )
        deadline = time.monotonic() + timeout
        while not self._started():
            if self._process.poll() is not None:  # kept: failure() says why, later too
                raise DnsmasqError(f"dnsmasq exited at start: {self.failure()}")
            if time.monotonic() > deadline:
                self.stop()
                raise DnsmasqError(f"dnsmasq did not start within {timeout:.0f} s")
            time.sleep(0.02)

    def command(self) -> list[str]:
        """dnsmasq's command line: in the foreground, logging to its stdout."""
        return [*self.prefix, self.binary, "--keep-in-foreground", "--log-facility=-",
                f"--conf-file={self.config}", f"--pid-file={self.pid_file}",
                *([f"--user={self.user}"] if self.user else [])]

    def _started(self) -> bool:
        return self.pid() is not None and any(
            line.startswith("started, version ") for line in self._log_lines())

    def _log_lines(self) -> list[str]:
        """What the running (or last) dnsmasq logged, without its ``dnsmasq[PID]:`` tags."""
        try:
            with self.log.open("rb") as file:
                file.seek(self._log_start)
                text = file.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        return [line.split(": ", 1)[-1] if line.startswith("dnsmasq") else line
                for line in text.splitlines() if line.strip()]

    def failure(self) -> str | None:
        """None while dnsmasq runs (or was never started); once it has exited, why: its
        own words when it failed its start-up checks, else the signal that killed it or
        its exit status and last log line."""
        process = self._process
        if process is None or process.poll() is None:
            return None
        lines = self._log_lines()
        if not any(line.startswith("started, version ") for line in lines):
            said = [line for line in lines if line != "FAILED to start up"]
            if said:
                return "; ".join(said[-3:])
        status = process.returncode
        if status < 0:
            return f"killed by {signal.Signals(-status).name}"
        return f"exit status {status}" + (f" (its last log line: {lines[-1]})" if lines else "")

    def pid(self) -> int | None:
        text = _read(self.pid_file)
        return int(text) if text and text.strip().isdigit() else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop dnsmasq (TERM, then KILL); its leases stay in the lease file."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the tether passes it on
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # the tether and dnsmasq
                process.wait(timeout)
        if process.stdin is not None:
            process.stdin.close()
        self.pid_file.unlink(missing_ok=True)

    def _signal(self, sig: int) -> None:
        """Signal dnsmasq through its tether (never by its pid file: it outlives dnsmasq,
        and its pid may since be another process's)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(sig)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
