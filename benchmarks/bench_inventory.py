"""Benchmark: an inventory report when thousands are known, against the first ones, in one run.

    python benchmarks/bench_inventory.py [--known 2000] [--batch 100]

Posts discovery reports to the provisioner's HTTP service (its ASGI app in-process, each
report from its own address with the token its boot script gave) backed by the journal, as
``pxe serve`` and ``apply`` keep it. Times BATCH reports into an empty store (the baseline),
then fills it to KNOWN machines and times BATCH more. A store that rewrote everything per
report (as the JSON file did: 0.08 s a report at first, 0.46 s after 2,000) grows with
KNOWN; this one appends events, so the ratio should stay near 1 (target: < 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from pathlib import Path

import httpx

from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.engine.journal import Journal
from wizard.engine.journal_states import JournalStates
from wizard.provisioning.http import TOKEN_HEADER, create_app
from wizard.provisioning.site import ProvisionerSite

EXAMPLE = Path(__file__).resolve().parents[1] / "answers" / "examples" / "lab-small.yaml"


def _mac(i: int) -> str:
    return "52:54:01:" + ":".join(f"{(i >> shift) & 0xFF:02x}" for shift in (16, 8, 0))


def _peer(i: int) -> str:
    return f"10.{(i >> 16) & 0xFF}.{(i >> 8) & 0xFF}.{i & 0xFF}"


async def post(site: ProvisionerSite, state: JournalStates, first: int, count: int
               ) -> float:
    """Seconds to post reports ``first`` .. ``first + count - 1``, one address each."""
    app = create_app(site, state)
    elapsed = 0.0
    for i in range(first, first + count):
        mac, peer = _mac(i), _peer(i)
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            script = (await client.get(f"/boot/{mac}")).text
            token = re.search(r"crowbar\.token=([0-9a-f]+)", script)
            assert token, script
            report = {"mac": mac, "macs": [mac], "serial": f"SN-{i}", "cpu_cores": 8,
                      "memory_gb": 32, "disks": 2}
            start = time.perf_counter()
            response = await client.post("/inventory", json=report,
                                         headers={TOKEN_HEADER: token[1]})
            elapsed += time.perf_counter() - start
            assert response.status_code == 201, response.text
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--known", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    site = ProvisionerSite(load(EXAMPLE), default_catalog(), b"bench-key" * 4)
    with tempfile.TemporaryDirectory() as work, \
            Journal.open(Path(work) / "journal.db", command="pxe serve") as journal:
        state = JournalStates(journal)
        baseline = asyncio.run(post(site, state, 0, args.batch))
        asyncio.run(post(site, state, args.batch, args.known - args.batch))
        loaded = asyncio.run(post(site, state, args.known, args.batch))
    per = 1000 / args.batch
    print(f"first {args.batch} reports:           {baseline * per:6.2f} ms a report (baseline)")
    print(f"{args.batch} reports after {args.known:,} known: {loaded * per:6.2f} ms a report")
    print(f"ratio: {loaded / baseline:.2f}x (target < 2x)")


if __name__ == "__main__":
    main()
