"""The lab's chef-client: what a lab server does when the engine asks it to converge.

A real node runs chef-client when the engine asks (over SSH: :mod:`wizard.chef.starters`).
No Chef client package exists in any registry these machines reach, so a lab server plays
the client's part itself, over the real Chef API against the lab's Chef server (goiardi),
as the node's own API client with the node's own key (the one its installer registered):

1. reads its node object: the run list the engine set, its environment, the request id;
2. expands the run list as chef-client does, each role's own run list from ``GET /roles``;
3. depsolves the recipes in its environment (``POST /environments/ENV/cookbook_versions``):
   the server picks the cookbook versions the environment pins, or refuses the run list;
4. downloads every file of every cookbook it is given that its cache does not hold, and
   checks each against its checksum: a file that does not match fails the run, as it would
   fail chef-client's;
5. saves its node object with automatic attributes (ohai's: platform, addresses, MAC,
   ``ohai_time``) and its run in ``crowbar.converge.last`` as the deployer cookbook's
   handler records it (:mod:`wizard.chef.converge`), on failure as on success.

The one thing it does not do is run the recipes: nothing installs, writes or restarts on a
lab server (the cookbook output tests run recipes under ``tests/chef_recorder.rb``).

Lab faults, set by ``lab up --fault INDEX:converge_fail`` or ``lab fault``, are read from
the fleet's spec at each run: ``converge_fail`` records a failed run with a message, as a
recipe that raised would; ``converge_hang`` never ends and records nothing (the engine's
converge timeout catches it).

``apply --lab`` runs the servers' clients in worker processes (:class:`LabChefPool`): a
thousand servers' runs sign and send tens of thousands of requests, which in the apply's
own process would hold up its event loop (and the IPMI and HTTP work of the nodes still
installing) and leave the machine's other core idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import multiprocessing
import os
import signal
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wizard.answers import Answers
from wizard.chef.api import ChefError
from wizard.chef.converge import LAST_PATH, REQUEST_PATH, dig
from wizard.lab.agent import node_key
from wizard.lab.bmc import CONVERGE_FAULTS
from wizard.lab.chef_wire import LabChef
from wizard.lab.fleet import FleetSpec

SEGMENTS = ("recipes", "attributes", "definitions", "libraries", "resources", "providers",
            "templates", "files", "root_files")
CLIENT_VERSION = "lab"
"""What the lab's client says its chef version is (``chef_packages.chef.version``)."""


class RunFailed(Exception):
    """The run failed; the message is what chef-client would have said."""


@dataclass(frozen=True)
class Facts:
    """What ohai would find on a lab server."""

    fqdn: str
    macaddress: str
    platform: str
    platform_family: str
    platform_version: str


class LabChefClient:
    """The chef-client of every lab server (and of the admin node, on the lab)."""

    def __init__(self, server_url: str, keys: Callable[[str], str], facts: dict[str, Facts],
                 *, organization: str | None = None):
        """``keys``: a node's private key (PEM) by FQDN."""
        self.server_url = server_url
        self.organization = organization
        self._keys = keys
        self._facts = facts
        self._cache: dict[str, set[str]] = {}
        """Checksums of the cookbook files each node holds, as chef-client's file cache."""
        self.downloads = 0
        """Files downloaded so far, by every node (the benchmark reports it)."""

    async def run(self, node: str, faults: set[str]) -> str:
        """One chef-client run on ``node`` (its FQDN), failing if ``faults`` say so (a hang
        is :class:`LabChefPool`'s to play: it never reaches a worker)."""
        started = time.time()
        async with LabChef(self.server_url, node, self._keys(node), self.organization) as me:
            current = await me.get("nodes", node)
            if current is None:
                raise OSError(f"{node} has no node object to converge")
            run_list = [str(item) for item in current.get("run_list", [])]
            error = None
            try:
                recipes = await _expand(me, run_list)
                if "converge_fail" in faults:
                    raise RunFailed(
                        f"lab fault converge_fail: recipe[{recipes[0] if recipes else '?'}] "
                        f"raised RuntimeError: this lab server was told to fail its "
                        f"converge (`crowbar-wizard lab fault --clear` lifts it)")
                await self._sync_cookbooks(me, node, current["chef_environment"], recipes)
            except (RunFailed, ChefError) as exc:
                error = str(exc)
            await me.request("PUT", f"/nodes/{quote(node, safe='')}",
                             self._saved(current, run_list, started, error))
        return (f"Chef Client finished, {len(run_list)} run list items" if error is None
                else f"Chef Client failed: {error}")

    async def _sync_cookbooks(self, me: LabChef, node: str, environment: str,
                              recipes: list[str]) -> None:
        """Depsolve ``recipes`` and fetch what the cache lacks, checking every checksum."""
        if not recipes:
            return
        try:
            solved = await me.request(
                "POST", f"/environments/{quote(environment, safe='')}/cookbook_versions",
                {"run_list": recipes})
        except ChefError as exc:
            raise RunFailed(f"could not solve the run list's cookbooks: {exc}") from None
        cache = self._cache.setdefault(node, set())
        for name, version in sorted(solved.items()):
            for segment in SEGMENTS:
                for item in version.get(segment, []):
                    checksum = item["checksum"]
                    if checksum in cache:
                        continue
                    data = await me.get_file(item["url"])
                    self.downloads += 1
                    if hashlib.md5(data, usedforsecurity=False).hexdigest() != checksum:
                        raise RunFailed(f"cookbook {name} {version.get('version')}: "
                                        f"{item['path']} does not match its checksum")
                    cache.add(checksum)

    def _saved(self, node: dict[str, Any], run_list: list[str], started: float,
               error: str | None) -> dict[str, Any]:
        """The node object as the run leaves it: ohai's facts, and the run's record."""
        facts = self._facts[node["name"]]
        normal = dict(node.get("normal", {}))
        crowbar = dict(normal.get("crowbar", {}))
        converge = dict(crowbar.get("converge", {}))
        converge[LAST_PATH[-1]] = {
            "request": dig(normal, REQUEST_PATH), "status": "failed" if error else "success",
            "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "elapsed": round(time.time() - started, 3), "error": error, "run_list": run_list,
        }
        crowbar["converge"] = converge
        normal["crowbar"] = crowbar
        address = dig(normal, ("crowbar", "network", "admin"))
        hostname, _, domain = facts.fqdn.partition(".")
        automatic = {
            "fqdn": facts.fqdn, "hostname": hostname, "domain": domain,
            "ipaddress": address, "macaddress": facts.macaddress, "os": "linux",
            "platform": facts.platform, "platform_family": facts.platform_family,
            "platform_version": facts.platform_version, "ohai_time": time.time(),
            "chef_packages": {"chef": {"version": CLIENT_VERSION}},
        }
        return {**node, "normal": normal, "automatic": automatic}


