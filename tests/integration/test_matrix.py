"""The integration matrix: every protocol flow over every transport, against the loopback emulator.

Each test gets a fresh plain-HTTP emulator (a hold of :data:`HOLD` seconds, so idle polls are
quick) and one of the four transports (:data:`~matrix_support.TRANSPORTS`) wrapped in a
:class:`~matrix_support.Runner`. Results are checked exactly, and so is the emulator's request log:
the routes it saw, and that every request the client sent arrived as sent (method, URL, header
lines, body).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from typing import Any

import pytest

from skyproto import (
    Credentials,
    HttpResponse,
    LoginMethod,
    PagingState,
    Registration,
    RemoteProtocolError,
    SkypeApiException,
    SkypeAuthException,
    SkypeRateLimitException,
    SkypeToken,
    Status,
    UntrustedHostError,
)
from skyproto.auth import fetch_user_id, guest_login, login, refresh_login
from skyproto.emulator import DEFAULT_MEETING_ID, EmulatorServer, Fault, Scenario
from skyproto.emulator.event_stream import ALICE, GROUP_CHAT
from skyproto.endpoint import (
    EndpointGoneError,
    ack,
    configure_endpoint,
    list_endpoints,
    mark_consumed,
    ping,
    poll,
    set_presence,
    subscribe,
    subscribe_presence,
)
from skyproto.events import (
    CallEvent,
    EditMessageEvent,
    Event,
    NewMessageEvent,
    PresenceEvent,
    TypingEvent,
    UnknownEvent,
    decode_events,
)
from skyproto.ids import password_hash
from skyproto.paging import CONVERSATION_PARAMS, conversations, exhaust, page, page_items
from skyproto.registration import register
from skyproto.tokens import GUEST_TOKEN_LIFETIME

from .matrix_support import Runner, assert_arrived_as_sent, forget_log

pytestmark = pytest.mark.integration

#: Seconds the emulator holds an idle long poll in these tests.
HOLD = 0.3
#: The conversations the emulator seeds, in listing order.
SEEDED_CHATS = [
    "8:alice.smith",
    "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype",
    "8:live:bob_1",
    "28:concierge",
    "19:5e2b8c1d9a7f4e3b6c0d1a2f3e4b5c6d@thread.skype",
]
EVIL = "https://evil.example"
MESSENGER = "client-s.gateway.messenger.live.com"
REDIRECTED = "db3-client-s.gateway.messenger.live.com"
LIVE_ROUTES = ["live_start", "live_page", "live_credentials"]


def knobs(**changes: Any) -> Scenario:
    """A scenario with the short hold, plus ``changes``."""
    return Scenario(hold=HOLD, **changes)


@pytest.fixture
def scenario() -> Scenario:
    return knobs()


# -- helpers ------------------------------------------------------------------------------------


def whole_seconds_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def email_user(server: EmulatorServer) -> Credentials:
    return Credentials(server.account.user, server.account.password)


def skype_name_user(server: EmulatorServer) -> Credentials:
    return Credentials(server.account.skype_name, server.account.password)


def logged_in(runner: Runner, server: EmulatorServer) -> SkypeToken:
    return runner.run(login(skype_name_user(server), hosts=server.hosts, method=LoginMethod.API))


def registered(runner: Runner, server: EmulatorServer) -> Registration:
    """Log in and register, then start the logs afresh."""
    token = logged_in(runner, server)
    reg = runner.run(register(token, hosts=server.hosts))
    forget_log(runner, server)
    return reg


def messenger_base(server: EmulatorServer, host: str = MESSENGER) -> str:
    return server.hosts.url(f"https://{host}/v1")


def query_of(entry_index: int, server: EmulatorServer) -> dict[str, str]:
    return dict(server.requests[entry_index].request.query())


# -- 1. logins ----------------------------------------------------------------------------------


def test_soap_login_then_user_id(runner: Runner, server: EmulatorServer) -> None:
    server.scenario = knobs(token_lifetime=5400)
    before = whole_seconds_now()
    token = runner.run(login(email_user(server), hosts=server.hosts))  # "@": AUTO picks SOAP
    after = dt.datetime.now(dt.UTC)
    assert server.routes() == ["soap", "edge"]
    assert before + dt.timedelta(seconds=5400) <= token.expiry <= after + dt.timedelta(seconds=5400)
    assert token.expiry.microsecond == 0
    edge = server.requests[1].request
    assert [(k, v) for k, v in edge.form() if k != "access_token"] == [
        ("partner", "999"),
        ("scopes", "client"),
    ]
    assert runner.run(fetch_user_id(token, hosts=server.hosts)) == "live:fred"
    assert server.routes() == ["soap", "edge", "profile"]
    assert server.requests[2].request.header("X-SkypeToken") == token.token
    assert_arrived_as_sent(runner, server)


def test_live_login_with_the_skype_name(runner: Runner, server: EmulatorServer) -> None:
    server.scenario = knobs(token_lifetime=4000)
    before = whole_seconds_now()
    token = runner.run(login(skype_name_user(server), hosts=server.hosts))  # no "@": Live
    after = dt.datetime.now(dt.UTC)
    assert server.routes() == [*LIVE_ROUTES, "live_confirm", "t_exchange"]
    assert before + dt.timedelta(seconds=4000) <= token.expiry <= after + dt.timedelta(seconds=4000)
    credentials_form = dict(server.requests[2].request.form())
    assert credentials_form["login"] == "live:fred"
    assert credentials_form["loginoptions"] == "3"
    assert runner.run(fetch_user_id(token, hosts=server.hosts)) == "live:fred"
    assert_arrived_as_sent(runner, server)


def test_api_login(runner: Runner, server: EmulatorServer) -> None:
    server.scenario = knobs(token_lifetime=3000)
    before = whole_seconds_now()
    token = logged_in(runner, server)
    after = dt.datetime.now(dt.UTC)
    assert server.routes() == ["api_login"]
    assert before + dt.timedelta(seconds=3000) <= token.expiry <= after + dt.timedelta(seconds=3000)
    sent = server.requests[0].request.json()
    account = server.account
    assert sent == {
        "username": "live:fred",
        "passwordHash": password_hash(account.skype_name, account.password),
        "scopes": "client",
    }
    assert runner.run(fetch_user_id(token, hosts=server.hosts)) == "live:fred"
    assert_arrived_as_sent(runner, server)


def test_refresh_login(runner: Runner, server: EmulatorServer) -> None:
    old = logged_in(runner, server)
    fresh = runner.run(refresh_login(old, hosts=server.hosts))
    assert server.routes() == ["api_login", "refresh", "t_exchange"]
    assert fresh.token != old.token
    assert server.requests[1].request.cookies() == {"refresh-token": old.token}
    assert runner.run(fetch_user_id(fresh, hosts=server.hosts)) == "live:fred"
    assert_arrived_as_sent(runner, server)


def test_guest_login(runner: Runner, server: EmulatorServer) -> None:
    before = dt.datetime.now(dt.UTC)
    token = runner.run(
        guest_login(f"https://join.skype.com/{DEFAULT_MEETING_ID}", "Grace", hosts=server.hosts)
    )
    after = dt.datetime.now(dt.UTC)
    assert server.routes() == ["join_page", "meeting", "join_thread"]
    assert before + GUEST_TOKEN_LIFETIME <= token.expiry <= after + GUEST_TOKEN_LIFETIME
    assert server.requests[2].request.json() == {"displayName": "Grace"}
    user_id = runner.run(fetch_user_id(token, hosts=server.hosts))
    assert re.fullmatch(r"guest:grace_[0-9a-f]{8}", user_id)
    with server.lock:
        assert server.emulator.guests() == (user_id,)
    assert_arrived_as_sent(runner, server)


def test_fetch_user_id_with_an_unknown_token(runner: Runner, server: EmulatorServer) -> None:
    bogus = SkypeToken("not-a-token-the-emulator-issued", whole_seconds_now())
    with pytest.raises(SkypeApiException) as caught:
        runner.run(fetch_user_id(bogus, hosts=server.hosts))
    assert type(caught.value) is SkypeApiException
    assert caught.value.response is not None
    assert caught.value.response.status == 401
    assert str(caught.value) == (f"401 response from GET {server.hosts.api}/users/self/profile"), (
        "the message names the call, never the token"
    )
    assert server.routes() == ["profile"]
    assert_arrived_as_sent(runner, server)


WRONG_PASSWORD = {
    LoginMethod.SOAP: (["soap"], "wsse:FailedAuthentication - Authentication Failure"),
    LoginMethod.LIVE: (
        LIVE_ROUTES,
        "Your account or password is incorrect. If you don't remember your password, reset it now.",
    ),
    LoginMethod.API: (
        ["api_login"],
        "Couldn't retrieve Skype token from response "
        "(40120 - Authentication failed. Bad username or password.)",
    ),
}


@pytest.mark.parametrize("method", list(WRONG_PASSWORD), ids=lambda m: m.value)
def test_wrong_password(runner: Runner, server: EmulatorServer, method: LoginMethod) -> None:
    server.scenario = knobs(wrong_password=True)
    routes, message = WRONG_PASSWORD[method]
    with pytest.raises(SkypeAuthException) as caught:
        runner.run(login(skype_name_user(server), hosts=server.hosts, method=method))
    assert type(caught.value) is SkypeAuthException
    assert str(caught.value) == message
    assert server.account.password not in str(caught.value)
    assert server.routes() == routes
    assert_arrived_as_sent(runner, server)


@pytest.mark.parametrize(
    ("knob", "message"),
    [
        ("two_factor", "Two-factor authentication unsupported"),
        (
            "consent",
            "Account action required (https://account.live.com/tou/accrue), "
            "login with a web browser first",
        ),
    ],
)
def test_live_login_interrupted(
    runner: Runner, server: EmulatorServer, knob: str, message: str
) -> None:
    server.scenario = knobs(**{knob: True})
    with pytest.raises(SkypeAuthException) as caught:
        runner.run(login(skype_name_user(server), hosts=server.hosts))
    assert type(caught.value) is SkypeAuthException
    assert str(caught.value) == message
    assert server.routes() == LIVE_ROUTES
    assert_arrived_as_sent(runner, server)


RATE_LIMITED = {
    LoginMethod.SOAP: ("soap", 7, ["soap"]),
    LoginMethod.LIVE: ("live_credentials", 5, LIVE_ROUTES),
    LoginMethod.API: ("api_login", 4, ["api_login"]),
}


@pytest.mark.parametrize("method", list(RATE_LIMITED), ids=lambda m: m.value)
def test_rate_limited_login(runner: Runner, server: EmulatorServer, method: LoginMethod) -> None:
    route, retry_after, routes = RATE_LIMITED[method]
    server.scenario = knobs(faults=[Fault(route, 429, times=1, retry_after=retry_after)])
    user = email_user(server) if method is LoginMethod.SOAP else skype_name_user(server)
    with pytest.raises(SkypeRateLimitException) as caught:
        runner.run(login(user, hosts=server.hosts, method=method))
    assert caught.value.retry_after == float(retry_after)
    assert str(caught.value) == f"Rate limit exceeded; retry after {retry_after} s"
    assert caught.value.response is not None
    assert caught.value.response.status == 429
    assert caught.value.response.header("Retry-After") == str(retry_after)
    assert server.routes() == routes
    # The fault was for one answer only: the same login now goes through.
    token = runner.run(login(user, hosts=server.hosts, method=method))
    assert runner.run(fetch_user_id(token, hosts=server.hosts)) == "live:fred"
    assert_arrived_as_sent(runner, server)


# -- 2. registration ----------------------------------------------------------------------------


def test_register(runner: Runner, server: EmulatorServer) -> None:
    server.scenario = knobs(registration_lifetime=7200)
    token = logged_in(runner, server)
    before = whole_seconds_now()
    reg = runner.run(register(token, hosts=server.hosts))
    after = dt.datetime.now(dt.UTC)
    assert server.routes() == ["api_login", "register"]
    assert reg.messenger == messenger_base(server)
    assert before + dt.timedelta(seconds=7200) <= reg.token.expiry
    assert reg.token.expiry <= after + dt.timedelta(seconds=7200)
    assert reg.token.token.startswith("registrationToken=")
    with server.lock:
        assert server.emulator.endpoint_ids() == (reg.endpoint_id,)
    sent = server.requests[1].request
    assert sent.url == f"{messenger_base(server)}/users/ME/endpoints"
    assert sent.header("Authentication") == f"skypetoken={token.token}"
    assert sent.header("BehaviorOverride") == "redirectAs404"
    assert sent.json() == {"endpointFeatures": "Agent"}
    assert_arrived_as_sent(runner, server)


def test_register_follows_a_host_redirect(runner: Runner, server: EmulatorServer) -> None:
    token = logged_in(runner, server)
    forget_log(runner, server)
    server.scenario = knobs(host_redirect=True)
    reg = runner.run(register(token, hosts=server.hosts))
    assert reg.messenger == messenger_base(server, REDIRECTED)
    assert server.routes() == ["register", "register"]
    assert [e.request.url for e in server.requests] == [
        f"{messenger_base(server)}/users/ME/endpoints",
        f"{messenger_base(server, REDIRECTED)}/users/ME/endpoints",
    ]
    with server.lock:
        assert server.emulator.endpoint_ids() == (reg.endpoint_id,)
    # The endpoint lives on the new base.
    assert runner.run(ping(reg)).status == 201
    assert server.requests[-1].request.url == (
        f"{messenger_base(server, REDIRECTED)}/users/ME/endpoints/SELF/active"
    )
    assert_arrived_as_sent(runner, server)


def test_register_gives_up_on_an_endless_redirect(runner: Runner, server: EmulatorServer) -> None:
    token = logged_in(runner, server)
    forget_log(runner, server)
    server.scenario = knobs(endless_redirect=True)
    with pytest.raises(RemoteProtocolError) as caught:
        runner.run(register(token, hosts=server.hosts, max_redirects=3))
    assert type(caught.value) is RemoteProtocolError
    assert str(caught.value) == "registration redirected more than 3 times"
    assert server.routes() == ["register"] * 4
    first, second = messenger_base(server), messenger_base(server, REDIRECTED)
    assert [e.request.url for e in server.requests] == [
        f"{base}/users/ME/endpoints" for base in (first, second, first, second)
    ]
    with server.lock:
        assert server.emulator.endpoint_ids() == ()
    assert_arrived_as_sent(runner, server)


def test_register_refuses_a_foreign_location(runner: Runner, server: EmulatorServer) -> None:
    token = logged_in(runner, server)
    forget_log(runner, server)
    server.scenario = knobs(foreign_location=True)
    with pytest.raises(UntrustedHostError) as caught:
        runner.run(register(token, hosts=server.hosts))
    assert str(caught.value) == (
        "refusing to follow a registration redirect to untrusted host https://evil.example:443"
    )
    assert server.routes() == ["register"]
    # Nothing went to the foreign host: the client sent exactly the one request the log shows.
    assert runner.sent_urls() == [f"{messenger_base(server)}/users/ME/endpoints"]
    assert not any("evil.example" in url for url in runner.sent_urls())
    assert_arrived_as_sent(runner, server)


# -- 3. endpoint operations ---------------------------------------------------------------------


def test_endpoint_operations(runner: Runner, server: EmulatorServer) -> None:
    reg = registered(runner, server)
    assert reg.endpoint_id is not None
    base = reg.messenger
    wire_id = reg.endpoint_id.replace("{", "%7B").replace("}", "%7D")

    configured = runner.run(configure_endpoint(reg, reg.endpoint_id, name="matrix"))
    assert configured.status == 200
    document = configured.json()
    assert document["privateInfo"] == {"epname": "matrix"}
    assert document["type"] == "EndpointPresenceDoc"

    assert runner.run(ping(reg, timeout=30)).status == 201
    assert server.requests[-1].request.json() == {"timeout": 30}

    subscribed = runner.run(subscribe(reg))
    assert subscribed.status == 201
    assert subscribed.header("Location") == (f"{base}/users/ME/endpoints/{wire_id}/subscriptions/0")

    assert runner.run(subscribe_presence(reg, ["live:bob_1", "8:alice.smith"])).status == 200
    assert server.requests[-1].request.json()["interestedResources"][-2:] == [
        "/v1/users/ME/contacts/8:alice.smith",
        "/v1/users/ME/contacts/8:live:bob_1",
    ]

    assert runner.run(set_presence(reg, Status.Busy)).status == 200
    assert runner.run(mark_consumed(reg, "8:alice.smith", "11;22;33")).status == 200

    second = runner.run(register(logged_in(runner, server), hosts=server.hosts))
    assert second.endpoint_id is not None
    ids = runner.run(list_endpoints(reg))
    assert sorted(ids) == sorted([reg.endpoint_id, second.endpoint_id])

    assert server.routes() == [
        "config",
        "ping",
        "subscribe",
        "presence_subscribe",
        "set_presence",
        "consumption",
        "api_login",
        "register",
        "endpoints",
    ]
    assert [e.request.url for e in server.requests[:6]] == [
        f"{base}/users/ME/endpoints/{wire_id}/presenceDocs/messagingService",
        f"{base}/users/ME/endpoints/SELF/active",
        f"{base}/users/ME/endpoints/SELF/subscriptions",
        f"{base}/users/ME/endpoints/SELF/subscriptions/0?name=interestedResources",
        f"{base}/users/ME/presenceDocs/messagingService",
        f"{base}/users/ME/conversations/8:alice.smith/properties?name=consumptionhorizon",
    ]
    assert all(
        e.request.header("RegistrationToken") == reg.token.token
        for e in server.requests
        if e.route not in ("api_login", "register")
    )
    with server.lock:
        assert server.emulator.subscribed(reg.endpoint_id)
        assert server.emulator.presence() == "Busy"
        assert server.emulator.horizon("8:alice.smith") == "11;22;33"
    assert_arrived_as_sent(runner, server)


GONE_CALLS = {
    "config": ("PUT", "/users/ME/endpoints/{wire_id}/presenceDocs/messagingService"),
    "ping": ("POST", "/users/ME/endpoints/SELF/active"),
    "poll": ("POST", "/users/ME/endpoints/SELF/subscriptions/0/poll"),
}


def _gone_call(route: str, reg: Registration) -> Any:
    assert reg.endpoint_id is not None
    if route == "config":
        return configure_endpoint(reg, reg.endpoint_id)
    if route == "ping":
        return ping(reg)
    return poll(reg, hold=HOLD)


@pytest.mark.parametrize("route", list(GONE_CALLS))
def test_errorcode_729_is_endpoint_gone(runner: Runner, server: EmulatorServer, route: str) -> None:
    reg = registered(runner, server)
    assert reg.endpoint_id is not None
    runner.run(subscribe(reg))  # the default script queues four events, so polls answer at once
    server.scenario = knobs(faults=[Fault(route, 729)])
    method, path = GONE_CALLS[route]
    url = reg.messenger + path.format(
        wire_id=reg.endpoint_id.replace("{", "%7B").replace("}", "%7D")
    )
    with pytest.raises(EndpointGoneError) as caught:
        runner.run(_gone_call(route, reg))
    assert str(caught.value) == (
        f"404 response from {method} {url}: endpoint is gone (errorCode 729)"
    )
    assert caught.value.response is not None
    assert caught.value.response.status == 404
    assert caught.value.response.json()["errorCode"] == 729
    # One faulty answer only: the same call succeeds next.
    assert runner.run(_gone_call(route, reg)).status in (200, 201)
    assert server.routes() == ["subscribe", route, route]
    assert_arrived_as_sent(runner, server)


def test_a_forgotten_endpoint_is_gone_until_registering_again(
    runner: Runner, server: EmulatorServer
) -> None:
    reg = registered(runner, server)
    with server.lock:
        server.emulator.forget_endpoints()
    with pytest.raises(EndpointGoneError):
        runner.run(subscribe(reg))
    again = runner.run(register(logged_in(runner, server), hosts=server.hosts))
    assert again.endpoint_id != reg.endpoint_id
    assert runner.run(subscribe(again)).status == 201
    assert server.routes() == ["subscribe", "api_login", "register", "subscribe"]
    assert_arrived_as_sent(runner, server)


# -- 4. poll and acknowledge --------------------------------------------------------------------

QUEUED = ["text", "typing", "presence", "group_text", "edit", "call", "custom"]
DECODED = [
    NewMessageEvent,
    TypingEvent,
    PresenceEvent,
    NewMessageEvent,
    EditMessageEvent,
    CallEvent,
    UnknownEvent,
]
_ACK_ID = re.compile(r"/users/ME/conversations/ALL/messages/([0-9]+)/ack\Z")


def _poll_events(runner: Runner, reg: Registration) -> tuple[HttpResponse, list[Event]]:
    response = runner.run(poll(reg, hold=HOLD))
    assert response.status == 200
    return response, decode_events(response.body)


def test_poll_decode_and_ack(runner: Runner, server: EmulatorServer) -> None:
    server.scenario = knobs(events=())  # only what the test queues
    reg = registered(runner, server)
    runner.run(subscribe(reg))
    assert [server.queue_event(kind) for kind in QUEUED] == [1] * len(QUEUED)

    response, events = _poll_events(runner, reg)
    assert [type(event) for event in events] == DECODED
    assert [event.id for event in events] == list(range(1000, 1000 + len(QUEUED)))
    to_ack = [event.ack_url for event in events if event.ack_url is not None]
    assert len(to_ack) == 5  # every NewMessage kind; not presence, not the custom one
    message_ids = []
    for url in to_ack:
        assert url.startswith(reg.messenger + "/")
        found = _ACK_ID.search(url)
        assert found is not None
        message_ids.append(found.group(1))
        assert runner.run(ack(reg, url, hosts=server.hosts)) is True
    with server.lock:
        assert server.emulator.acknowledged == tuple(message_ids)
    assert server.routes() == ["subscribe", "poll", *["ack"] * 5]
    assert [e.request.url for e in server.requests[2:]] == to_ack

    # An event whose ackrequired points elsewhere is decoded, but never acknowledged.
    raw = dict(json.loads(response.body)["eventMessages"][0])
    del raw["id"]
    raw["resource"] = {**raw["resource"], "ackrequired": f"{EVIL}/v1/messages/1/ack"}
    assert server.queue_event(raw) == 1
    _, (forged,) = _poll_events(runner, reg)
    assert type(forged) is NewMessageEvent
    assert forged.ack_url == f"{EVIL}/v1/messages/1/ack"
    sent_before = len(runner.sent)
    assert runner.run(ack(reg, forged.ack_url, hosts=server.hosts)) is False
    assert len(runner.sent) == sent_before

    # Nothing left: the server holds the poll for the scenario's hold, then answers empty.
    started = time.monotonic()
    idle, nothing = _poll_events(runner, reg)
    assert time.monotonic() - started >= HOLD - 0.05
    assert nothing == []
    assert idle.json() == {"eventMessages": []}
    with server.lock:
        assert server.emulator.acknowledged == tuple(message_ids)
    assert server.routes() == ["subscribe", "poll", *["ack"] * 5, "poll", "poll"]
    assert_arrived_as_sent(runner, server)


def test_held_poll_returns_when_an_event_arrives(runner: Runner, server: EmulatorServer) -> None:
    server.scenario = knobs(events=())
    reg = registered(runner, server)
    runner.run(subscribe(reg))
    server.scenario = Scenario(hold=20.0, events=())
    timer = threading.Timer(0.2, server.queue_event, args=["text"])
    started = time.monotonic()
    timer.start()
    try:
        response = runner.run(poll(reg, hold=20.0))
    finally:
        timer.join()
    assert time.monotonic() - started < 5.0
    (event,) = decode_events(response.body)
    assert type(event) is NewMessageEvent
    assert event.message.chat_id == f"8:{ALICE}"
    assert server.routes() == ["subscribe", "poll"]
    assert_arrived_as_sent(runner, server)


# -- 5. paging ----------------------------------------------------------------------------------


def test_conversations_page_by_page(runner: Runner, server: EmulatorServer) -> None:
    reg = registered(runner, server)  # default page size: 2
    url = f"{reg.messenger}/users/ME/conversations"
    state = PagingState()
    pages: list[list[str]] = []
    for _ in range(10):
        state, items = runner.run(conversations(reg, state, server.hosts))
        pages.append([item["id"] for item in items])
        if not items:
            break
    assert pages == [SEEDED_CHATS[0:2], SEEDED_CHATS[2:4], SEEDED_CHATS[4:5], []]
    assert server.routes() == ["conversations"] * 4
    assert server.requests[0].request.query() == list(CONVERSATION_PARAMS)
    for index in (1, 2, 3):
        sent = query_of(index, server)
        assert sent["pageSize"] == "2"
        assert sent["syncState"]
        assert server.requests[index].request.url.startswith(url + "?")
    # The empty last page links to itself: what a later call would ask for again.
    assert state.link("GET", url) == server.requests[3].request.url
    assert_arrived_as_sent(runner, server)


def test_exhaust_conversations_and_messages(runner: Runner, server: EmulatorServer) -> None:
    server.scenario = knobs(page_size=3)
    reg = registered(runner, server)
    listing = f"{reg.messenger}/users/ME/conversations"
    state, chats = runner.run(
        exhaust(
            PagingState(),
            "GET",
            listing,
            reg=reg,
            hosts=server.hosts,
            items_key="conversations",
            params=CONVERSATION_PARAMS,
        )
    )
    assert [chat["id"] for chat in chats] == SEEDED_CHATS
    assert server.routes() == ["conversations"] * 3  # 3, 2, then the empty page

    messages_url = f"{reg.messenger}/users/ME/conversations/{GROUP_CHAT}/messages"
    state, messages = runner.run(
        exhaust(
            state,
            "GET",
            messages_url,
            reg=reg,
            hosts=server.hosts,
            items_key="messages",
            params={"pageSize": "2"},
        )
    )
    # The same listing in one big page, for comparison.
    _, whole = runner.run(
        page(
            PagingState(),
            "GET",
            messages_url,
            reg=reg,
            hosts=server.hosts,
            params={"pageSize": "100"},
        )
    )
    everything = page_items(whole, "messages")
    assert len(everything) == 3
    assert messages == everything
    assert {m["conversationid"] for m in messages} == {GROUP_CHAT}
    # Pages of 2, 1, then the empty one; then the single big page.
    assert server.routes() == ["conversations"] * 3 + ["messages"] * 4
    assert all(query_of(index, server)["pageSize"] == "2" for index in (3, 4, 5))
    assert sorted(state.links) == sorted([f"GET {listing}", f"GET {messages_url}"])
    assert_arrived_as_sent(runner, server)


def test_an_untrusted_sync_state_link_is_refused(runner: Runner, server: EmulatorServer) -> None:
    reg = registered(runner, server)
    server.scenario = knobs(foreign_sync_state=True)
    with pytest.raises(UntrustedHostError) as caught:
        runner.run(conversations(reg, PagingState(), server.hosts))
    assert str(caught.value) == (
        "refusing to follow a syncState link to untrusted host https://evil.example:443"
    )
    assert server.routes() == ["conversations"]
    assert runner.sent_urls() == [server.requests[0].request.url]
    assert_arrived_as_sent(runner, server)


def test_a_stored_untrusted_link_is_never_sent(runner: Runner, server: EmulatorServer) -> None:
    reg = registered(runner, server)
    url = f"{reg.messenger}/users/ME/conversations"
    state = PagingState().with_link("GET", url, f"{EVIL}/v1/users/ME/conversations?syncState=x")
    with pytest.raises(UntrustedHostError) as caught:
        runner.run(conversations(reg, state, server.hosts))
    assert str(caught.value) == (
        "refusing to follow a syncState link to untrusted host https://evil.example:443"
    )
    assert runner.sent == []
    assert server.routes() == []
