"""The runner: carries out a plan through the real drivers, journaling every step.

Site steps first (DHCP reservations and dnsmasq, the cookbooks, then the Chef environment
that pins them, roles and data bag items), then every node's lifecycle at once, bounded
per driver: IPMI calls by the IPMI driver's own limit, Chef requests by the Chef client's
pool. Each step has a timeout and is retried with backoff; an authentication failure, or
a cookbook version the server holds with other files, is not retried. A node whose step
fails for good goes to ``problem`` with the reason, and the others go on.

The provisioner's HTTP service runs in the same event loop for the whole apply (and, on
real networks, dnsmasq beside it): nodes fetch their boot scripts from it, and their
installers' ``installed`` callbacks move them on (they are written to the journal, which
is where the runner waits for them), and an installer that reports a problem (chef-client
could not be installed, say) puts its node in ``problem`` at once, with the installer's
reason, instead of leaving it to time out. Both stop when apply ends.

On start the runner resumes from the journal: done steps are not repeated; a step that was
in flight is checked against the real system first (a power cycle whose one-time network
boot has been used up has happened). A pause (:mod:`wizard.engine.pause`) holds back every
step not yet started until it is lifted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.answers import Answers
from wizard.base.yamlfile import write_atomic
from wizard.catalog import Catalog
from wizard.chef.api import ChefAuthError, ChefError, ChefServer
from wizard.chef.converge import RunRecord, Starter, new_request, read_run, with_request
from wizard.chef.cookbooks import site_cookbooks, vendored
from wizard.chef.node import public_pem, register_client
from wizard.chef.objects import ChefObjects, export_repo, render
from wizard.chef.push import Target, targets
from wizard.chef.starters import admin_client_config
from wizard.chef.upload import CookbookConflict, upload_cookbook
from wizard.engine.changes import attribute_changes, attribute_record, converge_inputs
from wizard.engine.convergence import Blocked, Schedule, role_graph, step_name, step_role
from wizard.engine.journal import LIFECYCLE, SITE, Journal
from wizard.engine.journal_states import JournalStates
from wizard.engine.orders import JournalOrders
from wizard.engine.paths import SitePaths
from wizard.engine.pause import PauseGate, drop_stale_pause, set_paused
from wizard.engine.phases import CORE_CONVERGED
from wizard.engine.plan import (
    ATTRIBUTES_STEP,
    CHEF_STEP,
    DHCP_STEP,
    NODE_STEPS,
    ChefChange,
    Plan,
    build,
)
from wizard.hardware.ipmi import IpmiDriver, IpmiError
from wizard.hardware.ipmi import Target as BmcTarget
from wizard.provisioning.dnsmasq import Dnsmasq, DnsmasqError, find_dnsmasq
from wizard.provisioning.http import create_app
from wizard.provisioning.render import reservations
from wizard.provisioning.serving import provisioner_server
from wizard.provisioning.site import ProvisionerSite
from wizard.provisioning.tree import dnsmasq_files, prepare, render_tree, token_key

STEP_STATE = dict(NODE_STEPS)
IPMI_STEPS = ("bmc-boot-network", "power-cycle", "bmc-boot-disk")
"""Steps the IPMI driver bounds itself: its timeout counts from when a call starts."""
Emit = Callable[[dict[str, Any]], None]


@dataclass
class Options:
    """Timeouts and retries; the defaults suit real servers, the lab shortens them."""

    step_timeout: float = 120.0
    install_timeout: float = 3600.0
    converge_timeout: float = 1800.0
    """How long one chef-client run may take before its node goes to ``problem``."""
    attempts: int = 3
    backoff: float = 2.0
    chef_concurrency: int = 8
    converge_concurrency: int = 32
    """chef-client runs at once (each is an SSH session and a load on the Chef server)."""


@dataclass
class Outcome:
    ready: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)
    """Nodes this apply released (gone from the answers)."""


class StepFailed(Exception):
    """A step that failed for good; the message is the node's problem reason."""


