"""The lab's node agents: what each simulated server does when it boots from the network.

A real server PXE-boots: DHCP tells it the provisioner, iPXE fetches its boot script, and
the script decides. A lab server does the same over real HTTP, minus the firmware:

* discovery script: post the server's inventory to ``/inventory`` with the script's token;
* install script: fetch the installer's answer file the script points at, "install" (a
  short wait), then run the answer file's post-install step as a real installer would:
  send the public half of the node's own key with the node's token (the admin node
  registers it as the node's Chef client), run chef-client's first contact with that key
  through the real Chef API (:func:`wizard.chef.node.first_run`), and call back
  ``installed``;
* local disk or unknown: nothing to do.

The provisioner's URL stands in for DHCP: the engine writes it to ``provisioner.url`` in
the lab directory while it serves. A server's address on the admin network is its BMC's
loopback address: its requests come from there, as a real node's come from its lease.
Agents run on a thread pool beside the fleet's IPMI loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from wizard.base.yamlfile import write_atomic
from wizard.chef.api import ChefError
from wizard.chef.node import first_run, public_pem

log = logging.getLogger("wizard.lab.agent")
INSTALL_SECONDS = 0.5
"""How long a lab server "installs" its OS."""
_TOKEN = re.compile(r"X-Crowbar-Token: ([0-9a-f]{32})")
_INSTALLED = re.compile(r"(https?://[^\s\"']+/nodes/[^\s\"'/]+/installed)")
_CLIENT_KEY = re.compile(r"(https?://[^\s\"']+/nodes/[^\s\"'/]+/client-key)")
_CHEF_URL = re.compile(r"chef_server_url\s+\\?\"([^\"\\]+)")
_NODE_NAME = re.compile(r"node_name\s+\\?\"([^\"\\]+)")
_ANSWER_URL = re.compile(r"(?:s=|inst\.ks=|url=)(https?://\S+/install/[^\s/]+/\S*)")


KEY_POOL = 4
"""Key pairs a lab's nodes take their Chef client keys from (see :meth:`NodeAgents.node_key`)."""


def node_keys(directory: Path) -> Path:
    """Where a lab keeps its nodes' private keys, and which one each node holds."""
    return directory / "node-keys"


def node_key(directory: Path, node: str) -> str:
    """The private key (PEM) node ``node`` (its FQDN) registered with in its last install."""
    keys = node_keys(directory)
    return (keys / f"{(keys / node).read_text().strip()}.pem").read_text()


