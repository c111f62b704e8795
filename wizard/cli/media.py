"""``crowbar-wizard media build``: the discovery image unknown machines PXE-boot."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from wizard.base.ownedfs import LinkError
from wizard.cli.exits import EXIT_FAILED, EXIT_OK
from wizard.provisioning.media.build import build, default_cache, install
from wizard.provisioning.media.debs import DebError
from wizard.provisioning.tree import TreeError, prepare


def add_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``media build`` to the ``crowbar-wizard`` parser."""
    media = commands.add_parser(
        "media", help="build the discovery image unknown machines PXE-boot",
        description="Images the provisioner serves from DIR/media.", formatter_class=formatter)
    actions = media.add_subparsers(dest="action", metavar="ACTION", required=True)
    build_parser = actions.add_parser(
        "build", help="build the discovery image (from this admin node's Debian mirror)",
        description="Build the discovery image, linux and initrd, from Debian's own packages "
        "as this admin node's apt fetches them (nothing else is downloaded): the distribution "
        "kernel, static busybox, ipmitool, dmidecode, ethtool and the libraries they need, "
        "and the kernel modules for common server NICs and disks, bonding, VLANs and "
        "in-band IPMI. An unknown machine that PXE-boots it posts its inventory (DMI, CPUs, "
        "memory, disks, NICs with link and speed, its BMC) to the provisioner and waits for "
        "orders. About 22 MB; about a minute to build on 2 cores (80 MB of packages "
        "downloaded once). Builds are reproducible and cached by package versions: "
        "building again with the same packages copies the cached image. With DIR (a "
        "provisioner directory, as for 'pxe serve'), the image is put in DIR/media/discovery, "
        "where 'pxe serve' serves it. Needs apt (run 'apt-get update' first on a new admin "
        "node).", formatter_class=formatter)
    build_parser.set_defaults(handler=_build)
    build_parser.add_argument("directory", type=Path, nargs="?", metavar="DIR",
                              help="the provisioner's directory to put the image in")
    build_parser.add_argument("--cache", type=Path, default=None, metavar="PATH",
                              help="where packages and images are kept between builds "
                              f"(default: {default_cache()})")
    build_parser.add_argument("--rebuild", action="store_true",
                              help="build even when the cache has the image")


def _build(args: argparse.Namespace) -> int:
    started = time.monotonic()

    def progress(step: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] {step}", file=sys.stderr, flush=True)

    try:
        if args.directory is not None:
            prepare(args.directory)
        image = build(args.cache or default_cache(), progress, rebuild=args.rebuild)
        where = install(image, args.directory) if args.directory is not None else None
    except (DebError, TreeError, LinkError, OSError) as exc:
        print(f"cannot build the discovery image: {exc}", file=sys.stderr)
        return EXIT_FAILED
    megabytes = (image.linux.stat().st_size + image.initrd.stat().st_size) / 1e6
    print(f"discovery image {image.key}: kernel {image.info['kernel']}, {megabytes:.0f} MB "
          f"(linux + initrd), in {time.monotonic() - started:.0f} s")
    print(f"  {where or image.directory}/linux, initrd, image.json")
    if where is None:
        print("  give a provisioner directory to serve it: crowbar-wizard media build DIR")
    return EXIT_OK