async def _expand(me: LabChef, run_list: list[str]) -> list[str]:
    """The recipes ``run_list`` names, roles expanded in order, each recipe once (as
    chef-client's run list expansion); a role the server lacks fails the run."""
    recipes: list[str] = []
    seen_roles: set[str] = set()

    async def walk(items: list[str]) -> None:
        for item in items:
            kind, _, name = item.partition("[")
            name = name.rstrip("]")
            if kind == "recipe":
                recipe = name if "::" in name else f"{name}::default"
                if recipe not in recipes:
                    recipes.append(recipe)
            elif kind == "role" and name not in seen_roles:
                seen_roles.add(name)
                role = await me.get("roles", name)
                if role is None:
                    raise RunFailed(f"role[{name}] is not on the Chef server")
                await walk([str(i) for i in role.get("run_list", [])])
    await walk(run_list)
    return recipes


class FleetFaults:
    """The converge faults of a lab's servers, by node FQDN, read again when ``lab fault``
    (or a new ``lab up``) changes the fleet's spec."""

    def __init__(self, directory: Path, addresses: dict[str, str]):
        """``addresses``: each node's BMC address by FQDN (how the spec names servers)."""
        self._path = directory / "fleet.json"
        self._addresses = addresses
        self._seen: tuple[int, int] | None = None
        self._faults: dict[str, set[str]] = {}

    def __call__(self, node: str) -> set[str]:
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return set()
        if (stat.st_mtime_ns, stat.st_size) != self._seen:
            spec = FleetSpec.from_json(self._path.read_text())
            self._faults = {bmc.address: {kind for kind in CONVERGE_FAULTS
                                          if getattr(bmc.faults, kind)}
                            for bmc in spec.bmcs}
            self._seen = (stat.st_mtime_ns, stat.st_size)
        return self._faults.get(self._addresses.get(node, ""), set())


@dataclass(frozen=True)
class LabClients:
    """What a lab's chef-clients need, picklable for a worker process."""

    server_url: str
    organization: str | None
    facts: dict[str, Facts]
    admin: str
    admin_key: Path
    lab_directory: Path
    addresses: dict[str, str] = field(default_factory=dict)
    """Each node's BMC address by FQDN (how the fleet's spec names its servers)."""

    def client(self) -> LabChefClient:
        def keys(node: str) -> str:
            # each node's as its last install made it (:func:`wizard.lab.agent.node_key`)
            return (self.admin_key.read_text() if node == self.admin
                    else node_key(self.lab_directory, node))
        return LabChefClient(self.server_url, keys, self.facts,
                             organization=self.organization)


