"""The Trouter client flow against the pure peer, in memory, on a virtual clock."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Sequence
from typing import Any

import pytest

from skyproto import (
    Event,
    Hosts,
    HttpRequest,
    HttpResponse,
    NewMessageEvent,
    Now,
    RemoteProtocolError,
    SkypeApiException,
    SkypeAuthException,
    Stepper,
    UnknownEvent,
    UntrustedHostError,
)
from skyproto._flow import Flow, OpenStream, request
from skyproto.calls import build_request
from skyproto.emulator.trouter import PeerDriver, TrouterPeer
from skyproto.events import decode_events
from skyproto.trouter.client import (
    TrouterClient,
    TrouterPolicy,
    TrouterSession,
    parse_session,
    registration_body,
)

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
TOKEN = "skypetoken-secret"
EPID = "0f1e2d3c-aaaa-bbbb-cccc-000000000001"


def backlog() -> Flow[Sequence[Event]]:
    """The catch-up the tests give: the peer's backlog (a REST listing stands in here)."""
    response = yield from request(build_request("GET", "https://go.trouter.skype.com/backlog"))
    return decode_events(response.body)


class Setup:
    def __init__(self, peer: TrouterPeer | None = None, **kwargs: Any) -> None:
        self.peer = peer or TrouterPeer()
        self.delivered: list[Event] = []
        self.order: list[tuple[str, Any]] = []
        kwargs.setdefault("catch_up", backlog)
        self.client = TrouterClient(
            TOKEN, EPID, self.handle, hosts=Hosts(), rng=random.Random(7), **kwargs
        )
        self.driver = PeerDriver(self.client.run(), self.peer, T0)

    def handle(self, event: Event) -> None:
        self.delivered.append(event)
        answered = [entry.detail for entry in self.peer.log if entry.what == "response"]
        self.order.append(("deliver", len(answered)))

    def messages(self) -> list[str | None]:
        return [e.message.content for e in self.delivered if isinstance(e, NewMessageEvent)]

    def log(self, what: str) -> list[Any]:
        return [entry for entry in self.peer.log if entry.what == what]


def test_the_sequence_on_the_wire() -> None:
    sent: list[HttpRequest] = []
    peer = TrouterPeer()

    def record(req: HttpRequest, now: dt.datetime) -> HttpResponse | None:
        sent.append(req)
        return None

    client = TrouterClient(TOKEN, EPID, lambda e: None, hosts=Hosts(), rng=random.Random(1))
    driver = PeerDriver(client.run(), peer, T0, other=record)
    driver.settle()
    allocate, handshake, register = sent
    assert (allocate.method, allocate.url) == (
        "POST",
        f"https://go.trouter.skype.com/v4/a?epid={EPID}",
    )
    assert allocate.header("X-Skypetoken") == TOKEN
    assert allocate.body == b""
    query = dict(handshake.query())
    assert handshake.url.startswith("https://go.trouter.skype.com/socket.io/1/?v=v4&sr=")
    assert query["epid"] == EPID
    assert (query["auth"], query["timeout"], query["issuer"], query["sp"]) == (
        "true",
        "40",
        "prod-2",
        "connect",
    )
    assert query["con_num"] == f"{int(T0.timestamp() * 1000)}_1"
    assert json.loads(query["tc"])["ua"] == "TeamsCDL"
    assert handshake.header("X-Skypetoken") == TOKEN
    assert register.url == "https://edge.skype.com/registrar/prod/v2/registrations"
    body = register.json()
    assert body["registrationId"] == EPID
    assert body["clientDescription"]["templateKey"] == "TeamsCDLWebWorker_2.6"
    assert body["clientDescription"]["productContext"] == "TFL"
    assert body["transports"]["TROUTER"][0]["path"].endswith("/v4/f/s000001/")
    assert [e.what for e in peer.log[:3]] == ["connect", "register", "event"]
    assert peer.log[3].detail[0]["state"] == "active"
    assert client.stats.connections == 1


