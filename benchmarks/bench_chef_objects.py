"""Benchmark: rendering every Chef object of a large deployment, against loading its answers.

    python benchmarks/bench_chef_objects.py [--nodes 1000] [--repeat 3]

Builds an OpenStack answers file with N nodes (3 controllers, the rest computes and storage),
allocates its roles, and times in one process: the baseline (``load`` of the answers file,
full validation included), ``render`` (environment, roles, data bag items, one node object
per node) and ``export_repo`` (writing the knife chef-repo). Each is printed with its ratio
to the baseline; the target for render at 1,000 nodes is under 1 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import netaddr
from timing import best_of

from wizard.answers import Hardware, Node, Proposal, load, save
from wizard.answers.proposals import allocate
from wizard.answers.starter import starter_answers
from wizard.catalog import default_catalog
from wizard.chef.objects import export_repo, render

SECRETS = {"CROWBAR_DB_PASSWORD": "db", "CROWBAR_MQ_PASSWORD": "mq",
           "CROWBAR_KEYSTONE_PASSWORD": "ks"}


def make_file(directory: Path, count: int) -> Path:
    answers = starter_answers("10.0.0.0/8", count)
    bmc = netaddr.IPAddress(answers.networks["bmc"].ranges["host"].split("-")[0])
    nodes = []
    for i in range(count):
        kind = "controller" if i < 3 else "storage" if i % 10 == 0 else "compute"
        disks = 12 if kind == "storage" else 2
        nodes.append(Node(
            name=f"{kind[:4]}-{i}",
            macs=[str(netaddr.EUI((0x525400 << 24) + i, dialect=netaddr.mac_unix_expanded))],
            bmc_address=str(bmc + i), roles=[kind],
            hardware=Hardware(cpu_cores=32, memory_gb=256, disks=disks),
        ))
    answers.nodes = nodes
    answers.barclamps = {
        "database": Proposal(attributes={"root_password": "env:CROWBAR_DB_PASSWORD"}),
        "rabbitmq": Proposal(attributes={"password": "env:CROWBAR_MQ_PASSWORD"}),
        "keystone": Proposal(attributes={"admin_password": "env:CROWBAR_KEYSTONE_PASSWORD"}),
        "nova": Proposal(), "swift": Proposal(),
    }
    answers, _ = allocate(answers, default_catalog())
    path = directory / f"openstack-{count}.yaml"
    save(answers, path)
    return path



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(SECRETS)
    catalog = default_catalog()
    print(f"{'nodes':>6} {'load (baseline)':>16} {'render':>18} {'export':>18} {'files':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.nodes:
            path = make_file(Path(tmp), count)
            answers = load(path)
            objects = render(answers, catalog)
            base = best_of(args.repeat, lambda: load(path))  # noqa: B023
            rendered = best_of(args.repeat, lambda: render(answers, catalog))  # noqa: B023
            out = Path(tmp) / "repo"
            exported = best_of(args.repeat, lambda: export_repo(objects, out))  # noqa: B023
            files = sum(1 for _ in out.rglob("*.json"))
            cells = [f"{t * 1000:>8.0f} ms {t / base:>5.1f}x" for t in (rendered, exported)]
            print(f"{count:>6} {base * 1000:>13.0f} ms " + " ".join(cells) + f" {files:>7}")


if __name__ == "__main__":
    main()
