"""Timing helpers shared by the benchmarks (run as ``python benchmarks/bench_*.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(repeat: int, work: Callable[[], object],
            setup: Callable[[], object] | None = None) -> float:
    """The fastest of ``repeat`` runs of ``work``, in seconds (``setup`` runs untimed first)."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)
