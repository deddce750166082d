"""The linear-scan check: time one function at a size and at a few times that size, in one run."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _best_times(func: Callable[[T], object], inputs: tuple[T, T]) -> list[float]:
    best = [float("inf"), float("inf")]
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(5):
            for index, data in enumerate(inputs):
                start = time.thread_time()
                func(data)
                best[index] = min(best[index], time.thread_time() - start)
    finally:
        if enabled:
            gc.enable()
    return best


def assert_linear(
    func: Callable[[T], object],
    make_input: Callable[[int], T],
    sizes: tuple[int, int] = (2000, 16000),
) -> None:
    """Assert that ``func`` takes far less than quadratic time from ``sizes[0]`` to ``sizes[1]``.

    Each size is timed five times, interleaved, and the best kept. The clock is the thread's CPU
    time, so other processes on a busy machine do not lengthen the longer runs more than the
    short ones; the garbage collector is off meanwhile (as in :mod:`timeit`), since a full
    collection costs time in proportion to the whole test process, not to the input. The
    allowance is the square root of the quadratic growth times the linear one (22.6x for the
    default eightfold step, where quadratic is 64x; caches alone can make a fourfold step cost
    ten times more), plus a few milliseconds for timer noise on small inputs. A failing
    measurement is taken again, twice at most: a quadratic scan fails all three.
    """
    small, large = sizes
    inputs = (make_input(small), make_input(large))
    growth = large / small
    for _ in range(3):
        best = _best_times(func, inputs)
        if best[1] <= best[0] * growth**1.5 + 0.005:
            return
    raise AssertionError(
        f"{best[0]:.4f}s at {small} but {best[1]:.4f}s at {large}: worse than linear"
    )
