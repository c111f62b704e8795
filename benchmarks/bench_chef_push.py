"""Benchmark: pushing a large deployment to a Chef server, concurrently against one at a time.

    python benchmarks/bench_chef_push.py [--nodes 1000] [--concurrency 16]

Builds an OpenStack answers file with N nodes (as bench_chef_objects.py does), renders its
Chef objects (environment, roles, data bag items, one node per node) and pushes them to a
fresh goiardi on loopback (Debian package ``goiardi``) twice in the same run: one request
at a time (the baseline), then with ``--concurrency`` requests in flight over the pooled
connection. Prints objects/s for both and the ratio; both pushes create every object.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench_chef_objects import SECRETS, make_file

from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.chef.api import ChefServer
from wizard.chef.objects import render
from wizard.chef.push import push, targets
from wizard.lab.goiardi import Goiardi


def timed_push(directory: Path, objects, site: str, concurrency: int) -> float:
    """Seconds to push everything to a new, empty goiardi."""
    server = Goiardi(directory)
    server.start()
    try:
        async def go() -> float:
            async with ChefServer(server.url, "admin", server.admin_key.read_text(),
                                  max_connections=concurrency) as chef:
                start = time.perf_counter()
                report = await push(chef, objects, site, concurrency=concurrency)
                took = time.perf_counter() - start
            assert set(report.counts()) == {"created"}, report.counts()
            return took
        return asyncio.run(go())
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    os.environ.update(SECRETS)
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        answers = load(make_file(directory, args.nodes))
        objects = render(answers, default_catalog())
        count = len(targets(objects, answers.site.name))
        serial = timed_push(directory / "serial", objects, answers.site.name, 1)
        parallel = timed_push(directory / "parallel", objects, answers.site.name,
                              args.concurrency)
    items = sum(len(bag) for bag in objects.data_bags.values())
    print(f"{count} objects: 1 environment, {len(objects.roles)} roles, {items} data bag items, "
          f"{len(objects.nodes)} nodes (goiardi on loopback)")
    print(f"  one at a time (baseline)   {serial:6.2f} s   {count / serial:7.0f} objects/s   1.00x")
    print(f"  {args.concurrency:2d} in flight              {parallel:6.2f} s   "
          f"{count / parallel:7.0f} objects/s   {serial / parallel:4.2f}x")


if __name__ == "__main__":
    main()
