"""The shared test peer, ``skyproto.emulator.testing``: what every flow test relies on."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skyproto import (
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    Now,
    Stepper,
    TransportError,
)
from skyproto._flow import Flow, deliver, now, request, shared, sleep
from skyproto.emulator import Emulator
from skyproto.emulator.testing import T0, Peer, Took, drive

PING = "https://client-s.gateway.messenger.live.com/v1/users/ME/endpoints/SELF/active"
OTHER = "https://api.skype.com/test/echo"


def post(url: str) -> HttpRequest:
    return HttpRequest("POST", url)


def statuses(*urls: str) -> Flow[list[int]]:
    found = []
    for url in urls:
        response = yield from request(post(url))
        found.append(response.status)
    return found


def test_answers_come_from_the_script_then_the_route_queue_then_standing_then_emulator() -> None:
    peer = Peer(Emulator(), answers=[HttpResponse(500)])
    peer.on("ping", HttpResponse(401))
    peer.on(OTHER, HttpResponse(202))
    peer.always(OTHER, HttpResponse(204))
    result = peer.run(statuses(PING, PING, OTHER, OTHER, PING))
    assert result[:4] == [500, 401, 202, 204]
    assert result[4] == peer.answers[4].status  # the emulator's own answer
    assert peer.routes == ["ping", "ping", "?", "?", "ping"]
    assert [r.url for r in peer.sent] == [PING, PING, OTHER, OTHER, PING]
    assert [a.url for a in peer.answers] == [PING, PING, OTHER, OTHER, PING]


def test_callable_and_took_answers_move_the_fake_clock() -> None:
    peer = Peer(durations={"?": 2.0})
    peer.always(OTHER, lambda req: Took(10, HttpResponse(200, url="ignored")))
    peer.run(statuses(OTHER))
    assert peer.clock() == T0 + dt.timedelta(seconds=10)
    peer.always(OTHER, HttpResponse(200))
    peer.run(statuses(OTHER))
    assert peer.clock() == T0 + dt.timedelta(seconds=12)
    assert peer.times == [T0, T0 + dt.timedelta(seconds=10)]


def test_a_request_nobody_answers_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="unexpected request"):
        Peer().run(statuses(OTHER))


def test_a_transport_error_reaches_the_flow_other_exceptions_the_test() -> None:
    def caught() -> Flow[str]:
        try:
            yield from request(post(OTHER))
        except TransportError as exc:
            return str(exc)
        return "no error"

    assert Peer(answers=[TransportError("reset")]).run(caught()) == "reset"
    with pytest.raises(RuntimeError, match="boom"):
        Peer(answers=[RuntimeError("boom")]).run(caught())


def test_now_sleep_shared_and_deliver() -> None:
    got: list[Any] = []

    def inner() -> Flow[dt.datetime]:
        return (yield from now())

    def flow() -> Flow[Any]:
        first = yield from now()
        yield from sleep(30)
        later = yield from shared(got, "k", inner)
        yield from deliver("event", got.append)
        return first, later

    peer = Peer(times=[T0 - dt.timedelta(days=1)])
    assert peer.run(flow()) == (T0 - dt.timedelta(days=1), T0 + dt.timedelta(seconds=30))
    assert peer.sleeps == [30]
    assert got == ["event"]
    assert peer.journal == ["sleep"]


def test_an_assertion_in_a_handler_fails_the_test_instead_of_reaching_the_flow() -> None:
    def handler(event: object) -> None:
        raise AssertionError("the test failed")

    def flow() -> Flow[str]:
        try:
            yield from deliver("event", handler)
        except AssertionError:
            return "swallowed"
        return "delivered"

    with pytest.raises(AssertionError, match="the test failed"):
        Peer().run(flow())


def test_an_async_handler_is_refused() -> None:
    async def handler(event: object) -> None:
        return None

    with pytest.raises(LocalProtocolError, match="sync handler"):
        Peer().run(deliver("event", handler))


def test_advance_stops_at_the_chosen_effect() -> None:
    peer = Peer(answers=[HttpResponse(200)])
    step = Stepper(statuses(OTHER, PING))
    peer.advance(step, lambda effect: isinstance(effect, HttpRequest) and effect.url == PING)
    assert isinstance(step.pending, HttpRequest)
    assert step.pending.url == PING
    step.receive(HttpResponse(201))
    assert step.result == [200, 201]


def test_a_flow_that_never_ends_is_stopped() -> None:
    def forever() -> Flow[None]:
        while True:
            yield Now()

    with pytest.raises(AssertionError, match="did not finish within 50 effects"):
        Peer().run(forever(), limit=50)


def test_drive_needs_every_answer_used_and_keeps_the_requests() -> None:
    assert drive(statuses(OTHER), [HttpResponse(204)]) == [204]
    with pytest.raises(AssertionError, match="1 answer"):
        drive(statuses(OTHER), [HttpResponse(204), HttpResponse(204)])
    sent: list[HttpRequest] = []
    with pytest.raises(RuntimeError):
        drive(statuses(OTHER, PING), [HttpResponse(204), RuntimeError("x")], sent=sent)
    assert [r.url for r in sent] == [OTHER, PING]


def test_the_journal_names_acks_and_deliveries() -> None:
    peer = Peer(Emulator())
    peer.always("ack", HttpResponse(201))
    ack = (
        "https://client-s.gateway.messenger.live.com/v1/users/ME/conversations/ALL/messages/77/ack"
    )
    peer.run(statuses(ack))
    peer.handler(type("Event", (), {"id": 77})())
    assert peer.journal == ["ack 77", "deliver 77"]
    assert peer.traffic() == ["ack 77"]
    assert peer.sent_to("ack") == peer.sent
    peer.clear()
    assert (peer.sent, peer.journal, peer.delivered) == ([], [], [])
