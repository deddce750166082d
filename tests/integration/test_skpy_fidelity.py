"""The unmodified reference client, SkPy 0.11, against the emulator over TLS.

SkPy is pointed at the emulator without touching its files: the ``API_*`` class attributes of
``skpy.conn.SkypeConnection`` (where SkPy keeps every service base, and which its registration
reads at call time) are monkeypatched onto the emulator's bases, and ``requests`` is told to
trust the emulator's CA through ``REQUESTS_CA_BUNDLE``. Each test then checks both what SkPy
ended up holding and what the emulator saw (``server.routes()``, ``server.requests``).
"""

from __future__ import annotations

import datetime as dt
import math
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import skpy
from skpy.conn import SkypeConnection, SkypeEndpoint
from skpy.event import SkypeEvent

from skyproto.emulator import DEFAULT_ACCOUNT, EmulatorServer, LoggedRequest, Scenario

pytestmark = [
    pytest.mark.skpy,
    pytest.mark.integration,
    # SkPy's Live login calls a BeautifulSoup alias that bs4 4.x deprecates.
    pytest.mark.filterwarnings("ignore:Call to deprecated method findAll:DeprecationWarning"),
]

#: The SkPy constants naming a service the emulator serves; every other one stays untouched.
PATCHED_CONSTANTS = (
    "API_EDGE",
    "API_JOIN",
    "API_JOIN_CREATE",
    "API_LOGIN",
    "API_MSACC",
    "API_MSGSHOST",
    "API_USER",
)
CLIENT_S = "client-s.gateway.messenger.live.com"
DB3 = "db3-client-s.gateway.messenger.live.com"
USER_ID = DEFAULT_ACCOUNT.skype_name
SOAP_ROUTES = ["soap", "edge", "profile", "register", "config", "endpoints"]
LIVE_ROUTES = [
    "live_start",
    "live_page",
    "live_credentials",
    "live_confirm",
    "t_exchange",
    "profile",
    "register",
    "config",
    "endpoints",
]
TOKEN_LIFETIME = 3600
REGISTRATION_LIFETIME = 7200
HOLD = 0.4

Start = Callable[..., EmulatorServer]


@pytest.fixture
def opened() -> Iterator[list[SkypeConnection]]:
    """Connections made by a test; their ``requests`` sessions are closed afterwards."""
    connections: list[SkypeConnection] = []
    yield connections
    for conn in connections:
        conn.sess.close()
    SkypeConnection.extSess.close()  # a class-wide session, kept alive across tests


@pytest.fixture
def start(
    skype_emulator_factory: Callable[..., EmulatorServer],
    monkeypatch: pytest.MonkeyPatch,
    opened: list[SkypeConnection],
) -> Start:
    """Start a TLS emulator with ``scenario`` and point SkPy at it (undone after the test)."""

    def start(scenario: Scenario) -> EmulatorServer:
        server = skype_emulator_factory(scenario, tls=True)
        assert server.ca_bundle is not None
        patched = []
        for name in sorted(vars(SkypeConnection)):
            real = getattr(SkypeConnection, name)
            if name.startswith("API_") and isinstance(real, str) and server.url(real) != real:
                monkeypatch.setattr(SkypeConnection, name, server.url(real))
                patched.append(name)
        assert tuple(patched) == PATCHED_CONSTANTS
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_bundle)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.delenv("SKPY_DEBUG_HTTP", raising=False)
        return server

    return start


def base(server: EmulatorServer, host: str) -> str:
    return server.hosts.overrides[host]


def only(server: EmulatorServer, route: str) -> LoggedRequest:
    (entry,) = [entry for entry in server.requests if entry.route == route]
    return entry


def local_expiry(seconds: float) -> dt.datetime:
    """A Unix time the way SkPy keeps expiries: a naive local datetime."""
    return dt.datetime.fromtimestamp(seconds)


def assert_expiry(value: Any, started: float, finished: float, lifetime: int) -> None:
    assert isinstance(value, dt.datetime)
    assert local_expiry(math.floor(started) + lifetime) <= value
    assert value <= local_expiry(math.ceil(finished) + lifetime)


def wire_id(endpoint_id: str) -> str:
    return endpoint_id.replace("{", "%7B").replace("}", "%7D")


def connect(server: EmulatorServer, opened: list[SkypeConnection], how: str, user: str) -> Any:
    """Log in the way ``how`` names; return the SkypeConnection (or the Skype for ``Skype``)."""
    if how == "Skype":
        sk = skpy.Skype(user, DEFAULT_ACCOUNT.password)
        opened.append(sk.conn)
        return sk
    conn = SkypeConnection()
    opened.append(conn)
    getattr(conn, how)(user, DEFAULT_ACCOUNT.password)
    return conn