class NodeAgents:
    """The agents of one lab fleet."""

    def __init__(self, directory: Path, workers: int = 32):
        self.directory = directory
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="agent")
        self._keys: dict[int, str] = {}
        self._key_lock = threading.Lock()

    def node_key(self, node: str) -> str:
        """The key pair (PEM) node ``node`` (its FQDN) makes in this install.

        A real installer makes a new one each time; the lab's nodes take theirs from a
        pool of :data:`KEY_POOL`, made once, so the Chef server need not make 1,000 RSA
        keys: each install of a node takes the pool's next, so a reinstalled node registers
        a new key. The pool and which key each node holds are kept in the lab directory
        (0600, :func:`node_keys`), where the lab's chef-client (:mod:`wizard.lab.chef_client`)
        reads them to act as the node."""
        keys = node_keys(self.directory)
        with self._key_lock:
            keys.mkdir(mode=0o700, exist_ok=True)
            try:
                index = (int((keys / node).read_text()) + 1) % KEY_POOL
            except (FileNotFoundError, ValueError):
                index = zlib.crc32(node.encode()) % KEY_POOL
            if index not in self._keys:
                path = keys / f"{index}.pem"
                if path.exists():  # a fleet restarted on the same lab keeps the pool
                    self._keys[index] = path.read_text()
                else:
                    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                    self._keys[index] = key.private_bytes(
                        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption()).decode()
                    write_atomic(path, self._keys[index], mode=0o600)
            write_atomic(keys / node, f"{index}\n", mode=0o600, sync=False)
            return self._keys[index]

    def booted(self, mac: str, device: str, hardware: dict[str, Any], address: str) -> None:
        """A server booted from ``device``; act on a network boot (never blocks). Its
        requests come from ``address``."""
        if device == "network":
            self._pool.submit(self._network_boot, mac, hardware, address)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _provisioner(self) -> str | None:
        try:
            return (self.directory / "provisioner.url").read_text().strip() or None
        except FileNotFoundError:
            return None

    def _network_boot(self, mac: str, hardware: dict[str, Any], address: str) -> None:
        url = self._provisioner()
        if url is None:
            log.info("%s: network boot, but no provisioner answers (no DHCP)", mac)
            return
        # plain HTTP (the lab's provisioner): no CA certificates to load, ~30 ms an install
        transport = httpx.HTTPTransport(local_address=address,
                                        verify=url.startswith("https://"))
        with httpx.Client(timeout=10, transport=transport) as http:
            try:
                script = _retrying(lambda: http.get(f"{url}/boot/{mac}")).text
                if "crowbar.url=" in script:
                    self._discover(http, url, mac, script, hardware)
                elif "/install/" in script:
                    self._install(http, mac, script)
            except (httpx.HTTPError, ChefError, ValueError) as exc:
                log.warning("%s: network boot failed: %s", mac, exc)

    def _discover(self, http: httpx.Client, url: str, mac: str, script: str,
                  hardware: dict[str, Any]) -> None:
        token = re.search(r"crowbar\.token=([0-9a-f]+)", script)
        if token is None:
            raise ValueError("discovery script without a token")
        report = {"mac": mac, "macs": hardware["nic_macs"], "serial": hardware["serial"],
                  "manufacturer": hardware["vendor"], "model": hardware["model"],
                  "cpu_cores": hardware["cpu_cores"], "memory_gb": hardware["memory_gb"],
                  "disks": hardware["disks"], "virtualization": hardware["virtualization"]}
        _retrying(lambda: http.post(f"{url}/inventory", json=report,
                                    headers={"X-Crowbar-Token": token.group(1)}))

    def _install(self, http: httpx.Client, mac: str, script: str) -> None:
        where = _ANSWER_URL.search(script)
        if where is None:
            raise ValueError("install script without an answer file URL")
        answer_url = where.group(1)
        if answer_url.endswith("/"):
            answer_url += "user-data"
        answers = _retrying(lambda: http.get(answer_url)).text
        token, installed = _TOKEN.search(answers), _INSTALLED.search(answers)
        if token is None or installed is None:
            raise ValueError(f"{answer_url} has no installed callback")
        headers = {"X-Crowbar-Token": token.group(1)}
        time.sleep(INSTALL_SECONDS)
        chef_url, node_name = _CHEF_URL.search(answers), _NODE_NAME.search(answers)
        client_key = _CLIENT_KEY.search(answers)
        if chef_url and node_name and client_key:
            own = self.node_key(node_name.group(1))
            _retrying(lambda: http.post(client_key.group(1), headers=headers,
                                        content=public_pem(own)))
            asyncio.run(first_run(chef_url.group(1), node_name.group(1), own))
        _retrying(lambda: http.post(installed.group(1), headers=headers))
        log.info("%s: installed", mac)


def _retrying(call: Callable[[], httpx.Response], attempts: int = 120,
              delay: float = 0.25) -> httpx.Response:
    """A request retried (for 30 s) while the provisioner is away or answers 5xx, as an
    installer's ``curl --retry`` would."""
    for attempt in range(attempts):
        try:
            response = call()
            if response.status_code < 500:
                response.raise_for_status()
                return response
        except httpx.TransportError:
            if attempt == attempts - 1:
                raise
        time.sleep(delay)
    response.raise_for_status()
    return response
