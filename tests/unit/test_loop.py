"""The event loop against a canned peer: exact request sequences, a fake clock, recorded sleeps.

The peer is the pure emulator (logins, registrations, subscriptions, pings) with scripted answers
on top for the routes a test cares about (mostly the poll and the ack). Everything the loop does
goes into one journal of strings, so the order of requests, deliveries and sleeps is asserted at
once: ``"poll"`` is a request on that route, ``"ack 5"`` an acknowledgement of message 5,
``"deliver 5"`` the handler having returned for event 5.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from skyproto.transports import run_async

from skyproto import (
    Credentials,
    Event,
    EventLoop,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    LoopPolicy,
    LoopStats,
    RemoteProtocolError,
    Session,
    SkypeApiException,
    SkypeRateLimitException,
    TransportError,
    TransportTimeout,
    UnknownEvent,
    UntrustedHostError,
)
from skyproto.calls import USER_AGENT
from skyproto.emulator import DEFAULT_ACCOUNT, Emulator, Scenario
from skyproto.emulator.event_stream import render_event
from skyproto.emulator.testing import Peer, Took
from skyproto.endpoint import EndpointGoneError, check_endpoint_status
from skyproto.events import decode_events
from skyproto.loop import FAULT_ACTIONS, Action, Fault, _classify, backoff_delay

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
H = "https://client-s.gateway.messenger.live.com/v1"
EVIL_ACK = "https://evil.example/v1/users/ME/conversations/ALL/messages/77/ack"
_ACK_ID = re.compile(r"/messages/([^/]+)/ack$")


# -- the canned peer ----------------------------------------------------------------------------


def _last_poll(peer: LoopPeer) -> HttpResponse:
    # The script ran out: the last poll is answered empty and the loop told to stop.
    assert peer.loop is not None
    peer.loop.stop()
    return batch()


class LoopPeer(Peer):
    """The test peer on the pure emulator, with a session connected through it and the loop
    under test. A poll not scripted with ``Took`` takes ``poll_seconds`` (the default minimum
    poll interval, so the loop need not wait between polls unless a test asks for it); an ack
    not scripted is accepted."""

    def __init__(self, scenario: Scenario | None = None, *, poll_seconds: float = 1.0) -> None:
        emulator = Emulator(scenario=scenario or Scenario(events=(), hold=0), seed=7)
        super().__init__(emulator, start=T0, durations={"poll": poll_seconds})
        self.always("poll", lambda _request: _last_poll(self))
        self.always("ack", HttpResponse.build(201))
        self.loop: EventLoop | None = None
        self.session = Session(
            self.hosts, credentials=Credentials(DEFAULT_ACCOUNT.user, DEFAULT_ACCOUNT.password)
        )
        super().run(self.session.connect())
        self.clear()

    def event_loop(
        self,
        policy: LoopPolicy | None = None,
        *,
        handler: Callable[[Event], object] | None = None,
        seed: int = 1,
        auto_ack: bool = True,
    ) -> EventLoop:
        self.loop = EventLoop(
            self.session,
            handler or self.handler,
            policy=policy,
            rng=random.Random(seed),
            auto_ack=auto_ack,
        )
        return self.loop

    def run(self, loop: EventLoop, **options: Any) -> LoopStats:  # type: ignore[override]
        stats: LoopStats = super().run(loop.run(**options))
        return stats

    def ids(self) -> list[int | None]:
        return [event.id for event in self.delivered]

    @property
    def reg_token(self) -> str:
        reg = self.session.state.registration
        assert reg is not None
        return reg.token.token


class AsyncPeer:
    """The same peer behind an async transport and sleeper."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    async def send(self, request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(0)
        return self.peer.send(request)

    async def sleep(self, seconds: float) -> None:
        self.peer.sleep(seconds)

    async def run(self, loop: EventLoop, **options: Any) -> LoopStats:
        return await run_async(loop.run(**options), self, clock=self.peer.clock, sleep=self.sleep)


# -- canned answers -----------------------------------------------------------------------------


def envelope(event_id: int | None, kind: str = "text", *, ack_url: str | None = None) -> Any:
    """An ``eventMessages`` element of ``kind`` whose message id is the event id."""
    number = event_id if event_id is not None else 999
    element = render_event(
        kind, base=H, event_id=number, message_id=str(number), when=T0, seq=number, user="live:fred"
    )
    if event_id is None:
        del element["id"]
    if ack_url is not None:
        element["resource"]["ackrequired"] = ack_url
    return element


def batch(*elements: Any) -> HttpResponse:
    return HttpResponse.build(200, json={"eventMessages": list(elements)})


def events(*ids: int) -> HttpResponse:
    return batch(*(envelope(i) for i in ids))


def error(status: int, code: int | None = None, *, headers: Any = None) -> HttpResponse:
    body = {"errorCode": code if code is not None else status, "message": "canned"}
    return HttpResponse.build(status, json=body, headers=headers)


GONE = error(404, 729)
RELOGIN = ["soap", "edge", "profile"]
REGISTER = ["register", "config", "endpoints"]
RESUBSCRIBE = ["subscribe", "ping"]


# -- one cycle ----------------------------------------------------------------------------------


def test_one_cycle_subscribes_pings_polls_delivers_and_acks_in_order() -> None:
    peer = LoopPeer()
    peer.on("poll", batch(envelope(1), envelope(2, "presence"), envelope(3, "edit")))
    loop = peer.event_loop()

    stats = peer.run(loop)

    assert peer.journal == [
        "subscribe",
        "ping",
        "poll",
        "deliver 1",
        "ack 1",
        "deliver 2",  # a presence event carries no ackrequired
        "deliver 3",
        "ack 3",
        "poll",
    ]
    assert stats == LoopStats(polls=2, delivered=3, acks=2, subscribes=1, pings=1)
    assert [type(e).__name__ for e in peer.delivered] == [
        "NewMessageEvent",
        "PresenceEvent",
        "EditMessageEvent",
    ]
    token = peer.reg_token
    auth = (("User-Agent", USER_AGENT), ("RegistrationToken", token))
    (subscribe,) = peer.sent_to("subscribe")
    assert (subscribe.method, subscribe.url) == (
        "POST",
        f"{H}/users/ME/endpoints/SELF/subscriptions",
    )
    assert subscribe.headers[:2] == auth
    assert json.loads(subscribe.body) == {
        "interestedResources": [
            "/v1/users/ME/conversations/ALL/properties",
            "/v1/users/ME/conversations/ALL/messages",
            "/v1/threads/ALL",
        ],
        "channelType": "HttpLongPoll",
        "conversationType": 2047,
    }
    (ping,) = peer.sent_to("ping")
    assert (ping.method, ping.url, ping.body) == (
        "POST",
        f"{H}/users/ME/endpoints/SELF/active",
        b'{"timeout": 12}',
    )
    for poll in peer.sent_to("poll"):
        assert (poll.method, poll.url, poll.body, poll.timeout) == (
            "POST",
            f"{H}/users/ME/endpoints/SELF/subscriptions/0/poll",
            b"",
            45.0,
        )
        assert poll.headers[:2] == auth
    acks = peer.sent_to("ack")
    assert [(a.method, a.url, a.headers, a.body) for a in acks] == [
        ("POST", f"{H}/users/ME/conversations/ALL/messages/{n}/ack", auth, b"") for n in (1, 3)
    ]