# -- 1. logins ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "user", "routes"),
    [
        ("soapLogin", DEFAULT_ACCOUNT.user, SOAP_ROUTES),
        ("liveLogin", DEFAULT_ACCOUNT.skype_name, LIVE_ROUTES),
        # Skype(user, pwd) picks SOAP for an e-mail address and Live for a Skype name.
        ("Skype", DEFAULT_ACCOUNT.user, SOAP_ROUTES),
        ("Skype", DEFAULT_ACCOUNT.skype_name, LIVE_ROUTES),
    ],
    ids=["soapLogin-email", "liveLogin-skype-name", "Skype-email", "Skype-skype-name"],
)
def test_login(
    start: Start, opened: list[SkypeConnection], how: str, user: str, routes: list[str]
) -> None:
    server = start(
        Scenario(token_lifetime=TOKEN_LIFETIME, registration_lifetime=REGISTRATION_LIFETIME)
    )
    started = time.time()
    result = connect(server, opened, how, user)
    finished = time.time()
    conn: SkypeConnection = result.conn if how == "Skype" else result

    assert server.routes() == routes
    assert server.errors == []
    with server.lock:
        (endpoint_id,) = server.emulator.endpoint_ids()

    # Tokens: the ones SkPy holds are the ones it sent.
    assert conn.userId == USER_ID
    assert sorted(conn.tokens) == ["reg", "skype"]
    skype_token = conn.tokens["skype"]
    assert only(server, "profile").request.header("X-SkypeToken") == skype_token
    assert only(server, "register").request.header("Authentication") == f"skypetoken={skype_token}"
    reg_token = conn.tokens["reg"]
    assert reg_token.startswith("registrationToken=")
    assert only(server, "config").request.header("RegistrationToken") == reg_token
    assert only(server, "endpoints").request.header("RegistrationToken") == reg_token
    assert_expiry(conn.tokenExpiry["skype"], started, finished, TOKEN_LIFETIME)
    assert_expiry(conn.tokenExpiry["reg"], started, finished, REGISTRATION_LIFETIME)
    assert conn.connected is True

    # Registration: the endpoint the emulator made, on the default messaging host.
    assert conn.msgsHost == server.hosts.messenger
    assert conn.msgsHost == base(server, CLIENT_S) + "/v1"
    assert conn.endpoints["self"].id == "SELF"
    assert conn.endpoints["main"].id == endpoint_id
    assert [e.id for e in conn.endpoints["all"]] == [wire_id(endpoint_id)]
    assert only(server, "config").request.url == (
        f"{conn.msgsHost}/users/ME/endpoints/{wire_id(endpoint_id)}/presenceDocs/messagingService"
    )
    if how == "Skype":
        assert result.userId == USER_ID


def test_login_with_a_wrong_password_is_refused(
    start: Start, opened: list[SkypeConnection]
) -> None:
    server = start(Scenario(wrong_password=True))
    conn = SkypeConnection()
    opened.append(conn)
    with pytest.raises(skpy.SkypeAuthException):
        conn.soapLogin(DEFAULT_ACCOUNT.user, DEFAULT_ACCOUNT.password)
    assert server.routes() == ["soap"]
    assert conn.tokens == {}
    assert conn.userId is None


# -- 2. registration --------------------------------------------------------------------------


def test_registration_without_a_redirect_stays_on_the_default_host(
    start: Start, opened: list[SkypeConnection]
) -> None:
    server = start(Scenario())
    conn = connect(server, opened, "soapLogin", DEFAULT_ACCOUNT.user)
    default = base(server, CLIENT_S)

    registrations = [e.request for e in server.requests if e.route == "register"]
    assert [r.url for r in registrations] == [f"{default}/v1/users/ME/endpoints"]
    (registration,) = registrations
    assert registration.header("BehaviorOverride") == "redirectAs404"
    assert (registration.header("LockAndKey") or "").startswith("appId=msmsgs@msnmsgr.com; time=")
    assert registration.json() == {"endpointFeatures": "Agent"}
    messenger = [e for e in server.requests if e.route in ("register", "config", "endpoints")]
    assert all(e.request.url.startswith(default + "/v1/") for e in messenger)
    assert conn.msgsHost == f"{default}/v1"
    with server.lock:
        assert server.emulator.endpoint_ids() == (conn.endpoints["main"].id,)
    assert server.errors == []


