"""A local Chef server for the lab and the tests: goiardi (Debian package ``goiardi``).

Started on loopback with authentication on; it writes ``admin.pem`` (a user) and
``chef-validator.pem`` into its directory, new keys on every start. Data lives in memory:
a restart is an empty server.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx

from wizard.base.interrupts import deferred_interrupt
from wizard.base.ownedfs import open_append
from wizard.base.yamlfile import write_atomic


class GoiardiError(RuntimeError):
    """goiardi is missing, or would not start."""


def find_goiardi() -> str | None:
    return shutil.which("goiardi")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class Goiardi:
    """One goiardi process on ``host:port`` with its keys in ``directory``."""

    def __init__(self, directory: Path, port: int | None = None, host: str = "127.0.0.1"):
        binary = find_goiardi()
        if binary is None:
            raise GoiardiError("goiardi is not installed (Debian: apt-get install goiardi)")
        self.binary = binary
        self.directory = directory
        self.host = host
        self.port = port or free_port(host)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.pem"

    @property
    def validator_key(self) -> Path:
        return self.directory / "chef-validator.pem"

    def start(self, timeout: float = 15.0, *, pidfile: Path | None = None) -> None:
        """Start it and wait until it answers (an unsigned request gets its 401).

        ``pidfile`` gets its pid before a Ctrl-C can land: whoever stops it by that file
        then finds it however early the start was interrupted.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for key in (self.admin_key, self.validator_key):
            key.unlink(missing_ok=True)
        with open_append(self.directory / "goiardi.log") as log, deferred_interrupt():
            self._process = subprocess.Popen(
                [self.binary, "-A", "-g", "info", "-I", self.host, "-H", self.host,
                 "-P", str(self.port), f"--conf-root={self.directory}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            if pidfile is not None:
                write_atomic(pidfile, f"{self._process.pid}\n", mode=0o644)
        try:
            self._wait_answering(timeout)
        except KeyboardInterrupt:  # it is no one's yet: stop it rather than leave it running
            self.stop()
            raise

    def _wait_answering(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                log_text = (self.directory / "goiardi.log").read_text()[-500:]
                raise GoiardiError(f"goiardi exited at start: {log_text}")
            try:
                if httpx.get(f"{self.url}/nodes", timeout=1).status_code == 401 and \
                        self.admin_key.exists():
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise GoiardiError(f"goiardi did not answer on {self.url} within {timeout} s")
            time.sleep(0.05)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