def test_no_ack_is_sent_before_the_handler_returned() -> None:
    peer = LoopPeer()
    peer.on("poll", events(1, 2))
    seen_at_call: list[list[str]] = []

    def handler(event: Event) -> None:
        seen_at_call.append(list(peer.journal))
        peer.journal.append(f"deliver {event.id}")

    peer.run(peer.event_loop(handler=handler))

    assert seen_at_call[0] == ["subscribe", "ping", "poll"]
    assert seen_at_call[1] == ["subscribe", "ping", "poll", "deliver 1", "ack 1"]
    assert peer.journal[3:] == ["deliver 1", "ack 1", "deliver 2", "ack 2", "poll"]


def test_auto_ack_off_sends_no_ack() -> None:
    peer = LoopPeer()
    peer.on("poll", events(1, 2))
    stats = peer.run(peer.event_loop(auto_ack=False))
    assert peer.journal == ["subscribe", "ping", "poll", "deliver 1", "deliver 2", "poll"]
    assert (stats.delivered, stats.acks) == (2, 0)


def test_ack_to_an_untrusted_host_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = LoopPeer()
    peer.on("poll", batch(envelope(1, ack_url=EVIL_ACK), envelope(2)))
    with caplog.at_level(logging.WARNING, logger="skyproto"):
        stats = peer.run(peer.event_loop())

    assert peer.journal == ["subscribe", "ping", "poll", "deliver 1", "deliver 2", "ack 2", "poll"]
    assert all("evil.example" not in request.url for request in peer.sent)
    assert (stats.acks, stats.ack_failures) == (1, 0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["not acknowledging an event at untrusted host evil.example"]


@pytest.mark.parametrize(
    "failure",
    [error(500), error(404), TransportError("connection reset"), error(429)],
    ids=["500", "404", "transport", "429"],
)
def test_a_failed_ack_is_logged_and_the_loop_goes_on(
    failure: Any, caplog: pytest.LogCaptureFixture
) -> None:
    peer = LoopPeer()
    peer.on("poll", events(1, 2))
    peer.on("ack", failure)
    with caplog.at_level(logging.WARNING, logger="skyproto"):
        stats = peer.run(peer.event_loop())

    # No recovery: a 404 on an ack means the message is unknown, not that the endpoint is gone.
    assert peer.journal == [
        "subscribe",
        "ping",
        "poll",
        "deliver 1",
        "ack 1",
        "deliver 2",
        "ack 2",
        "poll",
    ]
    assert (stats.delivered, stats.acks, stats.ack_failures, stats.registrations) == (2, 1, 1, 0)
    assert any("event acknowledgement failed" in r.getMessage() for r in caplog.records)
    assert peer.reg_token not in caplog.text


def test_an_ack_answered_401_logs_in_again_and_the_next_poll_subscribes_the_new_endpoint() -> None:
    peer = LoopPeer()
    old_token = peer.reg_token
    peer.on("poll", events(1))
    peer.on("ack", error(401))
    stats = peer.run(peer.event_loop())

    assert peer.journal == [
        *["subscribe", "ping", "poll", "deliver 1", "ack 1"],
        *RELOGIN,
        *REGISTER,
        "ack 1",
        *RESUBSCRIBE,
        "poll",
    ]
    assert peer.reg_token != old_token
    assert dict(peer.sent_to("ack")[-1].headers)["RegistrationToken"] == peer.reg_token
    assert dict(peer.sent_to("poll")[-1].headers)["RegistrationToken"] == peer.reg_token
    assert (stats.acks, stats.ack_failures, stats.subscribes) == (1, 0, 2)


# -- de-duplication -----------------------------------------------------------------------------


def test_an_event_seen_before_is_acked_again_but_not_delivered_again() -> None:
    peer = LoopPeer()
    peer.on("poll", events(1, 2), events(2, 3, 1))
    stats = peer.run(peer.event_loop())

    assert peer.ids() == [1, 2, 3]
    assert peer.journal[3:] == [
        *["deliver 1", "ack 1", "deliver 2", "ack 2", "poll"],
        *["ack 2", "deliver 3", "ack 3", "ack 1", "poll"],
    ]
    assert (stats.delivered, stats.duplicates, stats.acks) == (3, 2, 5)


def test_an_event_repeated_within_one_batch_is_delivered_once() -> None:
    peer = LoopPeer()
    peer.on("poll", events(4, 4))
    stats = peer.run(peer.event_loop())
    assert peer.journal[3:] == ["deliver 4", "ack 4", "ack 4", "poll"]
    assert (stats.delivered, stats.duplicates) == (1, 1)


def test_dedupe_survives_a_new_subscription() -> None:
    peer = LoopPeer()
    peer.on("poll", events(1), error(404), events(1, 2))
    peer.run(peer.event_loop())

    assert peer.ids() == [1, 2]
    assert peer.journal == [
        *["subscribe", "ping", "poll", "deliver 1", "ack 1"],
        "poll",
        *RESUBSCRIBE,
        *["poll", "ack 1", "deliver 2", "ack 2"],
        "poll",
    ]


@pytest.mark.parametrize("status", [403, 729])
def test_dedupe_survives_a_new_registration(status: int) -> None:
    peer = LoopPeer()
    first_token = peer.reg_token
    peer.on("poll", events(1), GONE if status == 729 else error(403), events(1, 2))
    peer.run(peer.event_loop())

    assert peer.ids() == [1, 2]
    assert peer.journal == [
        *["subscribe", "ping", "poll", "deliver 1", "ack 1"],
        "poll",
        *REGISTER,
        *RESUBSCRIBE,
        *["poll", "ack 1", "deliver 2", "ack 2"],
        "poll",
    ]
    assert peer.reg_token != first_token


def test_events_without_an_id_are_delivered_every_time() -> None:
    peer = LoopPeer()
    peer.on("poll", batch(envelope(None)), batch(envelope(None), envelope(5)))
    stats = peer.run(peer.event_loop())

    assert peer.ids() == [None, None, 5]
    assert all(isinstance(e, UnknownEvent) for e in peer.delivered[:2])
    # Still acknowledged: the server asked for it.
    assert peer.journal[3:] == [
        *["deliver None", "ack 999", "poll"],
        *["deliver None", "ack 999", "deliver 5", "ack 5", "poll"],
    ]
    assert (stats.delivered, stats.duplicates) == (3, 0)


def test_the_dedupe_window_forgets_the_oldest_ids() -> None:
    peer = LoopPeer()
    peer.on("poll", events(1, 2, 3), events(3, 2, 1), events(1))
    loop = peer.event_loop(LoopPolicy(dedupe_window=2))
    peer.run(loop)

    # 1 was forgotten when 3 came, so it is delivered again; that forgets 2 in turn.
    assert peer.ids() == [1, 2, 3, 1]
    assert [loop.seen(i) for i in (1, 2, 3)] == [True, False, True]


# -- the handler raising ------------------------------------------------------------------------


class HandlerBroke(Exception):
    pass


def test_a_handler_exception_ends_the_loop_without_acking_or_remembering_that_event() -> None:
    peer = LoopPeer()
    peer.on("poll", events(1, 2, 3))

    def handler(event: Event) -> None:
        if event.id == 2:
            raise HandlerBroke("no")
        peer.handler(event)

    loop = peer.event_loop(handler=handler)
    with pytest.raises(HandlerBroke):
        peer.run(loop)

    assert peer.journal == ["subscribe", "ping", "poll", "deliver 1", "ack 1"]
    assert (loop.seen(1), loop.seen(2), loop.seen(3)) == (True, False, False)
    assert loop.stats.delivered == 1

    # The server sends what was not acknowledged again; a new run delivers it (once).
    peer.journal.clear()
    peer.on("poll", events(1, 2, 3))
    loop.handler = peer.handler
    stats = peer.run(loop)
    assert peer.journal == ["poll", "ack 1", "deliver 2", "ack 2", "deliver 3", "ack 3", "poll"]
    assert peer.ids() == [1, 2, 3]
    assert (stats.delivered, stats.duplicates) == (3, 1)


@pytest.mark.parametrize(
    "exc",
    [SkypeApiException("500 response from GET x"), TransportError("handler's own call failed")],
)
def test_a_handler_exception_of_a_kind_the_loop_recovers_from_still_ends_it(
    exc: Exception,
) -> None:
    peer = LoopPeer()
    peer.on("poll", events(1))

    def handler(event: Event) -> None:
        raise exc

    with pytest.raises(type(exc)) as raised:
        peer.run(peer.event_loop(handler=handler))
    assert raised.value is exc
    assert peer.journal == ["subscribe", "ping", "poll"]
    assert peer.sleeps == []


# -- ending the loop ----------------------------------------------------------------------------


def test_stop_from_the_handler_leaves_the_rest_of_the_batch_undelivered_and_unacked() -> None:
    peer = LoopPeer()
    peer.on("poll", events(1, 2, 3), events(4))

    def handler(event: Event) -> None:
        peer.handler(event)
        if event.id == 2:
            loop.stop()

    loop = peer.event_loop(handler=handler)
    stats = peer.run(loop)

    assert peer.journal == ["subscribe", "ping", "poll", "deliver 1", "ack 1", "deliver 2", "ack 2"]
    assert loop.stopping
    assert not loop.seen(3)
    assert (stats.polls, stats.delivered, stats.acks) == (1, 2, 2)


def test_a_stop_between_making_the_flow_and_driving_it_is_kept() -> None:
    # A thread or task that calls stop() before the driver first steps the flow must end it:
    # the flow sends nothing, whatever its other bounds.
    peer = LoopPeer()
    peer.on("poll", events(1), events(2))
    loop = peer.event_loop()
    flow = loop.run(max_polls=2)
    loop.stop()
    stats = Peer.run(peer, flow)

    assert peer.sent == []
    assert (stats.polls, stats.delivered) == (0, 0)


def test_run_forgets_a_stop_from_before_it_was_called() -> None:
    peer = LoopPeer()
    peer.on("poll", events(1))
    loop = peer.event_loop()
    loop.stop()
    stats = peer.run(loop, max_polls=1)

    assert (stats.polls, stats.delivered) == (1, 1)


def test_max_events_stops_after_that_many_deliveries() -> None:
    peer = LoopPeer()
    peer.on("poll", events(1), events(2, 3, 4))
    loop = peer.event_loop()
    stats = peer.run(loop, max_events=3)

    assert peer.journal == [
        *["subscribe", "ping", "poll", "deliver 1", "ack 1"],
        *["poll", "deliver 2", "ack 2", "deliver 3", "ack 3"],
    ]
    assert stats.delivered == 3
    assert not loop.seen(4)

    # max_events counts from where the run starts.
    peer.journal.clear()
    peer.on("poll", events(4, 5))
    assert peer.run(loop, max_events=1).delivered == 4
    assert peer.journal == ["poll", "deliver 4", "ack 4"]


def test_max_events_zero_sends_nothing_and_negative_is_refused() -> None:
    peer = LoopPeer()
    loop = peer.event_loop()
    assert peer.run(loop, max_events=0) == LoopStats()
    assert peer.journal == []
    with pytest.raises(LocalProtocolError):
        peer.run(loop, max_events=-1)


def test_max_polls_one_is_a_single_cycle_even_when_it_brings_nothing() -> None:
    peer = LoopPeer()
    peer.on("poll", batch(), events(1, 2))
    loop = peer.event_loop()
    stats = peer.run(loop, max_polls=1)
    assert peer.journal == ["subscribe", "ping", "poll"]
    assert (stats.polls, stats.delivered) == (1, 0)

    peer.journal.clear()
    stats = peer.run(loop, max_polls=1)
    assert peer.journal == ["poll", "deliver 1", "ack 1", "deliver 2", "ack 2"]
    assert (stats.polls, stats.delivered) == (2, 2)
    with pytest.raises(LocalProtocolError, match="max_polls"):
        peer.run(loop, max_polls=-1)


def test_a_deadline_shrinks_the_poll_timeout_and_a_timeout_after_it_ends_cleanly() -> None:
    peer = LoopPeer()
    empty = batch()
    peer.on("poll", Took(30, empty), Took(30, empty), Took(30, empty))
    peer.on("poll", Took(10, TransportTimeout("read timed out")))
    loop = peer.event_loop(LoopPolicy(ping_interval=300))

    stats = peer.run(loop, deadline=T0 + dt.timedelta(seconds=100))

    assert [p.timeout for p in peer.sent_to("poll")] == [45.0, 45.0, 40.0, 10.0]
    assert peer.journal == ["subscribe", "ping", "poll", "poll", "poll", "poll"]
    assert peer.sleeps == []
    assert (stats.polls, stats.failures) == (3, 0)
    assert peer.clock.now == T0 + dt.timedelta(seconds=100)


def test_a_deadline_closer_than_half_a_second_still_gives_the_poll_half_a_second() -> None:
    peer = LoopPeer()
    peer.on("poll", Took(0.5, TransportTimeout("read timed out")))
    peer.run(peer.event_loop(), deadline=T0 + dt.timedelta(seconds=0.2))
    assert [p.timeout for p in peer.sent_to("poll")] == [0.5]


def test_a_deadline_in_the_past_sends_nothing() -> None:
    peer = LoopPeer()
    assert peer.run(peer.event_loop(), deadline=T0) == LoopStats()
    assert peer.journal == []


def test_a_timeout_before_the_deadline_is_a_failure_with_backoff() -> None:
    peer = LoopPeer()
    peer.on("poll", Took(5, TransportTimeout("read timed out")), Took(100, batch()))
    policy = LoopPolicy(backoff_initial=2, backoff_max=8)
    stats = peer.run(peer.event_loop(policy), deadline=T0 + dt.timedelta(seconds=60))

    assert peer.journal == ["subscribe", "ping", "poll", "sleep", "poll"]
    assert 1 <= peer.sleeps[0] <= 2
    assert stats.failures == 1


def test_backoff_and_retry_after_never_sleep_past_the_deadline() -> None:
    peer = LoopPeer()
    peer.on("poll", Took(97, error(503)))
    policy = LoopPolicy(backoff_initial=60, backoff_max=60)
    stats = peer.run(peer.event_loop(policy), deadline=T0 + dt.timedelta(seconds=100))
    assert peer.sleeps == [3.0]
    assert peer.journal == ["subscribe", "ping", "poll", "sleep"]
    assert stats.slept == 3.0

    peer = LoopPeer()
    peer.on("poll", Took(98, error(429, headers=[("Retry-After", "30")])))
    peer.run(peer.event_loop(), deadline=T0 + dt.timedelta(seconds=100))
    assert peer.sleeps == [2.0]


def test_a_deadline_must_be_timezone_aware() -> None:
    peer = LoopPeer()
    with pytest.raises(LocalProtocolError):
        peer.run(peer.event_loop(), deadline=dt.datetime(2024, 5, 6, 8))
    assert peer.journal == []


# -- recoveries ---------------------------------------------------------------------------------


def test_404_subscribes_again() -> None:
    peer = LoopPeer()
    token = peer.reg_token
    peer.on("poll", error(404), events(1))
    stats = peer.run(peer.event_loop())

    assert peer.traffic() == ["subscribe", "ping", "poll", *RESUBSCRIBE, "poll", "ack 1", "poll"]
    assert peer.reg_token == token
    assert (stats.subscribes, stats.registrations, stats.failures) == (2, 0, 0)
    assert peer.sleeps == []


def test_a_second_404_in_a_row_registers_again() -> None:
    peer = LoopPeer()
    token = peer.reg_token
    peer.on("poll", error(404), error(404), events(1))
    stats = peer.run(peer.event_loop())

    assert peer.traffic() == [
        *["subscribe", "ping", "poll"],
        *RESUBSCRIBE,
        "poll",
        *REGISTER,
        *RESUBSCRIBE,
        *["poll", "ack 1", "poll"],
    ]
    assert peer.reg_token != token
    assert dict(peer.sent_to("poll")[-1].headers)["RegistrationToken"] == peer.reg_token
    assert (stats.subscribes, stats.registrations) == (3, 1)


def test_404s_separated_by_a_good_poll_only_subscribe() -> None:
    peer = LoopPeer()
    peer.on("poll", error(404), batch(), error(404), batch())
    stats = peer.run(peer.event_loop())
    assert "register" not in peer.traffic()
    assert (stats.subscribes, stats.registrations) == (3, 0)


def test_a_404_after_another_recovery_subscribes_first() -> None:
    peer = LoopPeer()
    peer.on("poll", error(403), error(404), events(1))
    stats = peer.run(peer.event_loop())
    assert peer.traffic() == [
        *["subscribe", "ping", "poll"],
        *REGISTER,
        *RESUBSCRIBE,
        "poll",
        *RESUBSCRIBE,
        *["poll", "ack 1", "poll"],
    ]
    assert (stats.subscribes, stats.registrations) == (3, 1)


def test_403_registers_again_and_subscribes_the_new_endpoint() -> None:
    peer = LoopPeer()
    token = peer.reg_token
    peer.on("poll", error(403), events(1))
    stats = peer.run(peer.event_loop())

    assert peer.traffic() == [
        *["subscribe", "ping", "poll"],
        *REGISTER,
        *RESUBSCRIBE,
        *["poll", "ack 1", "poll"],
    ]
    assert peer.reg_token != token
    for route in ("subscribe", "ping", "poll", "ack"):
        assert dict(peer.sent_to(route)[-1].headers)["RegistrationToken"] == peer.reg_token
    assert (stats.registrations, stats.subscribes) == (1, 2)


def test_729_registers_again_and_subscribes_before_polling() -> None:
    peer = LoopPeer()
    token = peer.reg_token
    peer.on("poll", GONE, events(1))
    peer.run(peer.event_loop())

    # The session registers again at once; the loop subscribes the new endpoint before polling it.
    assert peer.traffic() == [
        *["subscribe", "ping", "poll"],
        *REGISTER,
        *RESUBSCRIBE,
        *["poll", "ack 1", "poll"],
    ]
    assert peer.reg_token != token


def test_729_twice_in_a_row_registers_twice() -> None:
    peer = LoopPeer()
    peer.on("poll", GONE, GONE, events(1))
    stats = peer.run(peer.event_loop())
    assert peer.traffic() == [
        *["subscribe", "ping", "poll"],
        *REGISTER,
        *RESUBSCRIBE,
        "poll",
        *REGISTER,
        *RESUBSCRIBE,
        *["poll", "ack 1", "poll"],
    ]
    assert (stats.registrations, stats.subscribes) == (1, 3)


def test_401_logs_in_and_registers_through_the_session_then_subscribes_again() -> None:
    peer = LoopPeer()
    skype_token = peer.session.state.skype_token
    reg_token = peer.reg_token
    peer.on("poll", error(401), events(1))
    stats = peer.run(peer.event_loop())

    assert peer.traffic() == [
        *["subscribe", "ping", "poll"],
        *RELOGIN,
        *REGISTER,
        *RESUBSCRIBE,
        *["poll", "ack 1", "poll"],
    ]
    assert peer.session.state.skype_token is not skype_token
    assert peer.reg_token != reg_token
    assert dict(peer.sent_to("poll")[1].headers)["RegistrationToken"] == peer.reg_token
    assert (stats.delivered, stats.subscribes, stats.failures) == (1, 2, 0)


def test_a_401_right_after_logging_in_again_ends_the_loop() -> None:
    peer = LoopPeer()
    peer.on("poll", error(401), error(401))
    with pytest.raises(SkypeApiException) as raised:
        peer.run(peer.event_loop())
    assert raised.value.status == 401
    assert peer.traffic() == [
        *["subscribe", "ping", "poll"],
        *RELOGIN,
        *REGISTER,
        *RESUBSCRIBE,
        "poll",
    ]


def test_recoveries_in_a_row_are_bounded() -> None:
    peer = LoopPeer()
    peer.on("poll", error(404), error(403), GONE, GONE, error(404))
    with pytest.raises(SkypeApiException) as raised:
        peer.run(peer.event_loop(LoopPolicy(max_recoveries=3)))
    assert raised.value.status == 404
    # 404 subscribe; 403 register; 729 (the session's register, then the loop's); 404 raises.
    assert peer.traffic() == [
        *["subscribe", "ping", "poll"],
        *RESUBSCRIBE,
        "poll",
        *REGISTER,
        *RESUBSCRIBE,
        "poll",
        *REGISTER,
        *RESUBSCRIBE,
        "poll",
        *REGISTER,
        *RESUBSCRIBE,
        "poll",
    ]
    assert peer.sleeps == []


def test_a_run_ended_by_a_404_subscribes_first_when_run_again() -> None:
    peer = LoopPeer()
    loop = peer.event_loop(LoopPolicy(max_recoveries=1))
    peer.on("poll", error(403), error(404))
    with pytest.raises(SkypeApiException):
        peer.run(loop)
    peer.journal.clear()
    peer.on("poll", events(1))
    peer.run(loop)
    # The server said the subscription is gone; the next run does not poll it blindly.
    assert peer.traffic() == [*RESUBSCRIBE, "poll", "ack 1", "poll"]


@pytest.mark.parametrize(
    "last", [error(403), GONE, error(404)], ids=["403", "729", "404 after 404"]
)
def test_a_run_ended_by_a_lost_endpoint_registers_first_when_run_again(last: Any) -> None:
    peer = LoopPeer()
    loop = peer.event_loop(LoopPolicy(max_recoveries=1))
    first = error(404) if last.status == 404 and last.json()["errorCode"] == 404 else error(403)
    peer.on("poll", first, *([GONE] if last is GONE else []), last)
    with pytest.raises(SkypeApiException):
        peer.run(loop)
    token = peer.reg_token
    peer.journal.clear()
    peer.on("poll", events(1))
    peer.run(loop)
    assert peer.traffic() == [*REGISTER, *RESUBSCRIBE, "poll", "ack 1", "poll"]
    assert peer.reg_token != token


def test_a_good_poll_resets_the_recovery_count() -> None:
    peer = LoopPeer()
    peer.on("poll", error(403), error(403), batch(), error(403), error(403), events(1))
    stats = peer.run(peer.event_loop(LoopPolicy(max_recoveries=2)))
    assert (stats.registrations, stats.delivered) == (4, 1)


def test_a_failed_registration_is_retried_after_backoff_instead_of_ending_the_loop() -> None:
    peer = LoopPeer()
    peer.on("poll", error(403), events(1))
    peer.on("register", TransportError("connection reset"), error(503))
    stats = peer.run(peer.event_loop(LoopPolicy(backoff_initial=1, backoff_max=8)))

    # The first backoff is shorter than the minimum poll interval: the rest of it is waited too,
    # since the failed registration began a cycle.
    assert peer.journal == [
        *["subscribe", "ping", "poll"],
        *["register", "sleep", "sleep", "register", "sleep"],
        *REGISTER,
        *RESUBSCRIBE,
        *["poll", "deliver 1", "ack 1", "poll"],
    ]
    assert 0.5 <= peer.sleeps[0] <= 1
    assert peer.sleeps[0] + peer.sleeps[1] == pytest.approx(1.0)
    assert 1 <= peer.sleeps[2] <= 2
    assert (stats.registrations, stats.failures) == (1, 2)


def test_a_redirect_to_an_untrusted_host_ends_the_loop_at_once() -> None:
    peer = LoopPeer()
    peer.emulator.scenario = Scenario(events=(), hold=0, foreign_location=True)
    peer.on("poll", error(403))
    with pytest.raises(UntrustedHostError):
        peer.run(peer.event_loop())
    assert peer.traffic() == ["subscribe", "ping", "poll", "register"]
    assert all("evil.example" not in request.url for request in peer.sent)
    assert peer.sleeps == []


def test_other_client_errors_end_the_loop() -> None:
    peer = LoopPeer()
    peer.on("poll", error(400))
    with pytest.raises(SkypeApiException) as raised:
        peer.run(peer.event_loop())
    assert raised.value.status == 400
    assert peer.sleeps == []


# -- the minimum poll interval ------------------------------------------------------------------


def test_polls_answered_at_once_are_spaced_by_the_minimum_interval() -> None:
    peer = LoopPeer(poll_seconds=0)
    peer.on("poll", *[batch()] * 9)
    stats = peer.run(peer.event_loop(LoopPolicy(min_poll_interval=2.5)))

    assert peer.journal == ["subscribe", "ping", "poll", *["sleep", "poll"] * 9]
    assert peer.sleeps == [2.5] * 9
    assert stats.polls == 10
    assert stats.slept == pytest.approx(22.5)
    poll_times = peer.times_of("poll")
    starts = [poll_times[i + 1] - poll_times[i] for i in range(9)]
    assert starts == [dt.timedelta(seconds=2.5)] * 9


def test_only_the_rest_of_the_interval_is_waited_after_a_slow_poll() -> None:
    peer = LoopPeer()
    peer.on("poll", Took(0.75, batch()), Took(3, batch()), Took(0, batch()))
    peer.run(peer.event_loop(LoopPolicy(min_poll_interval=2)))
    # 0.75 s poll: 1.25 s more; 3 s poll: none; a poll answered at once: the whole interval.
    assert peer.sleeps == [1.25, 2.0]
    assert peer.journal == ["subscribe", "ping", "poll", "sleep", "poll", "poll", "sleep", "poll"]


def test_the_minimum_interval_wait_stops_at_the_deadline() -> None:
    peer = LoopPeer(poll_seconds=0)
    peer.on("poll", batch(), batch())
    stats = peer.run(
        peer.event_loop(LoopPolicy(min_poll_interval=10)),
        deadline=T0 + dt.timedelta(seconds=4),
    )
    assert peer.journal == ["subscribe", "ping", "poll", "sleep"]
    assert peer.sleeps == [4.0]
    assert stats.polls == 1


def test_stop_during_the_minimum_interval_wait_sends_no_poll() -> None:
    peer = LoopPeer(poll_seconds=0)
    peer.on("poll", batch())
    loop = peer.event_loop(LoopPolicy(min_poll_interval=5))
    original = peer.sleep

    def sleep_then_stop(seconds: float) -> None:
        original(seconds)
        loop.stop()

    peer.sleep = sleep_then_stop  # type: ignore[method-assign]
    peer.run(loop)
    assert peer.journal == ["subscribe", "ping", "poll", "sleep"]


def test_a_short_lived_token_is_not_renewed_at_every_poll() -> None:
    # 60 s tokens: with a flat 5 minute leeway each poll logged in and registered again.
    peer = LoopPeer(
        Scenario(events=(), hold=0, token_lifetime=60, registration_lifetime=60), poll_seconds=0.25
    )
    peer.on("poll", *[batch()] * 100)
    stats = peer.run(peer.event_loop(LoopPolicy(min_poll_interval=0.25)), max_polls=100)
    assert stats.polls == 100
    assert peer.traffic() == ["subscribe", "ping", *["poll"] * 100]
    assert peer.sleeps == []


# -- the policy as data ---------------------------------------------------------------------------


CLASSIFIED = {
    "429": (error(429), Fault.RATE_LIMITED, Action.WAIT_OUT),
    "729": (GONE, Fault.ENDPOINT_GONE, Action.REREGISTER),
    "404": (error(404), Fault.NOT_FOUND, Action.RESUBSCRIBE),
    "403": (error(403), Fault.FORBIDDEN, Action.REREGISTER),
    "500": (error(500), Fault.SERVER_ERROR, Action.BACK_OFF),
    "599": (error(599), Fault.SERVER_ERROR, Action.BACK_OFF),
    "not JSON": (
        HttpResponse.build(200, content=b"<html>"),
        Fault.MALFORMED,
        Action.BACK_OFF,
    ),
    "transport": (TransportError("reset"), Fault.TRANSPORT, Action.BACK_OFF_BEFORE_DEADLINE),
    "timeout": (TransportTimeout("slow"), Fault.TRANSPORT, Action.BACK_OFF_BEFORE_DEADLINE),
    "untrusted": (
        UntrustedHostError("redirect to evil.example"),
        Fault.UNTRUSTED_HOST,
        Action.GIVE_UP,
    ),
    "400": (error(400), Fault.OTHER, Action.GIVE_UP),
    "401": (error(401), Fault.OTHER, Action.GIVE_UP),
}


def _raised(answer: Any) -> BaseException:
    if isinstance(answer, BaseException):
        return answer
    try:
        check_endpoint_status(answer, method="POST", url=f"{H}/poll")
        decode_events(answer.body)
    except (SkypeApiException, TransportError) as exc:
        return exc
    raise AssertionError("the answer raised nothing")


@pytest.mark.parametrize("case", list(CLASSIFIED.values()), ids=list(CLASSIFIED))
def test_each_failure_is_classified_once_and_its_action_looked_up(case: Any) -> None:
    answer, fault, action = case
    assert _classify(_raised(answer)) is fault
    assert FAULT_ACTIONS[fault] is action


def test_every_fault_has_an_action() -> None:
    assert set(FAULT_ACTIONS) == set(Fault)


# -- failures and backoff -----------------------------------------------------------------------

POLICY = LoopPolicy(backoff_initial=1, backoff_max=8, max_failures=5)


def caps(count: int, policy: LoopPolicy = POLICY) -> list[float]:
    return [min(policy.backoff_max, policy.backoff_initial * 2**n) for n in range(count)]


def assert_backoffs(sleeps: list[float], expected_caps: list[float]) -> None:
    assert len(sleeps) == len(expected_caps)
    for slept, cap in zip(sleeps, expected_caps, strict=True):
        assert cap / 2 <= slept <= cap


FAILURES = {
    "500": error(500),
    "502": error(502),
    "503": error(503),
    "transport": TransportError("connection refused"),
    "timeout": TransportTimeout("read timed out"),
    "429 without Retry-After": error(429),
    "429 with an HTTP-date Retry-After": error(
        429, headers=[("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")]
    ),
    "not JSON": HttpResponse.build(200, content=b"<html>oops</html>"),
    "half a JSON document": HttpResponse.build(200, content=b'{"eventMessages": [{"id"'),
    "eventMessages not a list": HttpResponse.build(200, json={"eventMessages": 5}),
    "a JSON array": HttpResponse.build(200, json=[1, 2]),
}


@pytest.mark.parametrize("failure", list(FAILURES.values()), ids=list(FAILURES))
def test_failures_back_off_exponentially_and_a_good_poll_resets_the_backoff(failure: Any) -> None:
    peer = LoopPeer()
    peer.on("poll", *[failure] * 5, events(1), failure)
    stats = peer.run(peer.event_loop(POLICY))

    assert_backoffs(peer.sleeps, [*caps(5), 1])
    assert peer.journal == [
        *["subscribe", "ping"],
        *["poll", "sleep"] * 5,
        *["poll", "deliver 1", "ack 1"],
        *["poll", "sleep", "poll"],
    ]
    assert stats.failures == 6
    assert stats.slept == pytest.approx(sum(peer.sleeps))


@pytest.mark.parametrize("failure", list(FAILURES.values()), ids=list(FAILURES))
def test_failures_past_max_failures_end_the_loop_with_the_last_one(failure: Any) -> None:
    peer = LoopPeer()
    peer.on("poll", *[failure] * 6)
    with pytest.raises((SkypeApiException, TransportError)) as raised:
        peer.run(peer.event_loop(POLICY))
    assert_backoffs(peer.sleeps, caps(5))
    assert peer.journal == ["subscribe", "ping", *["poll", "sleep"] * 5, "poll"]
    if isinstance(failure, BaseException):
        assert raised.value is failure
    elif failure.status == 429:
        assert isinstance(raised.value, SkypeRateLimitException)
    elif failure.status >= 500:
        assert isinstance(raised.value, SkypeApiException)
        assert raised.value.status == failure.status
    else:
        assert isinstance(raised.value, RemoteProtocolError)


def test_backoff_grows_to_its_cap_and_stays_there() -> None:
    policy = LoopPolicy(backoff_initial=0.5, backoff_max=10, max_failures=8)
    peer = LoopPeer()
    peer.on("poll", *[error(503)] * 8)
    peer.on("poll", events(1))
    peer.run(peer.event_loop(policy))
    assert_backoffs(peer.sleeps, [0.5, 1, 2, 4, 8, 10, 10, 10])


def test_retry_after_is_slept_exactly() -> None:
    peer = LoopPeer()
    peer.on("poll", error(429, headers=[("Retry-After", "7")]), events(1))
    stats = peer.run(peer.event_loop())
    assert peer.sleeps == [7.0]
    assert peer.journal == [
        "subscribe",
        "ping",
        "poll",
        "sleep",
        "poll",
        "deliver 1",
        "ack 1",
        "poll",
    ]
    assert (stats.rate_limited, stats.failures, stats.slept) == (1, 1, 7.0)


def test_retry_after_at_the_limit_is_waited_and_beyond_it_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = LoopPolicy(max_retry_after=30)
    peer = LoopPeer()
    peer.on("poll", error(429, headers=[("Retry-After", "30")]))
    peer.run(peer.event_loop(policy))
    assert peer.sleeps == [30.0]

    caplog.clear()
    peer = LoopPeer()
    peer.on("poll", error(429, headers=[("Retry-After", "31")]))
    loop = peer.event_loop(policy)
    with (
        caplog.at_level(logging.WARNING, logger="skyproto"),
        pytest.raises(SkypeRateLimitException) as raised,
    ):
        peer.run(loop)
    assert raised.value.retry_after == 31.0
    assert peer.sleeps == []
    assert peer.traffic() == ["subscribe", "ping", "poll"]
    # Ended, not failed: no "poll failed" warning, no failure counted.
    assert "poll failed" not in caplog.text
    assert (loop.stats.rate_limited, loop.stats.failures) == (1, 0)


def test_rate_limits_count_as_failures() -> None:
    peer = LoopPeer()
    peer.on("poll", *[error(429, headers=[("Retry-After", "1")])] * 2, error(500), error(500))
    with pytest.raises(SkypeApiException) as raised:
        peer.run(peer.event_loop(LoopPolicy(max_failures=3)))
    assert raised.value.status == 500
    assert peer.sleeps[:2] == [1.0, 1.0]
    assert 2 <= peer.sleeps[2] <= 4


def test_failures_and_recoveries_count_separately() -> None:
    peer = LoopPeer()
    peer.on("poll", error(500), error(404), error(500), error(404), events(1))
    stats = peer.run(peer.event_loop(LoopPolicy(max_failures=2, max_recoveries=2)))
    assert stats.delivered == 1
    # The second 500 is the second failure in a row (a recovery does not reset failures).
    assert_backoffs(peer.sleeps, [1, 2])


def test_a_failing_ping_backs_off_and_is_tried_again() -> None:
    peer = LoopPeer()
    peer.on("ping", error(503))
    peer.on("poll", events(1))
    stats = peer.run(peer.event_loop(POLICY))
    # The backoff (at most 1 s) and the rest of the minimum poll interval.
    assert peer.journal == [
        *["subscribe", "ping", "sleep", "sleep", "ping", "poll", "deliver 1", "ack 1", "poll"]
    ]
    assert sum(peer.sleeps) == pytest.approx(POLICY.min_poll_interval)
    assert stats.pings == 1


def test_same_seed_same_delays_other_seed_other_delays() -> None:
    def delays(seed: int) -> list[float]:
        peer = LoopPeer()
        peer.on("poll", *[error(503)] * 5, TransportError("reset"), error(429))
        peer.run(peer.event_loop(LoopPolicy(max_failures=7), seed=seed))
        return peer.sleeps

    first = delays(42)
    assert len(first) == 7
    assert delays(42) == first
    assert delays(43) != first


# -- keep-alive ---------------------------------------------------------------------------------


def test_ping_at_the_start_and_whenever_the_interval_has_passed() -> None:
    peer = LoopPeer()
    peer.on("poll", *[Took(25, batch())] * 7)
    stats = peer.run(peer.event_loop(LoopPolicy(ping_interval=60)))
    assert peer.traffic() == [
        *["subscribe", "ping", "poll", "poll", "poll"],
        *["ping", "poll", "poll", "poll"],
        *["ping", "poll", "poll"],
    ]
    assert stats.pings == 3


def test_ping_exactly_at_the_interval() -> None:
    peer = LoopPeer()
    peer.on("poll", Took(60, batch()), Took(59, batch()))
    peer.run(peer.event_loop(LoopPolicy(ping_interval=60, ping_timeout=30)))
    assert peer.traffic() == ["subscribe", "ping", "poll", "ping", "poll", "poll"]
    assert [p.body for p in peer.sent_to("ping")] == [b'{"timeout": 30}'] * 2


def test_without_ping_on_subscribe_the_first_ping_waits_an_interval_from_each_subscription() -> (
    None
):
    peer = LoopPeer()
    peer.on("poll", *[Took(25, batch())] * 4, error(404), *[Took(25, batch())] * 3)
    policy = LoopPolicy(ping_interval=60, ping_on_subscribe=False)
    stats = peer.run(peer.event_loop(policy))
    assert peer.traffic() == [
        *["subscribe", "poll", "poll", "poll"],
        *["ping", "poll", "poll"],  # 75 s after the subscription
        *["subscribe", "poll", "poll", "poll"],  # the 404 asked for a new one
        *["ping", "poll"],
    ]
    assert stats.pings == 2


def test_ping_on_subscribe_is_a_bool() -> None:
    with pytest.raises(LocalProtocolError, match="ping_on_subscribe must be True or False"):
        LoopPolicy(ping_on_subscribe=1)  # type: ignore[arg-type]


def test_sleeping_counts_towards_the_ping_interval() -> None:
    peer = LoopPeer()
    peer.on("poll", error(429, headers=[("Retry-After", "61")]), batch())
    peer.run(peer.event_loop(LoopPolicy(ping_interval=60)))
    assert peer.journal == ["subscribe", "ping", "poll", "sleep", "ping", "poll", "poll"]


def test_an_expiring_registration_is_renewed_and_subscribed_before_the_next_poll() -> None:
    peer = LoopPeer()
    token = peer.reg_token
    # 24 h of long polls later the registration token is within the refresh leeway.
    peer.on("poll", Took(86400 - 200, batch()), events(1))
    stats = peer.run(peer.event_loop())
    assert peer.traffic() == [
        *["subscribe", "ping", "poll"],
        *RELOGIN,  # the Skype token has the same lifetime
        *REGISTER,
        *RESUBSCRIBE,
        *["poll", "ack 1", "poll"],
    ]
    assert peer.reg_token != token
    assert stats.registrations == 0  # the session's own renewal, not a recovery


# -- run_async ----------------------------------------------------------------------------------


async def test_run_async_awaits_an_async_handler_before_acking() -> None:
    peer = LoopPeer()
    driver = AsyncPeer(peer)
    peer.on("poll", events(1, 2), events(2, 3))

    async def handler(event: Event) -> None:
        peer.journal.append(f"start {event.id}")
        await asyncio.sleep(0)
        peer.handler(event)

    stats = await driver.run(peer.event_loop(handler=handler))
    assert peer.journal == [
        *["subscribe", "ping", "poll"],
        *["start 1", "deliver 1", "ack 1", "start 2", "deliver 2", "ack 2"],
        *["poll", "ack 2", "start 3", "deliver 3", "ack 3"],
        "poll",
    ]
    assert (stats.delivered, stats.duplicates, stats.acks) == (3, 1, 4)


async def test_run_async_takes_a_plain_handler_and_backs_off_with_the_async_sleeper() -> None:
    peer = LoopPeer()
    peer.on("poll", error(503), events(1))
    stats = await AsyncPeer(peer).run(peer.event_loop(POLICY))
    assert peer.journal == [
        *["subscribe", "ping", "poll", "sleep", "poll", "deliver 1", "ack 1", "poll"]
    ]
    assert stats.delivered == 1


async def test_cancelling_while_the_handler_awaits_neither_acks_nor_remembers_the_event() -> None:
    peer = LoopPeer()
    driver = AsyncPeer(peer)
    peer.on("poll", events(1, 2, 3))
    entered = asyncio.Event()
    never = asyncio.Event()

    async def blocking(event: Event) -> None:
        peer.journal.append(f"start {event.id}")
        if event.id == 2:
            entered.set()
            await never.wait()
        peer.handler(event)

    loop = peer.event_loop(handler=blocking)
    task = asyncio.ensure_future(driver.run(loop))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert peer.journal == [
        *["subscribe", "ping", "poll"],
        *["start 1", "deliver 1", "ack 1", "start 2"],
    ]
    assert (loop.seen(1), loop.seen(2), loop.seen(3)) == (True, False, False)

    # A fresh run gets the unacknowledged events again and delivers each once.
    peer.journal.clear()
    peer.on("poll", events(1, 2, 3))
    loop.handler = peer.handler
    stats = await driver.run(loop)
    assert peer.journal == ["poll", "ack 1", "deliver 2", "ack 2", "deliver 3", "ack 3", "poll"]
    assert peer.ids() == [1, 2, 3]
    assert (stats.delivered, stats.duplicates) == (3, 1)


async def test_cancelling_during_a_poll_loses_nothing() -> None:
    peer = LoopPeer()
    gate = asyncio.Event()

    class Held(AsyncPeer):
        async def send(self, request: HttpRequest) -> HttpResponse:
            if self.peer.emulator.route(request) == "poll" and not gate.is_set():
                gate.set()
                await asyncio.Event().wait()
            return await super().send(request)

    driver = Held(peer)
    loop = peer.event_loop()
    task = asyncio.ensure_future(driver.run(loop))
    await asyncio.wait_for(gate.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    peer.on("poll", events(1))
    await driver.run(loop)
    # The cancelled poll began no time ago, so the next one waits the minimum poll interval.
    assert peer.journal == ["subscribe", "ping", "sleep", "poll", "deliver 1", "ack 1", "poll"]


def test_run_sync_refuses_an_async_handler() -> None:
    peer = LoopPeer()
    peer.on("poll", events(1))

    async def handler(event: Event) -> None:
        return None

    loop = peer.event_loop(handler=handler)
    with pytest.raises(LocalProtocolError):
        peer.run(loop)
    assert not loop.seen(1)
    assert "ack 1" not in peer.journal


# -- the policy and the backoff function --------------------------------------------------------


def test_policy_defaults() -> None:
    policy = LoopPolicy()
    assert attrs.asdict(policy) == {
        "hold": 30.0,
        "ping_interval": 60.0,
        "ping_timeout": 12,
        "ping_on_subscribe": True,
        "backoff_initial": 1.0,
        "backoff_max": 60.0,
        "max_failures": 8,
        "max_recoveries": 3,
        "max_retry_after": 600.0,
        "dedupe_window": 10_000,
        "min_poll_interval": 1.0,
    }


@pytest.mark.parametrize(
    "field",
    [
        "hold",
        "ping_interval",
        "backoff_initial",
        "backoff_max",
        "max_retry_after",
        "min_poll_interval",
    ],
)
@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), True, "5", None])
def test_policy_refuses_bad_durations(field: str, value: Any) -> None:
    with pytest.raises(LocalProtocolError, match=field):
        LoopPolicy(**{field: value})