def test_every_push_is_answered_before_it_is_delivered() -> None:
    setup = Setup()
    setup.driver.settle()
    for n in range(3):
        setup.peer.push(f"m{n}", now=setup.driver.now)
    setup.driver.settle()
    assert setup.messages() == ["m0", "m1", "m2"]
    assert setup.order == [("deliver", 1), ("deliver", 2), ("deliver", 3)]
    assert setup.client.stats.responses == 3


def test_events_are_acknowledged_and_pings_keep_time() -> None:
    setup = Setup()
    setup.driver.settle()
    assert [entry.detail for entry in setup.log("ack")] == [1]  # trouter.connected, 6:::1+[]
    setup.driver.advance(95)
    pings = [entry.when for entry in setup.log("ping")]
    assert pings == [T0 + dt.timedelta(seconds=30 * n) for n in (1, 2, 3)]
    assert setup.client.stats.acks == 1  # trouter.connected
    assert setup.client.stats.failures == 0


def test_a_ping_left_unanswered_ends_the_connection() -> None:
    setup = Setup(policy=TrouterPolicy(pong_timeout=20))
    setup.driver.settle()
    original = setup.peer._on_text

    def deaf(sock: Any, text: str, now: dt.datetime) -> None:
        if "ping" not in text:
            original(sock, text, now)

    setup.peer._on_text = deaf  # type: ignore[method-assign]
    setup.driver.advance(55)
    assert setup.client.stats.failures == 1
    assert setup.client.stats.connections == 2


def test_other_pushes_are_unknown_events_with_the_decoded_payload() -> None:
    setup = Setup(peer=TrouterPeer(gzip_bodies=True))
    setup.driver.settle()
    presence = {"presence": [{"mri": "8:live:bob", "presence": {"availability": "Away"}}]}
    setup.peer.push_raw("TeamsUnifiedPresenceService", presence, now=setup.driver.now)
    setup.peer.push("zipped", now=setup.driver.now)
    setup.driver.settle()
    unknown, message = setup.delivered
    assert isinstance(unknown, UnknownEvent)
    assert unknown.raw == presence
    assert unknown.resource_type == "TeamsUnifiedPresenceService"
    assert isinstance(message, NewMessageEvent)
    assert message.message.content == "zipped"


def test_a_drop_reconnects_catches_up_and_delivers_nothing_twice() -> None:
    setup = Setup()
    setup.driver.settle()
    setup.peer.push("before", now=setup.driver.now)
    setup.driver.settle()
    setup.peer.drop(setup.driver.now)
    setup.peer.push("during the gap", now=setup.driver.now)
    setup.driver.advance(3)
    setup.peer.push("after", now=setup.driver.now)
    setup.driver.settle()
    assert setup.messages() == ["before", "during the gap", "after"]
    stats = setup.client.stats
    assert (stats.connections, stats.catch_ups, stats.duplicates) == (2, 1, 1)
    assert 0.5 <= stats.slept <= 1.0


def test_session_expiry_reconnects_before_the_ttl_lapses() -> None:
    setup = Setup(peer=TrouterPeer(ttl=600))
    setup.driver.settle()
    setup.driver.advance(600)
    connects = [entry.when for entry in setup.log("connect")]
    assert connects == [T0, T0 + dt.timedelta(seconds=540)]
    assert setup.client.stats.failures == 0


def test_the_registration_is_renewed_before_it_lapses() -> None:
    setup = Setup(policy=TrouterPolicy(registration_ttl=120, renew_leeway=10))
    setup.driver.settle()
    setup.driver.advance(250)
    registered = [entry.when for entry in setup.log("register")]
    assert registered == [T0 + dt.timedelta(seconds=s) for s in (0, 110, 220)]


def test_message_loss_registers_again_and_catches_up() -> None:
    setup = Setup()
    setup.driver.settle()
    setup.peer.push("one", now=setup.driver.now)
    setup.driver.settle()
    setup.peer.report_loss(setup.driver.now)
    setup.driver.settle()
    assert setup.client.stats.losses == 1
    assert setup.client.stats.catch_ups == 1
    assert len(setup.log("register")) == 2
    assert setup.messages() == ["one"]


