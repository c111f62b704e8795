"""A small disk of its own for a test: a tmpfs of a given size mounted in the test's temp
directory, to fill up for real (no write is faked). It is unmounted and its mount point
removed when the test ends, also when it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def need_mount() -> None:
    """Skip (or fail in CI) where a tmpfs cannot be mounted."""
    problem = None
    if os.geteuid() != 0:
        problem = "mounting a tmpfs needs root"
    elif shutil.which("mount") is None or shutil.which("umount") is None:
        problem = "mount and umount (util-linux) are not installed"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (mount's syntax: 256k, 64m) mounted at ``path``, made here."""
    need_mount()
    path.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                        str(path)], check=True, capture_output=True, text=True)
        try:
            yield path
        finally:
            subprocess.run(["umount", str(path)], check=True, capture_output=True, text=True)
    finally:
        path.rmdir()