def test_registration_follows_a_host_redirect(start: Start, opened: list[SkypeConnection]) -> None:
    server = start(Scenario(host_redirect=True))
    conn = connect(server, opened, "soapLogin", DEFAULT_ACCOUNT.user)
    default, redirected = base(server, CLIENT_S), base(server, DB3)
    assert default != redirected

    assert server.routes() == [
        "soap",
        "edge",
        "profile",
        "register",
        "register",
        "config",
        "endpoints",
    ]
    registrations = [e.request for e in server.requests if e.route == "register"]
    assert [r.url for r in registrations] == [
        f"{default}/v1/users/ME/endpoints",
        f"{redirected}/v1/users/ME/endpoints",
    ]
    # Both attempts carry the same Skype token and ask for a 404 instead of a 301.
    assert [r.header("Authentication") for r in registrations] == [
        f"skypetoken={conn.tokens['skype']}"
    ] * 2
    assert [r.header("BehaviorOverride") for r in registrations] == ["redirectAs404"] * 2
    assert conn.msgsHost == f"{redirected}/v1"
    with server.lock:
        (endpoint_id,) = server.emulator.endpoint_ids()
    assert conn.endpoints["main"].id == endpoint_id
    assert only(server, "config").request.url == (
        f"{redirected}/v1/users/ME/endpoints/{wire_id(endpoint_id)}/presenceDocs/messagingService"
    )
    assert only(server, "endpoints").request.url == (
        f"{redirected}/v1/users/ME/presenceDocs/messagingService?view=expanded"
    )
    assert [e.id for e in conn.endpoints["all"]] == [wire_id(endpoint_id)]
    assert server.errors == []


# -- 3. endpoint, events, acks, endpoint sync -----------------------------------------------------

#: Queued kinds, and what SkPy 0.11 makes of each: (event class, its ``type``, acknowledged?).
QUEUED = [
    ("text", "SkypeNewMessageEvent", "NewMessage", True),
    ("typing", "SkypeTypingEvent", "NewMessage", True),
    ("presence", "SkypePresenceEvent", "UserPresence", False),
    ("edit", "SkypeEditMessageEvent", "NewMessage", True),
    ("call", "SkypeCallEvent", "NewMessage", True),
    ("conversation_update", "SkypeChatUpdateEvent", "ConversationUpdate", False),
    ("thread_update", "SkypeChatMemberEvent", "ThreadUpdate", False),
    ("custom", "SkypeEvent", "CustomUserProperties", False),
]


def test_endpoint_config_subscribe_events_and_acks(
    start: Start, opened: list[SkypeConnection]
) -> None:
    server = start(Scenario(hold=HOLD, events=(), events_per_poll=5))
    sk = connect(server, opened, "Skype", DEFAULT_ACCOUNT.user)
    conn = sk.conn
    endpoint: SkypeEndpoint = conn.endpoints["main"]
    endpoint_url = f"{conn.msgsHost}/users/ME/endpoints/{wire_id(endpoint.id)}"
    server.clear_requests()

    endpoint.config("fidelity")
    endpoint.ping()
    endpoint.subscribe()
    assert endpoint.subscribed is True
    with server.lock:
        assert server.emulator.subscribed(endpoint.id) is True
    config = only(server, "config").request
    assert config.json()["privateInfo"] == {"epname": "fidelity"}
    assert only(server, "ping").request.json() == {"timeout": 12}
    assert only(server, "subscribe").request.json() == {
        "interestedResources": [
            "/v1/users/ME/conversations/ALL/properties",
            "/v1/users/ME/conversations/ALL/messages",
            "/v1/threads/ALL",
        ],
        "channelType": "HttpLongPoll",
        "conversationType": 2047,
    }

    # Nothing queued: the poll is held for the scenario's hold, then answers no events.
    before = time.monotonic()
    assert endpoint.getEvents() == []
    assert time.monotonic() - before >= HOLD - 0.05

    for kind, *_ in QUEUED:
        assert server.queue_event(kind) == 1
    raw: list[dict[str, Any]] = []
    for _ in range(len(QUEUED)):  # bounded: at most one event per poll
        batch = endpoint.getEvents()
        if not batch:
            break
        raw += batch
    events = [SkypeEvent.fromRaw(sk, item) for item in raw]
    assert [(type(e).__name__, e.id, e.type) for e in events] == [
        (name, 1000 + index, event_type) for index, (_, name, event_type, _) in enumerate(QUEUED)
    ]
    for event, (_, _, _, acked) in zip(events, QUEUED, strict=True):
        ack_url = event.raw["resource"].get("ackrequired")
        message_id = str(event.raw["resource"].get("id"))
        if acked:
            assert (
                ack_url == f"{conn.msgsHost}/users/ME/conversations/ALL/messages/{message_id}/ack"
            )
        else:
            assert ack_url is None
        event.ack()
    expected_acks = tuple(
        str(e.raw["resource"]["id"]) for e, (*_, acked) in zip(events, QUEUED, strict=True) if acked
    )
    assert len(expected_acks) == 4
    with server.lock:
        assert server.emulator.acknowledged == expected_acks
    acks = [e.request for e in server.requests if e.route == "ack"]
    assert [r.header("RegistrationToken") for r in acks] == [conn.tokens["reg"]] * 4
    polls = [e.request.url for e in server.requests if e.route == "poll"]
    assert polls == [f"{endpoint_url}/subscriptions/0/poll"] * 4  # empty, 5 events, 3, empty
    assert server.routes() == ["config", "ping", "subscribe", *["poll"] * 4, *["ack"] * 4]
    assert server.errors == []


