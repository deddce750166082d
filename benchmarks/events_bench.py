"""Events: skyproto's ``decode_events`` against SkPy 0.11's ``SkypeEvent.fromRaw``, same run.

Both sides start from the same poll body (bytes) and include JSON parsing: skyproto decodes the
body in one call, SkPy's side runs ``json.loads`` and then ``fromRaw`` on every element. The
batch cycles through every envelope in ``tests/vectors/events.json``. The two sides are timed
alternately, so that load from other processes hits both alike, and the best repeat of each
is reported.

Every event is fully typed on our side: nested fields, times, ids and links included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skyproto.events import UnknownEvent, decode_events

from ._common import CPU_CLOCK, alternate, row

#: skyproto must decode at least this many times faster than the reference.
GOAL = ">= 3"
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


def main(smoke: bool = False) -> list[dict[str, Any]]:
    size, rounds, repeats = (50, 1, 2) if smoke else (BATCH_SIZE, ROUNDS_PER_REPEAT, REPEATS)
    body = poll_body(size)
    reference = skpy_decoder()
    functions: list[Callable[[], object]] = [lambda: decode_events(body)]
    if reference is not None:
        check_agreement(body, reference)
        functions.append(lambda: reference(body))
    samples = alternate(functions, rounds, repeats, clock=CPU_CLOCK)
    ours = size / min(samples[0])
    theirs = size / min(samples[1]) if reference is not None else None
    return [
        row(
            "events",
            skyproto=ours,
            reference=theirs,
            ratio=None if theirs is None else ours / theirs,
            goal=GOAL,
            unit="events/s",
            reference_name="SkPy 0.11 fromRaw",
            statistic=f"CPU time, min of {repeats} x {rounds} batches of {size} events, JSON included",
            ratio_is="skyproto rate / reference rate",
        )
    ]
