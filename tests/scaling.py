"""Linear-time checks for scanners of server text: time one call at doubling input sizes.

This is the one timed property the suite allows (see the house rules): it compares sizes within
one run, with generous margins, so a slow or busy machine shifts every measurement alike.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from skyproto import SkypeException

__all__ = ["assert_linear"]

#: Repeats per size; the fastest run is kept, which filters out scheduling noise.
_REPEATS = 5
#: A run this long is measured once: noise is small beside it.
_LONG_RUN = 0.3
#: Growth is not judged when the largest size runs faster than this: such a scan stalls
#: nothing, and at that scale noise outweighs the algorithm. A quadratic scan of a few ten
#: thousand characters takes longer.
_NEGLIGIBLE = 0.01
#: Measurements of the whole series before a scan is called superlinear.
_ATTEMPTS = 2
#: Growth exponent allowed between two sizes: halfway between linear (1) and quadratic (2).
_MAX_EXPONENT = 1.5


def _best_time(func: Callable[[Any], object], value: Any) -> float:
    # The collector's passes grow with the heap, not with the scan: keep them out of the timing.
    gc.collect()
    gc.disable()
    try:
        best = float("inf")
        for _ in range(_REPEATS):
            started = time.perf_counter()
            with contextlib.suppress(SkypeException):
                func(value)
            best = min(best, time.perf_counter() - started)
            if best >= _LONG_RUN:
                break
        return best
    finally:
        gc.enable()


def assert_linear(
    func: Callable[[Any], object],
    make_input: Callable[[int], Any],
    sizes: Sequence[int] = (8_000, 16_000, 32_000),
) -> None:
    """Assert that ``func(make_input(n))`` grows well under quadratically over ``sizes``.

    ``sizes`` are increasing, typically n, 2n, 4n. Each step from one size to the next gives a
    growth exponent (1 for linear time, 2 for quadratic); the smallest of them must be at most
    1.5. The smallest, because a step across a CPU cache boundary makes a linear scan look
    steeper once, while a quadratic scan is steep at every step. A scan still negligibly fast
    at the largest size passes. ``func`` may raise a :class:`~skyproto.SkypeException`, since a
    hostile input often is an error.
    """
    sizes = list(sizes)
    if len(sizes) < 2 or sizes != sorted(set(sizes)) or sizes[0] < 1:
        raise ValueError("sizes must be at least two increasing positive numbers")
    inputs = [make_input(n) for n in sizes]
    _best_time(func, inputs[0])  # warm-up: imports, caches, compiled patterns
    shown = ""
    # A busy machine can slow one size down; a scan fails only when every measurement says so.
    for _ in range(_ATTEMPTS):
        times = [max(_best_time(func, value), 1e-7) for value in inputs]
        if times[-1] < _NEGLIGIBLE:
            return
        exponents = [
            math.log(t2 / t1) / math.log(n2 / n1)
            for (n1, t1), (n2, t2) in itertools.pairwise(zip(sizes, times, strict=True))
        ]
        if min(exponents) <= _MAX_EXPONENT:
            return
        shown = ", ".join(f"n={n}: {t * 1000:.1f} ms" for n, t in zip(sizes, times, strict=True))
    raise AssertionError(f"superlinear at every step, {_ATTEMPTS} times ({shown})")