def test_skype_get_events_on_the_self_endpoint_and_the_event_loop_acks(
    start: Start, opened: list[SkypeConnection]
) -> None:
    server = start(Scenario(hold=HOLD))  # default stream: text, typing, presence, update
    loop = skpy.SkypeEventLoop(DEFAULT_ACCOUNT.user, DEFAULT_ACCOUNT.password, autoAck=True)
    opened.append(loop.conn)
    seen: list[tuple[str, int, str]] = []
    loop.onEvent = lambda event: seen.append((type(event).__name__, event.id, event.type))
    server.clear_requests()

    loop.cycle()

    assert seen == [
        ("SkypeNewMessageEvent", 1000, "NewMessage"),
        ("SkypeTypingEvent", 1001, "NewMessage"),
        ("SkypePresenceEvent", 1002, "UserPresence"),
        ("SkypeChatUpdateEvent", 1003, "ConversationUpdate"),
    ]
    self_url = f"{loop.conn.msgsHost}/users/ME/endpoints/SELF/subscriptions"
    assert [(e.route, e.request.url) for e in server.requests[:2]] == [
        ("subscribe", self_url),
        ("poll", f"{self_url}/0/poll"),
    ]
    assert server.routes() == ["subscribe", "poll", "ack", "ack"]
    ack_urls = [e.request.url for e in server.requests if e.route == "ack"]
    with server.lock:
        acknowledged = server.emulator.acknowledged
        (endpoint_id,) = server.emulator.endpoint_ids()
        assert server.emulator.subscribed(endpoint_id) is True
    assert len(acknowledged) == 2
    assert ack_urls == [
        f"{loop.conn.msgsHost}/users/ME/conversations/ALL/messages/{message_id}/ack"
        for message_id in acknowledged
    ]

    # An empty queue: the next cycle is held, then delivers nothing and acknowledges nothing.
    loop.cycle()
    assert len(seen) == 4
    assert server.routes()[4:] == ["poll"]
    assert server.errors == []


def test_sync_endpoints_lists_every_endpoint_of_the_user(
    start: Start, opened: list[SkypeConnection]
) -> None:
    server = start(Scenario())
    first = connect(server, opened, "soapLogin", DEFAULT_ACCOUNT.user)
    second = connect(server, opened, "liveLogin", DEFAULT_ACCOUNT.skype_name)
    first_id, second_id = first.endpoints["main"].id, second.endpoints["main"].id
    assert first_id != second_id
    with server.lock:
        assert server.emulator.endpoint_ids() == (first_id, second_id)
    # The first connection listed its endpoints before the second existed.
    assert [e.id for e in first.endpoints["all"]] == [wire_id(first_id)]
    server.clear_requests()

    first.syncEndpoints()

    assert [e.id for e in first.endpoints["all"]] == [wire_id(first_id), wire_id(second_id)]
    assert all(isinstance(e, SkypeEndpoint) and e.conn is first for e in first.endpoints["all"])
    (listing,) = server.requests
    assert listing.route == "endpoints"
    assert (
        listing.request.url
        == f"{first.msgsHost}/users/ME/presenceDocs/messagingService?view=expanded"
    )
    assert listing.request.header("RegistrationToken") == first.tokens["reg"]
    query = urllib.parse.urlsplit(listing.request.url).query
    assert urllib.parse.parse_qs(query) == {"view": ["expanded"]}
    assert server.errors == []
