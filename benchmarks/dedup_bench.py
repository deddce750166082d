"""Cost growth: the event loop's de-duplication memory over 1,000,000 events, with tracemalloc.

The event loop remembers the ids of delivered events so that an event the server sends again is
acknowledged but not delivered twice. It keeps them in a set and a queue of at most
``LoopPolicy.dedupe_window`` ids (10,000 by default): each new id beyond that pushes the oldest
out of both. So what it holds is bounded by the window, not by how many events went by.

This runs a real :class:`~skyproto.EventLoop` through the sync driver: the pure emulator core
answers login, registration, subscription and ping in memory, and every poll is answered with
the next batch of fresh events (typing notifications, unique ids, nothing to acknowledge).
Memory is traced from before the loop is made. The row compares what is still allocated after
all the events with what was allocated once the window had filled (twice its size): the ratio
stays near 1 when memory is bounded, and would be about 1,000,000 / 20,000 = 50 if every id
were kept.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import tracemalloc
from pathlib import Path
from typing import Any

from skyproto.transports import run_sync

from skyproto import Credentials, EventLoop, HttpRequest, HttpResponse, LoopPolicy, Session
from skyproto.emulator import DEFAULT_ACCOUNT, Scenario
from skyproto.emulator.core import Emulator

from ._common import row

GOAL = "<= 1.1"
EVENTS = 1_000_000
EVENTS_PER_POLL = 1000
VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "events.json"


class VirtualClock:
    """Time that passes only when the loop sleeps: the loop keeps its minimum poll interval
    (a second) between the thousand polls without the run waiting them out."""

    def __init__(self) -> None:
        self._now = dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)


class FreshEvents:
    """A sync transport: the emulator core for every call, except polls, which get new events."""

    def __init__(self, per_poll: int, clock: VirtualClock) -> None:
        self.emulator = Emulator(scenario=Scenario(events=()), seed=1)
        self.clock = clock
        self.per_poll = per_poll
        self.next_id = 1
        cases = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]
        (typing,) = [case["raw"] for case in cases if case["name"] == "typing"]
        typing = dict(typing, id=0)
        typing["resource"] = {k: v for k, v in typing["resource"].items() if k != "ackrequired"}
        self.head, _, self.tail = json.dumps(typing).encode().partition(b'"id": 0')

    def send(self, request: HttpRequest) -> HttpResponse:
        if self.emulator.route(request) != "poll":
            return self.emulator.handle(request, self.clock.now())
        first, self.next_id = self.next_id, self.next_id + self.per_poll
        events = b",".join(
            b'%s"id": %d%s' % (self.head, event_id, self.tail)
            for event_id in range(first, self.next_id)
        )
        return HttpResponse(
            200,
            (("Content-Type", "application/json"),),
            b'{"eventMessages": [' + events + b"]}",
            request.url,
        )


def traced_now() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def main(smoke: bool = False) -> list[dict[str, Any]]:
    window = 100 if smoke else LoopPolicy().dedupe_window
    total = 2000 if smoke else EVENTS
    per_poll = 100 if smoke else EVENTS_PER_POLL
    early = 2 * window
    clock = VirtualClock()
    transport = FreshEvents(per_poll, clock)
    session = Session(
        transport.emulator.hosts,
        credentials=Credentials(DEFAULT_ACCOUNT.user, DEFAULT_ACCOUNT.password),
    )
    run_sync(session.connect(), transport, clock=clock.now, sleep=clock.sleep)
    tracemalloc.start()
    try:
        base = traced_now()
        loop = EventLoop(session, lambda event: None, policy=LoopPolicy(dedupe_window=window))
        run_sync(loop.run(max_events=early), transport, clock=clock.now, sleep=clock.sleep)
        after_window = traced_now() - base
        run_sync(loop.run(max_events=total - early), transport, clock=clock.now, sleep=clock.sleep)
        after_all = traced_now() - base
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert loop.stats.delivered == total, loop.stats
    assert loop.stats.duplicates == 0, loop.stats
    return [
        row(
            "dedup memory",
            skyproto=after_all / 1024,
            reference=after_window / 1024,
            ratio=after_all / after_window,
            goal=GOAL,
            unit="KiB held",
            reference_name=f"same loop after {early:,} events",
            statistic=(
                f"tracemalloc, held after {total:,} events (window {window:,}); "
                f"peak {peak / 1024:,.0f} KiB"
            ),
            ratio_is="held after all events / held once the window filled",
        )
    ]
