"""Events: skyproto's ``decode_events`` against SkPy 0.11's ``SkypeEvent.fromRaw``, same run.

Both sides start from the same poll body (bytes) and include JSON parsing: skyproto decodes the
body in one call, SkPy's side runs ``json.loads`` and then ``fromRaw`` on every element. The
batch cycles through every envelope in ``tests/vectors/events.json``. The two sides are timed
alternately, so that load from other processes hits both alike, and the best repeat of each
is reported.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skyproto.events import UnknownEvent, decode_events

from ._common import best_seconds, report

#: skyproto must decode at least this many times faster than the reference.
TARGET_RATIO = 2.0
BATCH_SIZE = 2000
REPEATS = 15
ROUNDS_PER_REPEAT = 3
VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "events.json"

#: SkPy's class for each of our event classes (UnknownEvent: its base class).
SKPY_CLASS_OF = {
    "PresenceEvent": "SkypePresenceEvent",
    "EndpointPresenceEvent": "SkypeEndpointEvent",
    "NewMessageEvent": "SkypeNewMessageEvent",
    "EditMessageEvent": "SkypeEditMessageEvent",
    "CallEvent": "SkypeCallEvent",
    "MessageEvent": "SkypeMessageEvent",
    "TypingEvent": "SkypeTypingEvent",
    "ConversationUpdateEvent": "SkypeChatUpdateEvent",
    "ThreadUpdateEvent": "SkypeChatMemberEvent",
    "UnknownEvent": "SkypeEvent",
}


class SkypeStub:
    """Stands in for ``skpy.Skype``: ``fromRaw`` only keeps a reference to it."""


def poll_body(size: int = BATCH_SIZE, vectors: Path = VECTORS) -> bytes:
    """A poll answer with ``size`` events cycling through the vector envelopes."""
    cases = json.loads(vectors.read_text(encoding="utf-8"))["cases"]
    envelopes: list[dict[str, Any]] = []
    for index in range(size):
        envelope = dict(cases[index % len(cases)]["raw"])
        envelope["id"] = 1000 + index
        envelopes.append(envelope)
    return json.dumps({"eventMessages": envelopes}).encode("utf-8")


def skpy_decoder() -> Callable[[bytes], list[Any]] | None:
    """SkPy 0.11's way from a poll body to events, or ``None`` when SkPy is not installed."""
    try:
        from skpy import SkypeEvent
    except ImportError:
        return None
    stub = SkypeStub()
    from_raw = SkypeEvent.fromRaw

    def decode(body: bytes) -> list[Any]:
        return [from_raw(stub, raw) for raw in json.loads(body).get("eventMessages", [])]

    return decode


def check_agreement(body: bytes, reference: Callable[[bytes], list[Any]]) -> None:
    """Stop when the two decoders classify any event of the batch differently."""
    ours = decode_events(body)
    theirs = reference(body)
    for our_event, their_event in zip(ours, theirs, strict=True):
        expected = SKPY_CLASS_OF[type(our_event).__name__]
        if type(their_event).__name__ != expected or our_event.id != their_event.id:
            raise SystemExit(f"events: decoders disagree on {our_event!r}")
    if any(
        isinstance(event, UnknownEvent) and event.reason.startswith("decoder") for event in ours
    ):
        raise SystemExit("events: the decoder failed on a vector envelope")


def measure(
    size: int = BATCH_SIZE, rounds: int = ROUNDS_PER_REPEAT, repeats: int = REPEATS
) -> tuple[float, float | None]:
    """(skyproto, SkPy) events per second; SkPy is ``None`` when not installed."""
    body = poll_body(size)
    reference = skpy_decoder()
    if reference is None:
        (ours,) = best_seconds([lambda: decode_events(body)], rounds, repeats)
        return size / ours, None
    check_agreement(body, reference)
    ours, theirs = best_seconds(
        [lambda: decode_events(body), lambda: reference(body)], rounds, repeats
    )
    return size / ours, size / theirs


def main() -> int:
    ours, theirs = measure()
    tail = f"(min of {REPEATS} repeats, {BATCH_SIZE} events, JSON parsing included)"
    if theirs is None:
        print(f"events: skyproto {ours / 1000:.0f}k ev/s, SkPy 0.11 not installed {tail}")
        return 0
    ratio = ours / theirs
    return report(
        f"events: skyproto {ours / 1000:.0f}k ev/s, SkPy 0.11 {theirs / 1000:.0f}k ev/s, "
        f"ratio {ratio:.1f}x {tail}",
        ratio,
        TARGET_RATIO,
    )


if __name__ == "__main__":
    sys.exit(main())
