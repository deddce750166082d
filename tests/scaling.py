"""Linear-time checks for scans of server text: the one timed property the suite allows.

:func:`assert_linear` times one function on inputs of size ``n``, ``2n`` and ``4n`` in the same
run and fails when the time grows clearly faster than the size. The margin is the square root of
the quadratic growth times the linear one (4n may take 8 times as long as n, where a quadratic scan
takes 16 times as long; 8n may take 22.6 times, against 64), because caches alone can make a
larger input cost more per character. The sizes are timed in turn over several rounds, in CPU time,
with the garbage collector off and the best run of each kept, so a busy machine does not make the
check flaky.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

from skyproto import SkypeException

__all__ = ["assert_linear"]

#: The largest allowed ratio of time(size) / time(sizes[0]) is growth ** _EXPONENT.
_EXPONENT = 1.5
#: Seconds of timer noise allowed on top, for small inputs.
_NOISE = 0.005
#: Rounds of runs at most; the fastest run of each size is kept (noise only ever adds time).
_ROUNDS = 7
#: Below this many seconds for the smallest size, the timing is too coarse to compare.
_MIN_BASE = 0.0001
#: ... but scaling up stops once the largest size takes this long, or at this factor.
_MAX_LARGEST = 0.25
_MAX_SCALE = 64


def _run(func: Callable[[Any], object], value: Any) -> float:
    # CPU time of this thread, not wall time: on a loaded machine a run longer than a scheduler
    # slice waits for other processes, which would inflate the larger sizes only. A hostile
    # input is often an error: a skyproto exception ends the run like a result.
    started = time.thread_time()
    with contextlib.suppress(SkypeException):
        func(value)
    return time.thread_time() - started


def assert_linear(
    func: Callable[[Any], object],
    make_input: Callable[[int], Any],
    sizes: Sequence[int] = (20_000, 40_000, 80_000),
    *,
    rounds: int = _ROUNDS,
) -> None:
    """Fail unless ``func(make_input(size))`` takes time roughly linear in ``size``.

    ``sizes`` start with the base size; the largest, ``s``, may take at most
    ``(s / sizes[0]) ** 1.5`` times as long as the base, plus a few milliseconds of timer noise;
    the sizes between are timed and reported with it. Inputs are built before the clock starts.
    ``func`` may raise a :class:`~skyproto.SkypeException`, since a hostile input often is an
    error; any other exception fails the check. Keep the inputs small enough to stay in the CPU caches (up to a few hundred kB): a
    linear scan's cost per character steps up once its data outgrows them.

    The sizes are timed in turn, round after round, and the fastest time of each is kept, so all
    sizes see the same machine load; the check passes as soon as the kept times are within the
    limit, and fails when they are still over it after the last round. When the base size runs
    too fast to time, the sizes are scaled up (by 4 at a time, at most 64 times) until it does
    not.
    """
    if len(sizes) < 2 or sorted(sizes) != list(sizes) or sizes[0] <= 0:
        raise ValueError("sizes must be at least two increasing positive sizes")
    limits = [(size / sizes[0]) ** _EXPONENT for size in sizes]
    scale = 1
    while scale < _MAX_SCALE and _run(func, make_input(sizes[0] * scale)) < _MIN_BASE:
        if _run(func, make_input(sizes[-1] * scale)) >= _MAX_LARGEST:
            break
        scale *= 4
    inputs = [make_input(size * scale) for size in sizes]
    best = [float("inf")] * len(sizes)
    ratio = float("inf")
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for index, value in enumerate(inputs):
                best[index] = min(best[index], _run(func, value))
            ratio = best[-1] / max(best[0], 1e-9)
            if best[-1] < best[0] * limits[-1] + _NOISE:
                break
    finally:
        if enabled:
            gc.enable()
    assert best[-1] < best[0] * limits[-1] + _NOISE, (
        f"time grows faster than linear: size {sizes[-1] * scale} took {ratio:.1f}x "
        f"as long as size {sizes[0] * scale} (limit {limits[-1]:.1f}x); "
        f"best times {[f'{t:.4f}s' for t in best]} for sizes {[s * scale for s in sizes]}"
    )