def test_an_unanswered_push_is_redelivered_once() -> None:
    setup = Setup()
    setup.driver.settle()
    original = setup.peer._on_text
    drop_answers = [True]

    def lossy(sock: Any, text: str, now: dt.datetime) -> None:
        if text.startswith("3:::") and drop_answers[0]:
            drop_answers[0] = False
            return
        original(sock, text, now)

    setup.peer._on_text = lossy  # type: ignore[method-assign]
    setup.peer.push("slow", now=setup.driver.now)
    setup.driver.advance(11)  # past the peer's ack timeout: it pushes again
    assert setup.messages() == ["slow"]
    assert setup.client.stats.duplicates == 1


def test_a_401_renews_the_token_once() -> None:
    renewed: list[str] = []

    def renew() -> Flow[str]:
        renewed.append("fresh")
        return "fresh-token"
        yield  # a flow

    setup = Setup(renew_token=renew)
    setup.peer.revoke(TOKEN)
    setup.driver.settle()
    assert renewed == ["fresh"]
    assert setup.client.stats.connections == 1
    assert setup.client.stats.token_renewals == 1

    again = Setup(renew_token=lambda: _constant("still-bad"))
    again.peer.revoke(TOKEN)
    again.peer.revoke("still-bad")
    with pytest.raises(SkypeAuthException) as info:
        again.driver.settle()
    assert TOKEN not in repr(info.value)

    none = Setup()
    none.peer.revoke(TOKEN)
    with pytest.raises(SkypeAuthException):
        none.driver.settle()


def _constant(token: str) -> Flow[str]:
    return token
    yield


def _allocation(**changes: Any) -> HttpResponse:
    body = {
        "socketio": "https://trouter2-asse.trouter.teams.microsoft.com:443/",
        "surl": "https://trouter2-asse.trouter.teams.microsoft.com:3443/v4/f/abc/",
        "ttl": "585731",
        "connectparams": {"sr": "abc", "se": 1, "sig": "s"},
        **changes,
    }
    return HttpResponse.build(200, json=body)


def until(step: Stepper[Any], kind: type) -> Any:
    """Answer the clock and sleeps until ``step`` waits on an effect of ``kind``."""
    while not isinstance(step.pending, kind):
        step.send(T0 if isinstance(step.pending, Now) else None)
    return step.pending


def test_server_chosen_urls_must_be_trusted_before_anything_goes_there() -> None:
    for field in ("socketio", "surl"):
        client = TrouterClient(TOKEN, EPID, lambda e: None, hosts=Hosts(), rng=random.Random(1))
        step = Stepper(client.run())
        until(step, HttpRequest)
        step.receive(_allocation(**{field: "https://evil.example/"}))  # then the status check
        with pytest.raises(UntrustedHostError):
            until(step, HttpRequest)
    client = TrouterClient(TOKEN, EPID, lambda e: None, hosts=Hosts(), rng=random.Random(1))
    step = Stepper(client.run())
    until(step, HttpRequest)
    step.receive(_allocation())
    assert until(step, HttpRequest).url.startswith(
        "https://trouter2-asse.trouter.teams.microsoft.com:443/socket.io/1/?v=v4&sr=abc&se=1&sig=s"
    )
    step.receive(HttpResponse.build(200, content="sid-1:180:180:websocket,xhr-polling"))
    assert until(step, OpenStream).url.startswith(
        "https://trouter2-asse.trouter.teams.microsoft.com:443/socket.io/1/websocket/sid-1?v=v4"
    )


@pytest.mark.parametrize("option", ["session_url", "registrar_url"])
def test_a_configured_session_or_registrar_url_must_be_trusted_too(option: str) -> None:
    sent: list[HttpRequest] = []

    def record(req: HttpRequest, now: dt.datetime) -> HttpResponse | None:
        sent.append(req)
        return None

    evil = {"session_url": "https://evil.example/v4/a", "registrar_url": "https://evil.example/r"}
    client = TrouterClient(
        TOKEN, EPID, lambda e: None, hosts=Hosts(), rng=random.Random(1), **{option: evil[option]}
    )
    driver = PeerDriver(client.run(), TrouterPeer(), T0, other=record)
    with pytest.raises(UntrustedHostError):
        driver.settle()
    assert all("evil.example" not in req.url for req in sent)


