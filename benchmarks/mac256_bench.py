"""Mac256: skyproto's ``mac256`` against SkPy 0.11's, on the same challenges, in the same run.

Every call computes the response afresh: nothing is cached, and the challenges are all different.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from skyproto.mac256 import mac256

from ._common import CPU_CLOCK, alternate, row

#: skyproto must be at least this many times faster than the reference.
GOAL = ">= 10"
REPEATS = 9
CHALLENGE_COUNT = 100
ROUNDS_PER_REPEAT = 20


def challenges(count: int = CHALLENGE_COUNT, seed: int = 2024) -> list[str]:
    """Realistic challenges: decimal Unix times between 2001 and 2100 (10 digits)."""
    rng = random.Random(seed)
    return [str(rng.randrange(1_000_000_000, 4_102_444_800)) for _ in range(count)]


def reference() -> Callable[[str], str] | None:
    """SkPy 0.11's Mac256 function, or ``None`` when SkPy is not installed."""
    try:
        from skpy.conn import SkypeRegistrationTokenProvider
    except ImportError:
        return None
    function: Callable[[str], str] = SkypeRegistrationTokenProvider.getMac256Hash
    return function


def one_pass(function: Callable[[str], str], inputs: Sequence[str]) -> Callable[[], None]:
    """A call of ``function`` on every input."""

    def run() -> None:
        for challenge in inputs:
            function(challenge)

    return run


def main(smoke: bool = False) -> list[dict[str, Any]]:
    rounds, repeats = (1, 2) if smoke else (ROUNDS_PER_REPEAT, REPEATS)
    inputs = challenges()
    ref = reference()
    functions = [one_pass(mac256, inputs)]
    if ref is not None:
        mismatches = [c for c in inputs if mac256(c) != ref(c)]
        if mismatches:
            raise SystemExit(f"mac256 disagrees with SkPy on {mismatches[:3]}")
        functions.append(one_pass(ref, inputs))
    samples = alternate(functions, rounds, repeats, clock=CPU_CLOCK)
    ours = min(samples[0]) / len(inputs)
    theirs = min(samples[1]) / len(inputs) if ref is not None else None
    return [
        row(
            "mac256",
            skyproto=ours * 1e6,
            reference=None if theirs is None else theirs * 1e6,
            ratio=None if theirs is None else theirs / ours,
            goal=GOAL,
            unit="µs/call",
            reference_name="SkPy 0.11",
            statistic=f"CPU time, min of {repeats} x {rounds * len(inputs)} calls",
            ratio_is="reference time / skyproto time",
        )
    ]