class LabChefPool:
    """The lab servers' chef-client runs, in worker processes (one per CPU, at most two),
    many at once in each: the :class:`wizard.chef.converge.Starter` of ``apply --lab``.

    The workers run at a lower CPU priority (``nice``): they play the servers, whose work
    would not slow the admin node's own, so the apply, the BMCs and the provisioner keep
    the CPU they need for the nodes still installing. A hung run is kept in this process
    (it never ends: no worker is held by it); each worker keeps its servers' file caches
    across runs. Workers die with this process, however it ends."""

    def __init__(self, clients: LabClients, workers: int | None = None):
        self.clients = clients
        self._faults = FleetFaults(clients.lab_directory, clients.addresses)
        self._count = workers or max(1, min(2, os.cpu_count() or 1))
        self._workers: list[tuple[BaseProcess, Connection]] = []
        self._waiting: dict[int, asyncio.Future[str]] = {}
        self._sent = 0

    async def start(self, node: str) -> str:
        faults = self._faults(node)
        if "converge_hang" in faults:
            await asyncio.Event().wait()  # never reports: the engine's timeout catches it
        if not self._workers:
            self._spawn()
        self._sent += 1
        ticket = self._sent
        reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[ticket] = reply
        # a server's runs go to one worker, which holds its file cache (as its disk would)
        _, conn = self._workers[zlib.crc32(node.encode()) % len(self._workers)]
        conn.send((ticket, node, faults))
        try:
            return await reply
        finally:
            self._waiting.pop(ticket, None)

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        for _ in range(self._count):
            mine, theirs = context.Pipe()
            process = context.Process(target=_worker_main, daemon=True,
                                      args=(theirs, self.clients, os.getpid()))
            process.start()
            theirs.close()
            loop.add_reader(mine.fileno(), self._replied, mine)
            self._workers.append((process, mine))

    def _replied(self, conn: Connection) -> None:
        try:
            ticket, ok, value = conn.recv()
        except (EOFError, OSError):  # the worker died: its runs never report
            asyncio.get_running_loop().remove_reader(conn.fileno())
            return
        reply = self._waiting.get(ticket)
        if reply is None or reply.done():  # the engine gave up on it (its timeout)
            return
        if ok:
            reply.set_result(value)
        else:
            reply.set_exception(value)

    def close(self) -> None:
        for process, conn in self._workers:
            with contextlib.suppress(RuntimeError, ValueError):  # no loop, or closed
                asyncio.get_running_loop().remove_reader(conn.fileno())
            conn.close()  # the worker's loop sees the end and exits
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
        self._workers = []


def _worker_main(conn: Connection, clients: LabClients, apply: int) -> None:
    """A worker: dies with the apply (SIGKILL included), ignores Ctrl-C (the apply handles
    it), yields the CPU to the admin node's work, and runs every run it is sent at once."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != apply:  # it died while this worker started: no signal comes
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(10)
    client = clients.client()
    loop = asyncio.new_event_loop()
    runs: set[asyncio.Task[None]] = set()

    async def one(ticket: int, node: str, faults: set[str]) -> None:
        try:
            reply: tuple[int, bool, object] = (ticket, True, await client.run(node, faults))
        except (ChefError, OSError) as exc:
            reply = (ticket, False, exc)
        except Exception as exc:  # any other: said, never lost in a worker
            reply = (ticket, False, OSError(f"the lab's chef-client failed: {exc!r}"))
        conn.send(reply)

    def received() -> None:
        try:
            ticket, node, faults = conn.recv()
        except (EOFError, OSError):
            loop.stop()
            return
        task = loop.create_task(one(ticket, node, faults))
        runs.add(task)
        task.add_done_callback(runs.discard)
    loop.add_reader(conn.fileno(), received)
    loop.run_forever()


def lab_chef_client(answers: Answers, lab_directory: Path, admin_key: Path) -> LabChefPool:
    """The chef-client of ``answers``' nodes on the lab (answers as cabled to it, with the
    lab's Chef server) and of its admin node, whose key is ``admin_key``."""
    if answers.chef.server_url is None:
        raise ValueError("the lab has no Chef server to converge from")
    domain = answers.site.domain
    name, _, version = answers.provisioning.os.partition("-")
    family = "rhel" if name in ("rocky", "alma") else name
    platform = {"alma": "almalinux"}.get(name, name)
    facts = {f"{node.name}.{domain}": Facts(f"{node.name}.{domain}", node.macs[0] if
                                            node.macs else "", platform, family, version)
             for node in answers.nodes}
    admin = f"{answers.admin.hostname}.{domain}"
    facts[admin] = Facts(admin, "", platform, family, version)
    return LabChefPool(LabClients(
        answers.chef.server_url, answers.chef.organization, facts,
        admin, admin_key, lab_directory,
        {f"{node.name}.{domain}": node.bmc_address for node in answers.nodes
         if node.bmc_address}))
