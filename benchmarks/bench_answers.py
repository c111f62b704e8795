"""Benchmark: loading and saving big answers files, against a bare YAML parse of the same text.

    python benchmarks/bench_answers.py [--nodes 1000 5000] [--repeat 3]

For each size it times, in one process on the same text: the baseline (libyaml's safe load
alone, no validation), our full ``load`` (parse + size guard + pydantic + cross-field
checks), ``save`` again after a first save (ruamel's round-trip tree of the file, which keeps
comments, is then in memory), and ruamel's
round-trip parse alone (what loading cost before it moved to libyaml). Each is printed with
its ratio to the baseline; lower is better.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import netaddr
import yaml
from ruamel.yaml import YAML
from timing import best_of

from wizard.answers import Hardware, Node, load, save
from wizard.answers.starter import starter_answers
from wizard.base.yamlfile import CoreSchemaLoader


def make_file(directory: Path, nodes: int) -> Path:
    answers = starter_answers("10.0.0.0/8", nodes)
    bmc = netaddr.IPAddress(answers.networks["bmc"].ranges["host"].split("-")[0])
    answers.nodes = [
        Node(
            name=f"node-{i}",
            macs=[str(netaddr.EUI((0x525400 << 24) + 2 * i + k)).replace("-", ":").lower()
                  for k in range(2)],
            bmc_address=str(bmc + i),
            hardware=Hardware(cpu_cores=32, memory_gb=256, disks=4, serial=f"SN{i:06d}"),
            roles=["compute"] if i % 10 else ["controller"],
        )
        for i in range(nodes)
    ]
    path = directory / f"answers-{nodes}.yaml"
    save(answers, path)
    return path



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'nodes':>6} {'size':>8} {'libyaml (baseline)':>19} {'load':>16} {'save':>16} "
              f"{'ruamel parse':>16}")
        for count in args.nodes:
            path = make_file(Path(tmp), count)
            text = path.read_text()
            answers = load(path)
            save(answers, Path(tmp) / "first.yaml")
            out = Path(tmp) / "out.yaml"
            base = best_of(args.repeat, lambda: yaml.load(text, Loader=CoreSchemaLoader))  # noqa: B023
            full = best_of(args.repeat, lambda: load(path))  # noqa: B023
            saved = best_of(args.repeat, lambda: save(answers, out))  # noqa: B023
            ruamel = best_of(args.repeat, lambda: YAML(typ="rt").load(text))  # noqa: B023
            cells = [f"{t * 1000:>7.0f} ms {t / base:>5.1f}x" for t in (full, saved, ruamel)]
            size = f"{len(text) / 2**20:>6.1f}MB"
            print(f"{count:>6} {size} {base * 1000:>16.0f} ms " + " ".join(cells))


if __name__ == "__main__":
    main()
