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
(see :mod:`wizard.ownedfs`): dnsmasq runs as root, and a planted link must not aim its
writes elsewhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from wizard.ownedfs import open_append, real_dir, touch
from wizard.yamlfile import write_atomic

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
        """Start dnsmasq in the foreground of a child process; wait until it has its pid."""
        if self.running():
            return
        self.pid_file.unlink(missing_ok=True)  # a link there goes too: dnsmasq makes it anew
        touch(self.leases)  # dnsmasq (as root) writes it: a link there is refused
        with open_append(self.log) as log:
            self._process = subprocess.Popen(
                [*self.prefix, self.binary, "--keep-in-foreground", "--log-facility=-",
                 f"--conf-file={self.config}", f"--pid-file={self.pid_file}",
                 *([f"--user={self.user}"] if self.user else [])],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.pid_file.exists() or not self.pid_file.read_text().strip():
            if self._process.poll() is not None:
                tail = _read(self.log) or ""
                self._process = None
                raise DnsmasqError(f"dnsmasq exited at start: {tail.strip()[-500:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise DnsmasqError(f"dnsmasq did not start within {timeout:.0f} s")
            time.sleep(0.02)

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
            self._signal(signal.SIGTERM, process)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL, process)
                process.wait(timeout)
        self.pid_file.unlink(missing_ok=True)

    def _signal(self, sig: int, process: subprocess.Popen[bytes] | None = None) -> None:
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, sig)
                return
            except ProcessLookupError:
                pass
        if process is not None and process.poll() is None:
            process.send_signal(sig)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
