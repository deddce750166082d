"""Mac256: skyproto's ``mac256`` against SkPy 0.11's, on the same challenges, in the same run."""

from __future__ import annotations

import random
import timeit
from collections.abc import Callable, Sequence

from skyproto.mac256 import mac256

#: skyproto must be at least this many times faster than the reference.
TARGET_RATIO = 8.0
REPEATS = 7
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


def per_call_seconds(
    function: Callable[[str], str], inputs: Sequence[str], rounds: int, repeats: int
) -> float:
    """The best (minimum) time per call over ``repeats`` runs of ``rounds`` passes over inputs."""

    def one_pass() -> None:
        for challenge in inputs:
            function(challenge)

    best = min(timeit.Timer(one_pass).repeat(repeat=repeats, number=rounds))
    return best / (rounds * len(inputs))


def measure(rounds: int = ROUNDS_PER_REPEAT, repeats: int = REPEATS) -> tuple[float, float | None]:
    """(skyproto, SkPy) seconds per call; SkPy is ``None`` when not installed."""
    inputs = challenges()
    ref = reference()
    if ref is not None:
        mismatches = [c for c in inputs if mac256(c) != ref(c)]
        if mismatches:
            raise SystemExit(f"mac256 disagrees with SkPy on {mismatches[:3]}")
    ours = per_call_seconds(mac256, inputs, rounds, repeats)
    theirs = per_call_seconds(ref, inputs, rounds, repeats) if ref is not None else None
    return ours, theirs


def main() -> int:
    rounds, repeats = ROUNDS_PER_REPEAT, REPEATS
    calls = rounds * CHALLENGE_COUNT
    ours, theirs = measure(rounds, repeats)
    tail = f"(min of {repeats} repeats of {calls} calls)"
    if theirs is None:
        print(f"mac256: skyproto {ours * 1e6:.1f} µs/call, SkPy 0.11 not installed {tail}")
        return 0
    ratio = theirs / ours
    verdict = "" if ratio >= TARGET_RATIO else f" BELOW TARGET {TARGET_RATIO:g}x"
    print(
        f"mac256: skyproto {ours * 1e6:.1f} µs/call, SkPy 0.11 {theirs * 1e6:.1f} µs/call, "
        f"ratio {ratio:.1f}x {tail}{verdict}"
    )
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