@pytest.mark.parametrize(
    "body",
    [
        {"socketio": "https://a.skype.com/"},
        {"socketio": 1, "surl": "x", "ttl": "1"},
        {"socketio": "https://a.skype.com/", "surl": "x", "ttl": 1.5},
        {"socketio": "https://a.skype.com/", "surl": "x", "ttl": "-1"},
        {"socketio": "https://a.skype.com/", "surl": "x", "ttl": "\u00b2"},  # a digit int() refuses
        {"socketio": "https://a.skype.com/", "surl": "x", "ttl": "1", "connectparams": []},
        {"socketio": "https://a.skype.com/", "surl": "x", "ttl": "1", "connectparams": {"a": []}},
    ],
)
def test_malformed_session_answers_are_remote_errors(body: Any) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_session(HttpResponse.build(200, json=body))
    with pytest.raises(RemoteProtocolError):
        parse_session(HttpResponse.build(200, content="<html>"))


def test_session_values_hide_the_signature() -> None:
    session = parse_session(_allocation())
    assert session == TrouterSession(
        "https://trouter2-asse.trouter.teams.microsoft.com:443/",
        "https://trouter2-asse.trouter.teams.microsoft.com:3443/v4/f/abc/",
        585731,
        (("sr", "abc"), ("se", "1"), ("sig", "s")),
    )
    assert "sig" not in repr(session)
    assert registration_body("e", "https://s/", 60)["transports"]["TROUTER"][0]["ttl"] == 60


def test_a_bad_handshake_answer_backs_off_and_retries() -> None:
    client = TrouterClient(TOKEN, EPID, lambda e: None, hosts=Hosts(), rng=random.Random(1))
    step = Stepper(client.run())
    until(step, HttpRequest)
    step.receive(_allocation())
    until(step, HttpRequest)
    step.receive(HttpResponse.build(200, content="::"))
    assert until(step, HttpRequest).url.startswith("https://go.trouter.skype.com/v4/a")
    assert client.stats.failures == 1
    assert step.pending.url.startswith("https://go.trouter.skype.com/v4/a")


def test_backoff_grows_within_bounds_and_gives_up_after_max_failures() -> None:
    peer = TrouterPeer()
    refusals = [0]

    def unavailable(req: HttpRequest, now: dt.datetime) -> HttpResponse | None:
        if req.path.endswith("/v4/a"):
            refusals[0] += 1
            return HttpResponse.build(503, json={"message": "busy"})
        return None

    policy = TrouterPolicy(backoff_initial=1, backoff_max=8, max_failures=6)
    slept: list[float] = []

    def run_once(seed: int) -> list[float]:
        client = TrouterClient(
            TOKEN, EPID, lambda e: None, hosts=Hosts(), rng=random.Random(seed), policy=policy
        )
        driver = PeerDriver(client.run(), peer, T0, other=unavailable)
        start = driver.now
        with pytest.raises(SkypeApiException) as info:
            driver.run_until_done()
        assert info.value.status == 503
        assert client.stats.failures == 7
        return [client.stats.slept, (driver.now - start).total_seconds()]

    first = run_once(3)
    assert first == run_once(3)  # the same seed, the same waits
    assert refusals[0] == 14
    caps = [1, 2, 4, 8, 8, 8]
    assert sum(c / 2 for c in caps) <= first[0] <= sum(caps)
    assert first[0] == pytest.approx(first[1])
    del slept


def test_a_stable_connection_resets_the_failure_count() -> None:
    setup = Setup(policy=TrouterPolicy(max_failures=1, stable_after=60))
    setup.driver.settle()
    for _ in range(3):
        setup.driver.advance(61)
        setup.peer.drop(setup.driver.now)
        setup.driver.advance(2)
    assert setup.client.stats.connections == 4
    assert setup.client.stats.failures == 3
    setup.peer.drop(setup.driver.now)  # at once: not stable, a second failure in a row
    with pytest.raises(RemoteProtocolError, match="socket closed"):
        setup.driver.advance(2)