class Runner:
    """One apply of one answers file."""

    def __init__(self, answers: Answers, catalog: Catalog, journal: Journal | None, *,
                 directory: Path, ipmi: IpmiDriver, chef: ChefServer | None,
                 serve_dhcp: bool, options: Options | None = None,
                 emit: Emit | None = None, provisioner_url_file: Path | None = None,
                 peers: dict[str, str] | None = None, starter: Starter | None = None,
                 admin_ssh_key: str | None = None, releasing: Collection[str] = ()):
        """``journal``: None for a dry run before the first apply (it only plans).
        ``peers``: where each node's requests come from, when not its reserved admin
        address (the lab's simulated servers, which have no DHCP). ``starter`` makes a
        node run chef-client (see :mod:`wizard.chef.converge`); with a Chef server and
        none, nodes cannot converge and stop in ``problem`` saying so. ``admin_ssh_key``:
        the admin node's public key line, which the installers and the provisioner's cookbook
        put in every node's root ``authorized_keys`` (for :class:`wizard.chef.starters.
        SshStarter`). ``releasing``: nodes of ``answers`` to release, and nothing else (no
        Chef object pushed, no other node's step): ``node release --force``, which leaves
        a role without the nodes it needs, so the answers without them would not render."""
        self.answers = answers
        self._releasing = set(releasing)
        self._site_answers = answers.model_copy(update={"nodes": [
            node for node in answers.nodes if node.name not in self._releasing]})
        self.catalog = catalog
        self._journal = journal
        self.directory = directory
        self.ipmi = ipmi
        self.chef = chef
        self.serve_dhcp = serve_dhcp
        self.options = options or Options()
        self._emit = emit or (lambda event: None)
        self._url_file = provisioner_url_file
        key = directory / "token.key"  # made by run(); a dry run changes nothing
        self._token = bytes.fromhex(key.read_text()) if key.exists() else b""
        self._peers = peers
        self._admin_ssh_key = admin_ssh_key
        self.site = ProvisionerSite(self._site_answers, catalog, self._token, peers,
                                    admin_ssh_key=admin_ssh_key)
        self.objects: ChefObjects = render(answers, catalog,
                                           site_cookbooks(catalog, answers.barclamps,
                                                          vendored(answers)),
                                           admin_ssh_key=admin_ssh_key)
        self.nodes = {node.name: node for node in self._site_answers.nodes}
        self._node_objects = {t.name: t.body for t in targets(self.objects, answers.site.name)
                              if t.kind == "nodes" and t.name.partition(".")[0]
                              not in self._releasing}
        self.starter = starter
        domain = answers.site.domain
        self.fqdns = {name: f"{name}.{domain}" for name in self.nodes}
        self.fqdns[answers.admin.hostname] = f"{answers.admin.hostname}.{domain}"
        self.graph = role_graph(catalog, self.objects.roles) \
            if answers.chef.server_url is not None else {}
        self.holders = {name: [item[5:-1] for item in self._node_objects[fqdn]["run_list"]]
                        for name, fqdn in self.fqdns.items() if fqdn in self._node_objects}
        """Each node's Chef roles (the admin node's too), in run-list order."""
        self.inputs = converge_inputs(self.objects, catalog, self.graph) if self.graph else {}
        """The digest of each role's inputs on each node, by FQDN (see
        :mod:`wizard.engine.changes`): converge steps record it."""
        self._schedule: Schedule | None = None
        self._admin_registered = False
        self._converging = asyncio.Semaphore(self.options.converge_concurrency)
        self._installed: dict[str, asyncio.Event] = {}
        self._install_problems: dict[str, str] = {}
        """What a node's installer reported went wrong, in this run."""
        self._gate = PauseGate(journal.path, self._paused) if journal is not None else None

    @property
    def journal(self) -> Journal:
        """The apply's journal (a dry run's runner may have none: it only plans)."""
        if self._journal is None:
            raise RuntimeError("no journal: this runner only plans (a dry run)")
        return self._journal

    # --- planning ------------------------------------------------------------------------

    def chef_targets(self) -> list[Target]:
        return [t for t in targets(self.objects, self.answers.site.name) if t.kind != "nodes"]

    def dhcp_hosts(self) -> dict[str, str]:
        lines = reservations(self.site).splitlines()[1:]
        return {line.split(",")[-2]: line for line in lines}

    def plan(self) -> Plan:
        converge = {name: roles for name, roles in self.holders.items() if self.graph}
        plan = build(self.dhcp_hosts(), self.chef_targets(), list(self.nodes), self._journal,
                     converge, {name: self.inputs.get(fqdn, {})
                                for name, fqdn in self.fqdns.items()})
        admin = self.answers.admin.hostname
        if admin in plan.releases:  # it held roles once (a Chef server since dropped)
            plan.releases.remove(admin)
            del plan.nodes[admin]
        if self._releasing:  # those nodes' release, nothing else
            plan.chef, plan.changes, plan.added, plan.reinstalls = [], {}, [], []
            plan.nodes = {n: s for n, s in plan.nodes.items() if n in self._releasing}
            return plan
        applied = self._journal.step(SITE, ATTRIBUTES_STEP) if self._journal else None
        if applied is not None and applied.status == "done" and applied.detail:
            plan.attributes = attribute_changes(json.loads(applied.detail), self._attributes())
        return plan

    def _attributes(self) -> dict[str, Any]:
        return attribute_record(self.objects, self.catalog, self._token)

    def _record_attributes(self) -> None:
        """Journal the attributes just pushed, for the next plan to say what changed since
        (when they differ from those recorded: a re-run records nothing)."""
        record = json.dumps(self._attributes(), sort_keys=True)
        applied = self.journal.step(SITE, ATTRIBUTES_STEP)
        if applied is None or applied.status != "done" or applied.detail != record:
            self.journal.step_started(SITE, ATTRIBUTES_STEP)
            self.journal.step_finished(SITE, ATTRIBUTES_STEP, record)

    # --- journal with events out -----------------------------------------------------------

    def _transition(self, node: str, state: str, reason: str | None = None) -> None:
        self.journal.transition(node, state, reason)
        self._emit({"event": "state", "node": node, "state": state, "reason": reason})
        if state == "problem" and self._schedule is not None:
            self._schedule.failed(node)  # the roles it holds are settled: others go on

    def _advance(self, node: str, state: str) -> None:
        """Move a node forward to ``state`` (never back: a callback may be ahead of us)."""
        current = self.journal.state(node)
        order = {s: i for i, s in enumerate(LIFECYCLE)}
        if current in (None, "problem") or order[state] > order[current]:
            self._transition(node, state)

    def _paused(self, paused: bool) -> None:
        self.journal.record("paused" if paused else "resumed")
        self._emit({"event": "paused" if paused else "resumed"})

    async def _step(self, node: str, step: str, work: Callable[[], Awaitable[str | None]],
                    *, timeout: float | None = None, bounded: bool = False) -> None:
        """Run ``work`` as a journaled step: timeout, retries with backoff, no retry on auth;
        while the apply is paused, wait before starting it. ``bounded``: the driver times
        each of its calls itself, from when the call starts (an IPMI step may wait its
        turn behind a thousand others: that wait is no timeout)."""
        delay = self.options.backoff
        for attempt in range(1, self.options.attempts + 1):
            if self._gate is not None:
                await self._gate.wait()
            self.journal.step_started(node, step, attempt=attempt)
            self._emit({"event": "step", "node": node, "step": step, "status": "running"})
            try:
                detail = await asyncio.wait_for(
                    work(), None if bounded else timeout or self.options.step_timeout)
            except StepFailed as exc:  # for good: no retry
                self.journal.step_failed(node, step, str(exc))
                self._emit({"event": "step", "node": node, "step": step, "status": "failed",
                            "error": str(exc)})
                raise
            except (IpmiError, ChefError, DnsmasqError, OSError, TimeoutError) as exc:
                reason = (f"{step}: timed out after {timeout or self.options.step_timeout:g} s"
                          if isinstance(exc, TimeoutError) else f"{step}: {exc}")
                self.journal.step_failed(node, step, reason)
                self._emit({"event": "step", "node": node, "step": step, "status": "failed",
                            "error": reason})
                final = (attempt == self.options.attempts
                         or isinstance(exc, ChefAuthError | CookbookConflict)
                         or (isinstance(exc, IpmiError) and exc.kind == "auth_failed"))
                if final:
                    raise StepFailed(reason) from None
                await asyncio.sleep(delay)
                delay *= 2
                continue
            self.journal.step_finished(node, step, detail)
            self._emit({"event": "step", "node": node, "step": step, "status": "done"})
            return

    # --- the run -------------------------------------------------------------------------

    async def run(self) -> Outcome:
        drop_stale_pause(self.journal.path, self.journal.opened)  # pauses are per apply
        watcher = asyncio.create_task(self._gate.watch()) if self._gate else None
        try:
            return await self._run()
        finally:
            if watcher is not None:
                watcher.cancel()
                set_paused(self.journal.path, False)  # the pause was of this apply

    async def _run(self) -> Outcome:
        prepare(self.directory)
        self._token = token_key(self.directory)
        self.site = ProvisionerSite(self._site_answers, self.catalog, self._token,
                                    self._peers, admin_ssh_key=self._admin_ssh_key)
        await self._verify_in_flight()
        plan = self.plan()
        self._emit({"event": "plan", "nodes": len(plan.nodes), "chef": len(plan.chef),
                    "dhcp": dict(plan.dhcp_changes)})
        self._schedule = Schedule(self.graph, self.holders, {
            name: [role for step in steps if (role := step_role(step)) is not None]
            for name, steps in plan.nodes.items()})
        for name in self.nodes if not self._releasing else ():
            self._installed[name] = asyncio.Event()
            if self.journal.state(name) is None:
                self._transition(name, "allocated")
        dnsmasq = Dnsmasq(self.directory / "dnsmasq") if self.serve_dhcp else None
        async with self._http():
            try:
                if plan.dhcp_changes:
                    await self._step(SITE, DHCP_STEP, lambda: self._dhcp(plan, dnsmasq))
                if dnsmasq is not None and not dnsmasq.running():
                    dnsmasq.start()  # DHCP for the nodes while apply runs, resumed or not
                await self._chef_site(plan)
                if self.chef is not None and not self._releasing:
                    self._record_attributes()
                await asyncio.gather(*(self._node(name, steps) for name, steps in
                                       plan.nodes.items()))
            finally:
                if dnsmasq is not None:
                    dnsmasq.stop()
        states = self.journal.states()
        outcome = Outcome()
        for name in self.nodes if not self._releasing else ():
            state, reason = states[name]
            if state == "ready":
                outcome.ready.append(name)
            else:
                outcome.problems[name] = reason or f"stopped in {state}"
        for name in plan.releases:
            state, reason = states[name]
            if state == "released":
                outcome.released.append(name)
            else:
                outcome.problems[name] = reason or f"not released: stopped in {state}"
        admin = self.answers.admin.hostname
        if not self._releasing and states.get(admin, ("ready",))[0] != "ready":
            state, reason = states[admin]
            outcome.problems[admin] = reason or f"stopped in {state}"
        self._emit({"event": "done", "ready": len(outcome.ready),
                    "problems": outcome.problems, "released": outcome.released})
        return outcome

    async def _verify_in_flight(self) -> None:
        runs: dict[tuple[str, str | None], list[str]] = {}
        for record in self.journal.in_flight():
            if step_role(record.step) is not None:  # one run's roles share its request
                runs.setdefault((record.node, record.detail), []).append(record.step)
                continue
            if record.step == "power-cycle" and record.node in self.nodes:
                try:
                    device, _ = await self.ipmi.boot_device(self._bmc(record.node))
                except (IpmiError, StepFailed):
                    device = "unknown"
                if device not in ("network", "unknown"):  # the one-time boot was used
                    self.journal.step_finished(record.node, record.step,
                                               "checked after a restart: the server booted")
                    continue
            self.journal.step_failed(record.node, record.step, "interrupted; redone")
        for (node, request), steps in runs.items():
            await self._verify_converge(node, steps, request)

    def _called_back(self, node: str, problem: str | None) -> None:
        """``node``'s installer called back: its install is over (``problem``: it failed)."""
        if node not in self._installed:
            return
        if problem is not None:
            self._install_problems[node] = problem
        self._installed[node].set()

    @contextlib.asynccontextmanager
    async def _http(self) -> AsyncIterator[None]:
        states = JournalStates(self.journal, self._called_back, self._transition)
        chef = self.chef
        app = create_app(
            self.site, states, media=self.directory / "media",
            register_client=(lambda name, key: register_client(chef, name, key))
            if chef is not None else None,
            leases=self.directory / "dnsmasq" / "leases" if self.serve_dhcp else None,
            checks=JournalOrders(SitePaths(self.journal.path.parent).orders,
                                 self.journal))
        host, port = self.answers.admin.address, self.site.attributes["web_port"]
        server = provisioner_server(app, host, port, log_level="warning")
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
                raise OSError(f"the provisioner could not listen on {host}:{port}")
            await asyncio.sleep(0.02)
        if self._url_file is not None:
            write_atomic(self._url_file, self.site.http_url + "\n", mode=0o644, sync=False)
        self._emit({"event": "serving", "url": self.site.http_url})
        try:
            yield
        finally:  # the URL file stays: nodes booting meanwhile retry it, as they would DHCP
            server.should_exit = True
            await task

    async def _dhcp(self, plan: Plan, dnsmasq: Dnsmasq | None) -> str:
        try:
            render_tree(self.site, self.directory)
            config, hosts = dnsmasq_files(self.site, self.directory)
        except OSError as exc:  # a write error (a full disk) often names no file: say where
            raise OSError(exc.errno, f"writing {exc.filename or self.directory}: "
                          f"{exc.strerror}") from None
        if dnsmasq is not None:
            dnsmasq.install(config, hosts)  # checked by dnsmasq first; reloads a running one
        elif find_dnsmasq() is not None:  # checked and written, served by none (the lab)
            Dnsmasq(self.directory / "dnsmasq").install(config, hosts)
        return json.dumps(plan.dhcp_hosts, sort_keys=True)

    async def _chef_site(self, plan: Plan) -> None:
        if self.chef is None:
            export = Path(self.answers.chef.export_path or self.directory / "chef-repo")
            result = await asyncio.to_thread(export_repo, self.objects, export, force=False)
            self._emit({"event": "chef-export", "path": str(export), "files": result.files})
            return
        chef = self.chef
        bags = {c.target.bag for c in plan.chef if c.target.bag}
        for bag in sorted(bags):
            await chef.ensure_data_bag(bag)
        gate = asyncio.Semaphore(self.options.chef_concurrency)

        async def one(change: ChefChange) -> None:
            target = change.target

            async def work() -> str:
                if target.kind == "cookbooks":
                    await upload_cookbook(chef, self.objects.cookbooks[target.name])
                elif target.bag:
                    await chef.upsert_item(target.bag, target.body)
                else:
                    await chef.upsert(target.kind, target.body)
                return change.digest
            async with gate:
                await self._step(SITE, CHEF_STEP + target.label, work)
        # the cookbooks before the environment that pins them
        cookbooks = [change for change in plan.chef if change.target.kind == "cookbooks"]
        await asyncio.gather(*(one(change) for change in cookbooks))
        await asyncio.gather(*(one(change) for change in plan.chef
                               if change.target.kind != "cookbooks"))

    def _bmc_on_record(self, name: str) -> BmcTarget | None:
        """The BMC a node no longer in the answers had, as its boot device step recorded."""
        record = self.journal.step(name, "bmc-boot-network")
        if record is None or record.status != "done" or not record.detail:
            return None
        address, _, port = record.detail.rpartition(":")
        bmc = self.answers.bmc
        return BmcTarget(address, bmc.username, bmc.password.reveal(), int(port))

    async def _drop_roles(self, name: str, fqdn: str) -> str:
        """Take the roles ``name`` no longer holds off its run list, then forget that it
        converged them (a crash in between takes them off again)."""
        assert self.chef is not None and self._schedule is not None
        held = set(self.holders.get(name, []))
        dropped = sorted(role for record in self.journal.steps(name)
                         if (role := step_role(record.step)) is not None and role not in held)
        await self.chef.upsert("nodes", {
            **self._node_objects[fqdn],
            "run_list": [f"role[{r}]" for r in self._schedule.converged(name)]}, merge=True)
        self.journal.forget(name, [step_name(role) for role in dropped])
        return "took off " + ", ".join(f"role[{r}]" for r in dropped)

    def _bmc(self, name: str) -> BmcTarget:
        node, bmc = self.nodes[name], self.answers.bmc
        if node.bmc_address is None:
            raise StepFailed(f"{name} has no BMC address")
        return BmcTarget(node.bmc_address, bmc.username, bmc.password.reveal(), bmc.port)

    async def _node(self, name: str, steps: list[str]) -> None:
        if self.journal.state(name) == "ready" and name in self.holders:
            self._transition(name, "readying")  # a change reaches it: ready again after
        try:
            for step in steps:
                if step == "mark-ready":
                    self._advance(name, "ready")
                elif step == "mark-released":
                    self.journal.forget(name, state="released")
                    self._emit({"event": "state", "node": name, "state": "released",
                                "reason": None})
                elif step_role(step) is not None:
                    await self._converge_node(name)  # every role left, in order
                    self._advance(name, "ready")
                    return
                else:
                    if step in STEP_STATE:
                        self._advance(name, STEP_STATE[step])
                    await self._step(name, step,
                                     functools.partial(self._node_step, name, step),
                                     timeout=self.options.install_timeout
                                     if step == "wait-installed" else None,
                                     bounded=step in (*IPMI_STEPS, "power-off"))
        except StepFailed as exc:
            if self.journal.state(name) != "problem":  # else the installer's report put it there
                self._transition(name, "problem", str(exc))

    # --- convergence -----------------------------------------------------------------------

    async def _converge_node(self, name: str) -> None:
        """Converge ``name``'s roles as they may start, a chef-client run for each batch."""
        schedule = self._schedule
        assert schedule is not None
        self._advance(name, "readying")
        core_said = False
        while schedule.left(name):
            if not core_said and not any(self.graph[r].core for r in schedule.left(name)):
                self._core_converged(name)
                core_said = True
            try:
                batch = schedule.startable(name)
            except Blocked as exc:
                raise StepFailed(f"converge: {exc}") from None
            if batch:
                await self._converge(name, batch)
            else:
                await schedule.wait()
        if not core_said:
            self._core_converged(name)

    def _core_converged(self, name: str) -> None:
        self.journal.record(CORE_CONVERGED, name)
        self._emit({"event": CORE_CONVERGED, "node": name})

    async def _converge(self, name: str, roles: list[str]) -> None:
        """One chef-client run on ``name`` that converges ``roles`` (and, again, those it
        converged before: its run list only grows), journaled as one step per role."""
        schedule = self._schedule
        assert schedule is not None
        chosen = set(roles) | set(schedule.converged(name))
        run_list = [f"role[{role}]" for role in schedule.roles_of[name] if role in chosen]
        steps = [step_name(role) for role in roles]
        known = self.inputs.get(self.fqdns[name], {})
        inputs = {role: known[role] for role in roles if role in known}
        where = ", ".join(f"{self.graph[r].barclamp}/{r}" for r in roles)
        delay = self.options.backoff
        for attempt in range(1, self.options.attempts + 1):
            async with self._converging:
                if self._gate is not None:  # here: a pause while waiting for a slot holds too
                    await self._gate.wait()
                request = new_request()
                self.journal.steps_started(name, steps, detail=json.dumps(
                    {"request": request, "inputs": inputs}, sort_keys=True), attempt=attempt,
                    run_list=run_list)
                self._emit({"event": "converge", "node": name, "roles": roles,
                            "status": "running"})
                try:
                    record = await asyncio.wait_for(
                        self._converge_once(name, run_list, request),
                        self.options.converge_timeout)
                except TimeoutError:
                    reason = (f"converge {where}: chef-client did not report within "
                              f"{self.options.converge_timeout:g} s")
                    self._converge_failed(name, roles, reason)
                    raise StepFailed(reason) from None
                except StepFailed as exc:
                    self._converge_failed(name, roles, str(exc))
                    raise
                except (ChefError, OSError) as exc:
                    reason = f"converge {where}: {exc}"
                    self._converge_failed(name, roles, reason)
                    if attempt == self.options.attempts or isinstance(exc, ChefAuthError):
                        raise StepFailed(reason) from None
                else:
                    if not record.ok:
                        reason = f"converge {where}: chef-client failed: {record.error}"
                        self._converge_failed(name, roles, reason, record)
                        raise StepFailed(reason)
                    summary = record.summary()
                    self.journal.steps_ended(name, steps, ok=True, detail=json.dumps(
                        {**summary, "inputs": inputs}, sort_keys=True))
                    schedule.done(name, roles)
                    self._emit({"event": "converge", "node": name, "roles": roles,
                                "status": "done", "run": summary})
                    return
            await asyncio.sleep(delay)
            delay *= 2

    def _converge_failed(self, name: str, roles: list[str], reason: str,
                         record: RunRecord | None = None) -> None:
        self.journal.steps_ended(name, [step_name(role) for role in roles], ok=False,
                                 detail=reason)
        self._emit({"event": "converge", "node": name, "roles": roles, "status": "failed",
                    "error": reason, **({"run": record.summary()} if record else {})})

    async def _converge_once(self, name: str, run_list: list[str], request: str) -> RunRecord:
        """Set the node's run list and request, run chef-client, read what it recorded."""
        chef, fqdn = self.chef, self.fqdns[name]
        if chef is None or self.starter is None:
            raise StepFailed("converge: this apply has no way to start chef-client on the "
                             "nodes")
        if name == self.answers.admin.hostname:
            await self._admin_client()
        await chef.upsert("nodes", with_request(self._node_objects[fqdn], run_list, request),
                          merge=True)
        said = await self.starter.start(fqdn)
        record = read_run(await chef.get("nodes", fqdn), request)
        if isinstance(record, str):
            tail = " ".join(said.split())[-300:]
            raise StepFailed(f"converge: {record}" + (f"; chef-client said: {tail}"
                                                        if tail else ""))
        return record

    async def _verify_converge(self, node: str, steps: list[str], detail: str | None) -> None:
        """A run's converge steps in flight when the last apply stopped: done if the node
        recorded a successful run for its request (one read of its node), with the inputs
        the run was started with, else redone."""
        request, inputs = _started(detail)
        record: RunRecord | str | None = None
        if request is not None and self.chef is not None and node in self.fqdns:
            with contextlib.suppress(ChefError):  # the server cannot say: redone
                record = read_run(await self.chef.get("nodes", self.fqdns[node]), request)
        if isinstance(record, RunRecord) and record.ok:
            self.journal.steps_ended(node, steps, ok=True, detail=json.dumps(
                {**record.summary(), "inputs": inputs}, sort_keys=True),
                checked="after a restart: the node recorded the run")
        else:
            self.journal.steps_ended(node, steps, ok=False, detail="interrupted; redone")

    def addresses(self) -> dict[str, str]:
        """Each node's admin-network address by FQDN (where chef-client is started over
        SSH), the admin node's too."""
        found = {pxe.fqdn: pxe.address for pxe in self.site.nodes.values()}
        found[self.fqdns[self.answers.admin.hostname]] = self.answers.admin.address
        return found

    async def _admin_client(self) -> None:
        """The admin node's own Chef client (its config and key in the state directory,
        made once), registered with the key's public half once per apply: the admin node
        converges its roles as any node does, and a crash between making the key and
        registering it cannot leave it unregistered."""
        chef, server_url = self.chef, self.answers.chef.server_url
        if self._admin_registered or chef is None or server_url is None:
            return
        state = self.directory.parent
        await asyncio.to_thread(admin_client_config, state, server_url,
                                self.fqdns[self.answers.admin.hostname],
                                self.answers.chef.organization)
        key = SitePaths(state).admin_client_key.read_text()
        await register_client(chef, self.fqdns[self.answers.admin.hostname], public_pem(key))
        self._admin_registered = True

    async def _node_step(self, name: str, step: str) -> str | None:
        fqdn = f"{name}.{self.answers.site.domain}"
        if step == "bmc-boot-network":
            target = self._bmc(name)
            await self.ipmi.set_boot_device(target, "network")
            return f"{target.address}:{target.port}"  # where a release finds it
        elif step == "power-cycle":
            target = self._bmc(name)
            record = self.journal.step(name, step)
            if record is not None and record.attempts > 1:  # did an earlier try get through?
                device, _ = await self.ipmi.boot_device(target)
                if device != "network":  # the one-time network boot is used up: it booted
                    return "the server had booted already (an earlier try's cycle went through)"
            if self.chef is not None:  # a reinstalled node registers afresh
                await self.chef.delete("clients", fqdn)
            await self.ipmi.power(target, "cycle", retry=False)
        elif step == "wait-installed":
            if self.journal.state(name) not in ("installed", "readying", "ready"):
                await self._installed[name].wait()
            if name in self._install_problems:
                raise StepFailed(self._install_problems[name])
        elif step == "bmc-boot-disk":
            await self.ipmi.set_boot_device(self._bmc(name), "disk", persistent=True)
        elif step == "run-list" and self.chef is not None and fqdn in self._node_objects:
            return await self._drop_roles(name, fqdn)
        elif step == "power-off":
            recorded = self._bmc_on_record(name)
            if recorded is None:
                return "no BMC address on record: not powered off"
            await self.ipmi.power(recorded, "off")
        elif step == "forget-chef" and self.chef is not None:
            gone = [kind for kind in ("nodes", "clients") if await self.chef.delete(kind, fqdn)]
            return f"deleted its Chef {' and '.join(gone)}" if gone else "nothing in Chef"
        elif step == "chef-node" and self.chef is not None and fqdn in self._node_objects:
            # the run list holds only what converged: chef-client's timer runs no role early
            converged = self._schedule.converged(name) if self._schedule else []
            return await self.chef.upsert("nodes", {
                **self._node_objects[fqdn], "run_list": [f"role[{r}]" for r in converged]},
                merge=True)
        return None


def _started(detail: str | None) -> tuple[str | None, dict[str, str]]:
    """The request and the inputs a converge run was started with, from its steps' detail
    while they ran (a journal from before inputs were recorded holds the request alone)."""
    if detail is None or not detail.startswith("{"):
        return detail, {}
    try:
        started = json.loads(detail)
    except ValueError:
        return None, {}
    return started.get("request"), started.get("inputs", {})
