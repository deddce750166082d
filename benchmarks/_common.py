"""What every benchmark shares: the alternating timer and the line that reports a ratio."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_seconds(functions: list[Callable[[], object]], rounds: int, repeats: int) -> list[float]:
    """Per-call minimum time of each function over ``repeats`` runs of ``rounds`` calls.

    The functions are timed alternately, so that load from other processes hits all of them alike.
    """
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for index, function in enumerate(functions):
            started = time.perf_counter()
            for _ in range(rounds):
                function()
            best[index] = min(best[index], (time.perf_counter() - started) / rounds)
    return best


def report(line: str, ratio: float, target: float, unit: str = "x") -> int:
    """Print ``line``, marked ``BELOW TARGET`` when ``ratio`` misses ``target``; the exit status."""
    if ratio >= target:
        print(line)
        return 0
    print(f"{line} BELOW TARGET {target:g}{unit}")
    return 1