def test_the_connect_signature_is_never_shown() -> None:
    from skyproto._http import describe, redact_url

    client = TrouterClient(TOKEN, EPID, lambda e: None, hosts=Hosts(), rng=random.Random(1))
    step = Stepper(client.run())
    until(step, HttpRequest)
    step.receive(_allocation(connectparams={"sr": "abc", "sig": "SECRET-SIGNATURE"}))
    handshake = until(step, HttpRequest)
    assert "SECRET-SIGNATURE" in handshake.url
    for shown in (describe(handshake), redact_url(handshake.url), repr(handshake)):
        assert "SECRET-SIGNATURE" not in shown
        assert TOKEN not in shown


def test_a_connection_lost_while_being_set_up_still_leads_to_a_catch_up() -> None:
    """Registered, then reset before the client's first frame: pushes may have gone there."""
    peer = TrouterPeer()
    delivered: list[Event] = []
    reset = [True]

    def reset_after_registering(req: HttpRequest, now: dt.datetime) -> HttpResponse | None:
        if "/registrar/" not in req.path or not reset[0]:
            return None
        reset[0] = False
        answer = peer.handle(req, now)
        peer.push("first", now=now)
        peer.drop(now, reset=True)
        peer.push("missed while away", now=now)
        return answer

    client = TrouterClient(
        TOKEN, EPID, delivered.append, hosts=Hosts(), catch_up=backlog, rng=random.Random(2)
    )
    driver = PeerDriver(client.run(), peer, T0, other=reset_after_registering)
    driver.settle()
    driver.advance(5)
    contents = [e.message.content for e in delivered if isinstance(e, NewMessageEvent)]
    assert contents == ["first", "missed while away"]
    assert client.stats.failures == 1
    assert client.stats.catch_ups == 1


@pytest.mark.parametrize(("ttl", "reconnects_at"), [(100, 50.0), (121, 61.0), (600, 540.0)])
def test_a_short_session_is_kept_half_its_ttl(ttl: int, reconnects_at: float) -> None:
    setup = Setup(peer=TrouterPeer(ttl=ttl))
    setup.driver.settle()
    setup.driver.advance(reconnects_at + 0.5)
    connects = [entry.when for entry in setup.log("connect")]
    assert connects == [T0, T0 + dt.timedelta(seconds=reconnects_at)]
    assert setup.client.stats.failures == 0


def test_a_session_without_lifetime_backs_off_instead_of_hammering() -> None:
    peer = TrouterPeer()

    def no_lifetime(req: HttpRequest, now: dt.datetime) -> HttpResponse | None:
        if not req.path.endswith("/v4/a"):
            return None
        body = peer.handle(req, now).json()
        return HttpResponse.build(200, json={**body, "ttl": "0"})

    client = TrouterClient(
        TOKEN, EPID, lambda e: None, hosts=Hosts(), policy=TrouterPolicy(max_failures=3)
    )
    driver = PeerDriver(client.run(), peer, T0, other=no_lifetime)
    with pytest.raises(RemoteProtocolError, match="session ended too soon"):
        driver.run_until_done()
    assert len([e for e in peer.log if e.what == "connect"]) == 4
    assert client.stats.slept > 0


def test_listed_messages_become_the_events_a_push_carries() -> None:
    from skyproto.trouter.client import dedupe_key, events_from_messages

    setup = Setup(catch_up=None)
    setup.driver.settle()
    setup.peer.push("pushed", now=setup.driver.now)
    setup.driver.settle()
    (pushed,) = setup.delivered
    listed = [entry["resource"] for entry in setup.peer._backlog]
    (from_listing,) = events_from_messages(listed)
    assert isinstance(from_listing, NewMessageEvent)
    assert from_listing.message == pushed.message  # type: ignore[attr-defined]
    assert dedupe_key(from_listing) == dedupe_key(pushed)
    odd = events_from_messages(
        [[], {"id": "x"}, {"id": "12", "originalarrivaltime": "nope"}, {"id": "\u00b2"}]
    )
    assert [type(e).__name__ for e in odd] == ["UnknownEvent"] * 4
