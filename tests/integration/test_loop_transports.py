"""The event loop over every transport, against the emulator server.

The unit and stateful tests pin the loop's policy against the pure emulator; these show it holds
over real sockets, keep-alive connections and the async driver (with an async handler), with the
emulator's request log and its record of acknowledgements as the witnesses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from skyproto.transports._drive import utc_now

from skyproto import (
    CallEvent,
    ConversationUpdateEvent,
    Credentials,
    EditMessageEvent,
    EndpointPresenceEvent,
    Event,
    EventLoop,
    LoopPolicy,
    MessageEvent,
    NewMessageEvent,
    PresenceEvent,
    Session,
    ThreadUpdateEvent,
    TypingEvent,
    UnknownEvent,
)
from skyproto.emulator import EmulatorServer, Fault, Scenario
from skyproto.emulator.event_stream import ACK_KINDS, EVENT_KINDS

from .matrix_support import Runner

pytestmark = pytest.mark.integration

HOLD = 0.3
PER_POLL = 5
#: The event class each emulator kind decodes to.
DECODED: dict[str, type[Event]] = {
    "text": NewMessageEvent,
    "typing": TypingEvent,
    "presence": PresenceEvent,
    "endpoint_presence": EndpointPresenceEvent,
    "group_text": NewMessageEvent,
    "edit": EditMessageEvent,
    "clear_typing": TypingEvent,
    "call": CallEvent,
    "thread_activity": MessageEvent,
    "conversation_update": ConversationUpdateEvent,
    "thread_update": ThreadUpdateEvent,
    "custom": UnknownEvent,
}


@pytest.fixture
def scenario() -> Scenario:
    return Scenario(hold=HOLD, events=(), events_per_poll=PER_POLL)


def connected(runner: Runner, server: EmulatorServer) -> Session:
    account = server.account
    session = Session(server.hosts, credentials=Credentials(account.user, account.password))
    runner.run(session.connect())
    server.clear_requests()
    return session


def handler_for(runner: Runner, react: Callable[[Event], None]) -> Callable[[Event], Any]:
    """``react`` as the handler: a coroutine function on the async transport, else plain."""
    if runner.name != "httpx-async":
        return react

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        react(event)

    return handler


def message_id(ack_url: str) -> str:
    return ack_url.rsplit("/", 2)[-2]


def test_every_event_kind_in_order_through_a_404_until_stop(
    runner: Runner, server: EmulatorServer
) -> None:
    session = connected(runner, server)
    for kind in EVENT_KINDS:
        assert server.queue_event(kind) == 0  # kept for the loop's subscription
    got: list[Event] = []

    def react(event: Event) -> None:
        got.append(event)
        if len(got) == PER_POLL + 1:
            # Mid-run: the poll after this batch is answered 404 once.
            server.scenario = attrs.evolve(server.scenario, faults=(Fault("poll", 404),))
        if len(got) == len(EVENT_KINDS):
            loop.stop()

    loop = EventLoop(
        session, handler_for(runner, react), policy=LoopPolicy(hold=HOLD), rng=random.Random(5)
    )
    started = time.monotonic()
    stats = runner.run(loop.run())
    assert time.monotonic() - started < 5

    assert [type(e) for e in got] == [DECODED[kind] for kind in EVENT_KINDS]
    first = got[0].id
    assert first is not None
    assert [e.id for e in got] == list(range(first, first + len(EVENT_KINDS)))

    batches = [EVENT_KINDS[i : i + PER_POLL] for i in range(0, len(EVENT_KINDS), PER_POLL)]
    expected = ["subscribe", "ping"]
    for number, batch in enumerate(batches):
        if number == 2:
            expected += ["poll", "subscribe", "ping"]  # the 404, then subscribing again
        expected += ["poll", *["ack" for kind in batch if kind in ACK_KINDS]]
    assert server.routes() == expected

    acked = [message_id(e.ack_url) for e in got if e.ack_url is not None]
    assert len(acked) == len(ACK_KINDS)
    with server.lock:
        assert list(server.emulator.acknowledged) == acked
    assert (stats.delivered, stats.acks, stats.subscribes, stats.pings) == (12, 7, 2, 2)
    assert (stats.polls, stats.failures, stats.registrations, stats.duplicates) == (3, 0, 0, 0)


def test_stop_from_the_handler_leaves_the_rest_of_the_batch_unacked(
    runner: Runner, server: EmulatorServer
) -> None:
    session = connected(runner, server)
    for _ in range(3):
        server.queue_event("text")
    got: list[Event] = []

    def react(event: Event) -> None:
        got.append(event)
        if len(got) == 2:
            loop.stop()

    loop = EventLoop(session, handler_for(runner, react), policy=LoopPolicy(hold=HOLD))
    stats = runner.run(loop.run())

    assert server.routes() == ["subscribe", "ping", "poll", "ack", "ack"]
    with server.lock:
        assert list(server.emulator.acknowledged) == [
            message_id(e.ack_url) for e in got if e.ack_url is not None
        ]
    assert len(got) == 2
    assert (stats.delivered, stats.acks) == (2, 2)


def test_a_deadline_shorter_than_the_hold_ends_the_run_cleanly(
    runner: Runner, server: EmulatorServer
) -> None:
    session = connected(runner, server)
    server.scenario = attrs.evolve(server.scenario, hold=3.0)
    loop = EventLoop(session, handler_for(runner, lambda event: None))
    deadline = utc_now() + dt.timedelta(seconds=0.6)

    started = time.monotonic()
    stats = runner.run(loop.run(deadline=deadline))
    elapsed = time.monotonic() - started

    # The poll's timeout was cut to the time left, so it timed out at the deadline and the run
    # ended without an error and without a backoff.
    assert 0.4 < elapsed < 2.0
    assert server.routes() == ["subscribe", "ping", "poll"]
    assert (stats.polls, stats.failures, stats.slept) == (0, 0, 0.0)


def test_a_server_answering_at_once_is_polled_at_the_minimum_interval(
    runner: Runner, server: EmulatorServer
) -> None:
    session = connected(runner, server)
    server.scenario = attrs.evolve(server.scenario, hold=0)  # every poll answered empty at once
    interval = 0.25
    loop = EventLoop(
        session,
        handler_for(runner, lambda event: None),
        policy=LoopPolicy(min_poll_interval=interval),
    )
    deadline = utc_now() + dt.timedelta(seconds=1.5)

    started = time.monotonic()
    stats = runner.run(loop.run(deadline=deadline))
    elapsed = time.monotonic() - started

    polls = server.routes().count("poll")
    assert polls == stats.polls
    # About elapsed / interval polls (one at the start), never the hundreds a spinning loop sends.
    assert 2 <= polls <= elapsed / interval + 2
    assert stats.slept > 0
