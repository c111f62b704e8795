"""An apply waiting for a node's install hears its installer's problem report at once.

The runner's node lifecycle, from ``wait-installed`` on, with the provisioner's real ASGI app
in the same event loop (as ``apply`` serves it) and the real journal; the node's installer
is an HTTP client posting the problem report from the node's address with its token. No
BMC is asked: the lifecycle stops before the first step that would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.engine.journal import Journal
from wizard.engine.journal_states import JournalStates
from wizard.engine.runner import Options, Runner
from wizard.provisioning.http import TOKEN_HEADER, create_app

EXAMPLE = Path("answers/examples/lab-small.yaml")
REASON = "chef-client could not be installed from http://192.168.124.10:8091/ubuntu: " \
         "E: Unable to locate package chef"


class NoBmc:
    """The runner's IPMI driver: any call fails the test."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the BMC was asked: {name}")


def test_a_problem_report_ends_the_wait_at_once_with_the_installers_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiting up to an hour for ``installed``, the runner hears the report within the
    second: ``wait-installed`` failed once (no retry: the installer has spoken), the node
    in ``problem`` with the installer's reason, one transition to it, and no later step
    (the BMC is not set to boot from disk)."""
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "x")
    answers = load(EXAMPLE)
    with Journal.open(tmp_path / "journal.db") as journal:
        runner = Runner(answers, default_catalog(), journal, directory=tmp_path,
                        ipmi=NoBmc(), chef=None, serve_dhcp=False,  # type: ignore[arg-type]
                        options=Options(install_timeout=3600, attempts=3, backoff=60))
        node = runner.site.nodes["ctl-1"]
        states = JournalStates(journal, runner._called_back, runner._transition)
        app = create_app(runner.site, states)

        async def scenario() -> float:
            runner._installed["ctl-1"] = asyncio.Event()
            lifecycle = asyncio.create_task(runner._node(
                "ctl-1", ["wait-installed", "bmc-boot-disk", "chef-node", "mark-ready"]))
            await asyncio.sleep(0.1)
            assert not lifecycle.done()
            transport = httpx.ASGITransport(app=app, client=(node.address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://pxe") as client:
                reported = await client.post("/nodes/ctl-1/problem", content=REASON,
                                             headers={TOKEN_HEADER: runner.site.token("ctl-1")})
            assert reported.status_code == 200
            started = asyncio.get_running_loop().time()
            await asyncio.wait_for(lifecycle, 5)
            return asyncio.get_running_loop().time() - started

        assert asyncio.run(scenario()) < 1
        assert journal.states()["ctl-1"] == ("problem", f"installer: {REASON}")
        [wait] = journal.steps("ctl-1")
        assert (wait.step, wait.status, wait.attempts, wait.detail) == (
            "wait-installed", "failed", 1, f"installer: {REASON}")
        transitions = [event.data["to"] for event in journal.events(kind="transition")
                       if event.node == "ctl-1"]
        assert transitions == ["installing", "problem"]