@pytest.mark.parametrize(
    "field", ["ping_timeout", "max_failures", "max_recoveries", "dedupe_window"]
)
@pytest.mark.parametrize("value", [0, -3, 1.5, True, "2"])
def test_policy_refuses_bad_counts(field: str, value: Any) -> None:
    with pytest.raises(LocalProtocolError, match=field):
        LoopPolicy(**{field: value})


def test_backoff_delay_bounds() -> None:
    policy = LoopPolicy(backoff_initial=1.5, backoff_max=20)
    rng = random.Random(3)
    for failures, cap in [(1, 1.5), (2, 3), (3, 6), (4, 12), (5, 20), (6, 20), (10_000, 20)]:
        for _ in range(50):
            assert cap / 2 <= backoff_delay(failures, policy, rng) <= cap

    class Extremes(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def random(self) -> float:
            return self.value

    assert backoff_delay(3, policy, Extremes(0.0)) == 3.0
    assert backoff_delay(3, policy, Extremes(0.5)) == 4.5
    with pytest.raises(LocalProtocolError):
        backoff_delay(0, policy, rng)


def test_repr_shows_no_secret() -> None:
    peer = LoopPeer()
    loop = peer.event_loop()
    peer.on("poll", events(1))
    peer.run(loop)
    shown = repr(loop)
    assert shown.startswith("EventLoop(Session(user_id='live:fred'")
    assert peer.reg_token not in shown
    skype_token = peer.session.state.skype_token
    assert skype_token is not None
    assert skype_token.token not in shown


def test_the_session_policy_classes_are_the_ones_raised() -> None:
    # The 729 answer really is an EndpointGoneError, so the tests above exercise that branch.
    from skyproto.endpoint import check_endpoint_status

    with pytest.raises(EndpointGoneError):
        check_endpoint_status(GONE, method="POST", url=f"{H}/x")
