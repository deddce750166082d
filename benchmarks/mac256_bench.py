"""Mac256: skyproto's ``mac256`` against SkPy 0.11's, on the same challenges, in the same run."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from skyproto.mac256 import mac256

from ._common import best_seconds, report

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


def one_pass(function: Callable[[str], str], inputs: Sequence[str]) -> Callable[[], None]:
    """A call of ``function`` on every input."""

    def run() -> None:
        for challenge in inputs:
            function(challenge)

    return run


def measure(rounds: int = ROUNDS_PER_REPEAT, repeats: int = REPEATS) -> tuple[float, float | None]:
    """(skyproto, SkPy) seconds per call; SkPy is ``None`` when not installed."""
    inputs = challenges()
    ref = reference()
    if ref is None:
        (ours,) = best_seconds([one_pass(mac256, inputs)], rounds, repeats)
        return ours / len(inputs), None
    mismatches = [c for c in inputs if mac256(c) != ref(c)]
    if mismatches:
        raise SystemExit(f"mac256 disagrees with SkPy on {mismatches[:3]}")
    ours, theirs = best_seconds([one_pass(mac256, inputs), one_pass(ref, inputs)], rounds, repeats)
    return ours / len(inputs), theirs / len(inputs)


def main() -> int:
    rounds, repeats = ROUNDS_PER_REPEAT, REPEATS
    calls = rounds * CHALLENGE_COUNT
    ours, theirs = measure(rounds, repeats)
    tail = f"(min of {repeats} repeats of {calls} calls)"
    if theirs is None:
        print(f"mac256: skyproto {ours * 1e6:.1f} µs/call, SkPy 0.11 not installed {tail}")
        return 0
    ratio = theirs / ours
    return report(
        f"mac256: skyproto {ours * 1e6:.1f} µs/call, SkPy 0.11 {theirs * 1e6:.1f} µs/call, "
        f"ratio {ratio:.1f}x {tail}",
        ratio,
        TARGET_RATIO,
    )


if __name__ == "__main__":
    raise SystemExit(main())
