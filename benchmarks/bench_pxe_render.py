"""Benchmark: rendering everything PXE serves for a large deployment, against loading its answers.

    python benchmarks/bench_pxe_render.py [--nodes 10000] [--repeat 3]

Builds an OpenStack answers file with N nodes (as bench_chef_objects.py does) and times in
one process: the baseline (``load`` of the answers file, full validation included); the PXE
render in memory (dnsmasq config and reservations, every node's iPXE script and install
files); and the same written to disk (``pxe render`` without its ``dnsmasq --test`` run),
into a new directory and over an earlier render. Creating tens of thousands of small files
costs what the disk makes it cost, so a "disk floor" (the same bytes written to as many
files by a bare loop) is timed too. Each is printed with its ratio to the
baseline; the target at 10,000 nodes is under 2 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench_chef_objects import SECRETS, make_file
from timing import best_of

from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.provisioning.site import ProvisionerSite
from wizard.provisioning.tree import dnsmasq_files, prepare, render_tree, tree_files

TARGET_SECONDS = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(SECRETS)
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        path = make_file(directory, args.nodes)
        answers = load(path)
        catalog = default_catalog()
        counted = 0

        def in_memory() -> None:
            nonlocal counted
            site = ProvisionerSite(answers, catalog, b"k" * 32)
            dnsmasq_files(site, directory)
            counted = sum(1 for _ in tree_files(site))

        trees = iter(range(1_000_000))

        def to_disk(tree: Path | None = None) -> None:
            tree = tree or directory / f"pxe-{next(trees)}"
            prepare(tree)
            site = ProvisionerSite(answers, catalog, b"k" * 32)
            dnsmasq_files(site, tree)
            render_tree(site, tree)

        texts = [text.encode() for _, _, text, _ in
                 tree_files(ProvisionerSite(answers, catalog, b"k" * 32))]

        def disk_floor() -> None:
            floor = directory / f"floor-{next(trees)}"
            floor.mkdir()
            for i, data in enumerate(texts):
                fd = os.open(floor / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, data)
                os.close(fd)

        baseline = best_of(args.repeat, lambda: load(path))
        floor = best_of(args.repeat, disk_floor, setup=os.sync)
        memory = best_of(args.repeat, in_memory)
        fresh = best_of(args.repeat, to_disk, setup=os.sync)
        again = best_of(args.repeat, lambda: to_disk(directory / "pxe-0"), setup=os.sync)
    print(f"{args.nodes} nodes, {counted} files (+ dnsmasq config and reservations)")
    rows = [("load answers (baseline)", baseline),
            ("disk floor: write the same bytes, 1 dir", floor),
            ("render, in memory", memory),
            ("render + write, new directory", fresh),
            ("render + write over an earlier render", again)]
    for label, took in rows:
        print(f"  {label:40s} {took * 1000:8.0f} ms   {took / baseline:5.2f}x")
    verdict = "met" if memory < TARGET_SECONDS else "MISSED"
    print(f"  target: render < {TARGET_SECONDS:.0f} s: {verdict}; on disk, compare the "
          f"writes with the disk floor (render + write, new directory = "
          f"{fresh / floor:.2f}x the floor)")


if __name__ == "__main__":
    main()
