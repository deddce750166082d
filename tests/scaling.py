"""The linear-scan check: time one function at a size and at a few times that size, in one run."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def assert_linear(
    func: Callable[[T], object],
    make_input: Callable[[int], T],
    sizes: tuple[int, int] = (2000, 16000),
) -> None:
    """Assert that ``func`` takes far less than quadratic time from ``sizes[0]`` to ``sizes[1]``.

    Each size is timed several times, interleaved, and the best time kept, so a busy machine
    slows both alike. The garbage collector is off meanwhile (as in :mod:`timeit`): a full
    collection costs time in proportion to the whole test process, not to the input. The
    allowance is the square root of the quadratic growth times the linear one (22.6x for the
    default eightfold step, where quadratic is 64x; caches alone can make a fourfold step cost
    ten times more), plus a few milliseconds for timer noise on small inputs.
    """
    small, large = sizes
    inputs = (make_input(small), make_input(large))
    best = [float("inf"), float("inf")]
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(5):
            for index, data in enumerate(inputs):
                start = time.perf_counter()
                func(data)
                best[index] = min(best[index], time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    growth = large / small
    allowed = best[0] * growth**1.5 + 0.005
    assert best[1] <= allowed, (
        f"{best[0]:.4f}s at {small} but {best[1]:.4f}s at {large}: worse than linear"
    )
