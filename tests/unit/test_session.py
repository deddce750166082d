"""The Session's re-authentication policy, against the pure emulator and scripted answers.

The peer is :class:`~skyproto.emulator.Emulator` answering at a fake clock (``Peer``), so each test
states the exact request sequence a policy produces. ``Peer.script`` replaces the emulator for one
URL prefix when a branch needs an answer the emulator cannot give.

Route names are the emulator's (``docs/emulator.md``); ``?`` marks a scripted URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from skyproto.transports import iterate_pages, run_async

from skyproto import (
    Credentials,
    GuestCredentials,
    Hosts,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    LoginMethod,
    SkypeApiException,
    SkypeAuthException,
    SkypeRateLimitException,
    SkypeTokenException,
    TransportError,
    UntrustedHostError,
)
from skyproto._flow import Flow, request
from skyproto.calls import DEFAULT_ACCEPTED, AuthKind, build_request, check_status
from skyproto.emulator import (
    DEFAULT_ACCOUNT,
    DEFAULT_MEETING_ID,
    Account,
    Emulator,
    Fault,
    Scenario,
)
from skyproto.emulator.testing import Peer
from skyproto.endpoint import EndpointGoneError
from skyproto.events import decode_events
from skyproto.ids import Status
from skyproto.paging import PagingState
from skyproto.registration import Registration
from skyproto.session import (
    CONNECT_ATTEMPTS,
    CONNECT_BACKOFF,
    MAX_CALL_ATTEMPTS,
    Listing,
    Session,
    SessionState,
    load_snapshot,
)
from skyproto.tokens import REFRESH_LEEWAY, RegistrationToken, SkypeToken, refresh_leeway

T0 = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = 86400
EMAIL = DEFAULT_ACCOUNT.user
SKYPE_NAME = DEFAULT_ACCOUNT.skype_name
PASSWORD = DEFAULT_ACCOUNT.password
CREDENTIALS = Credentials(EMAIL, PASSWORD)
CLIENT_S = "https://client-s.gateway.messenger.live.com/v1"
DB3 = "https://db3-client-s.gateway.messenger.live.com/v1"
CONVERSATIONS = "/users/ME/conversations"
SOAP = ["soap", "edge", "profile"]
LIVE = ["live_start", "live_page", "live_credentials", "live_confirm", "t_exchange", "profile"]
REGISTER = ["register", "config", "endpoints"]
SCRIPTED = "https://api.skype.com/test/echo"
LEEWAY_SECONDS = int(REFRESH_LEEWAY.total_seconds())
TOKEN_HEADERS = ("x-skypetoken", "authorization", "registrationtoken", "authentication")


def make_peer(
    scenario: Scenario | None = None,
    *,
    hosts: Hosts | None = None,
    account: Account | None = None,
) -> Peer:
    """The test peer on the pure emulator, its clock at T0; tests script answers on top."""
    return Peer(Emulator(hosts=hosts, scenario=scenario, account=account, seed=7), start=T0)


class AsyncPeer:
    """``peer`` as an async transport that yields to the event loop before each answer.

    A route named in ``gates`` waits for its event first, so a test can act while a request is
    in flight.
    """

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.gates: dict[str, asyncio.Event] = {}
        self.waiting: list[str] = []

    async def send(self, req: HttpRequest) -> HttpResponse:
        await asyncio.sleep(0)
        route = self.peer.emulator.route(req) or "?"
        gate = self.gates.get(route)
        if gate is not None:
            self.waiting.append(route)
            await gate.wait()
        return self.peer.send(req)

    async def run(self, flow: Flow[Any]) -> Any:
        async def no_wait(seconds: float) -> None:
            self.peer.clock.advance(seconds)

        return await run_async(flow, self, clock=self.peer.clock, sleep=no_wait)


def connected(peer: Peer, **options: Any) -> Session:
    """A session connected to ``peer`` (SOAP login), with the peer's log cleared."""
    options.setdefault("credentials", CREDENTIALS)
    session = Session(peer.emulator.hosts, **options)
    peer.run(session.connect())
    peer.clear()
    return session


def header(req: HttpRequest, name: str) -> str | None:
    return req.header(name)


def json_body(req: HttpRequest) -> Any:
    return json.loads(req.body)


def echo(token: SkypeToken) -> Flow[str]:
    """A Skype-token call to the scripted URL; returns the token it sent."""
    req = build_request("GET", SCRIPTED, auth=(AuthKind.SKYPE_TOKEN, token.token))
    response = yield from request(req)
    check_status(response, DEFAULT_ACCEPTED, method="GET", url=SCRIPTED)
    return token.token


def error(status: int, code: int | None = None) -> HttpResponse:
    body = {"errorCode": code if code is not None else status, "message": "scripted"}
    return HttpResponse.build(status, json=body)


def ok(body: Any = None) -> HttpResponse:
    return HttpResponse.build(200, json=body if body is not None else {})


# -- connecting from nothing -------------------------------------------------------------------


def test_connect_from_nothing_with_an_email_logs_in_by_soap_then_registers() -> None:
    peer = make_peer()
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    state = peer.run(session.connect())

    assert peer.routes == [*SOAP, *REGISTER]
    [endpoint] = peer.emulator.endpoint_ids()
    wire = endpoint.replace("{", "%7B").replace("}", "%7D")
    assert [(r.method, r.url) for r in peer.sent] == [
        ("POST", "https://login.live.com/RST.srf"),
        ("POST", "https://edge.skype.com/rps/v1/rps/skypetoken"),
        ("GET", "https://api.skype.com/users/self/profile"),
        ("POST", f"{CLIENT_S}/users/ME/endpoints"),
        ("PUT", f"{CLIENT_S}/users/ME/endpoints/{wire}/presenceDocs/messagingService"),
        ("GET", f"{CLIENT_S}/users/ME/presenceDocs/messagingService?view=expanded"),
    ]
    assert state is session.state
    token = state.skype_token
    reg = state.registration
    assert token is not None
    assert reg is not None
    assert state.user_id == session.user_id == SKYPE_NAME
    assert state.guest is False
    assert token.expiry == T0 + dt.timedelta(seconds=DAY)
    assert reg.token.expiry == T0 + dt.timedelta(seconds=DAY)
    assert reg.messenger == CLIENT_S
    assert reg.endpoint_id == endpoint
    assert session.registration is reg
    assert state.endpoints == (endpoint,)
    assert state.endpoint_id == endpoint
    assert state.paging == PagingState()
    # Each token goes where it belongs.
    assert header(peer.sent[2], "X-SkypeToken") == token.token
    assert header(peer.sent[3], "Authentication") == f"skypetoken={token.token}"
    assert header(peer.sent[4], "RegistrationToken") == reg.token.token
    assert header(peer.sent[5], "RegistrationToken") == reg.token.token
    assert json_body(peer.sent[4])["privateInfo"] == {"epname": "skype"}


def test_connect_twice_sends_nothing_the_second_time() -> None:
    peer = make_peer()
    session = connected(peer)
    before = session.state
    assert peer.run(session.connect()) is before
    assert peer.sent == []


def reset(request: HttpRequest) -> TransportError:
    """A transport failure for ``request``, as a connection reset would give."""
    return TransportError(f"ConnectionResetError: {request.method} {request.url}")


def test_connect_retries_transport_errors_from_where_it_failed() -> None:
    peer = make_peer()
    peer.on("soap", reset)  # the SOAP login fails once
    peer.on("register", reset)  # and so does the registration
    session = Session(peer.hosts, credentials=CREDENTIALS)
    state = peer.run(session.connect())

    # The token obtained is kept: the second attempt starts at the registration.
    assert peer.routes == ["soap", *SOAP, "register", *REGISTER]
    assert peer.sleeps == [CONNECT_BACKOFF, 2 * CONNECT_BACKOFF]
    assert state.registration is not None
    assert peer.emulator is not None
    assert peer.emulator.endpoint_ids() == (state.registration.endpoint_id,)


def test_connect_gives_up_after_its_attempts_with_the_last_transport_error() -> None:
    peer = make_peer()
    peer.always("soap", reset)
    session = Session(peer.hosts, credentials=CREDENTIALS)
    with pytest.raises(TransportError, match="ConnectionResetError: POST"):
        peer.run(session.connect())
    assert peer.routes == ["soap"] * CONNECT_ATTEMPTS
    assert peer.sleeps == [CONNECT_BACKOFF * 2**n for n in range(CONNECT_ATTEMPTS - 1)]


def test_connect_does_not_retry_an_answer() -> None:
    peer = make_peer(Scenario(faults=[Fault("soap", 503, 1)]))
    session = Session(peer.hosts, credentials=CREDENTIALS)
    with pytest.raises(SkypeApiException):
        peer.run(session.connect())
    assert peer.routes == ["soap"]
    assert peer.sleeps == []


@pytest.mark.parametrize(
    ("user", "method", "login_routes"),
    [
        (SKYPE_NAME, LoginMethod.AUTO, LIVE),
        (EMAIL, LoginMethod.AUTO, SOAP),
        (EMAIL, LoginMethod.API, ["api_login", "profile"]),
        (SKYPE_NAME, LoginMethod.SOAP, SOAP),
        (EMAIL, LoginMethod.LIVE, LIVE),
    ],
)
def test_connect_picks_the_login_by_user_name_or_explicit_method(
    user: str, method: LoginMethod, login_routes: list[str]
) -> None:
    peer = make_peer()
    session = Session(peer.emulator.hosts, credentials=Credentials(user, PASSWORD), method=method)
    peer.run(session.connect())
    assert peer.routes == [*login_routes, *REGISTER]
    assert session.user_id == SKYPE_NAME


def test_method_must_be_a_login_method() -> None:
    with pytest.raises(LocalProtocolError, match="LoginMethod"):
        Session(credentials=CREDENTIALS, method="soap")  # type: ignore[arg-type]


def test_endpoint_name_goes_into_the_endpoint_config() -> None:
    peer = make_peer()
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS, endpoint_name="my bot")
    peer.run(session.connect())
    assert json_body(peer.sent[4])["privateInfo"] == {"epname": "my bot"}


def test_connect_as_a_guest() -> None:
    peer = make_peer()
    join = f"https://join.skype.com/{DEFAULT_MEETING_ID}"
    session = Session(peer.emulator.hosts, credentials=GuestCredentials(join, "Alice"))
    state = peer.run(session.connect())
    assert peer.routes == ["join_page", "meeting", "join_thread", "profile", *REGISTER]
    assert state.guest is True
    assert state.user_id is not None
    assert state.user_id.startswith("guest:alice_")
    assert peer.emulator.guests() == (state.user_id,)


def test_a_guest_login_again_is_a_new_guest_and_starts_afresh() -> None:
    peer = make_peer()
    join = f"https://join.skype.com/{DEFAULT_MEETING_ID}"
    session = Session(peer.emulator.hosts, credentials=GuestCredentials(join, "Alice"))
    peer.run(session.connect())
    first = session.state
    peer.clock.advance(DAY)
    peer.clear()
    peer.run(session.connect())
    assert peer.routes == ["join_page", "meeting", "join_thread", "profile", *REGISTER]
    assert session.user_id != first.user_id
    assert session.state.guest is True
    assert session.state.endpoints == (session.state.endpoint_id,)


def test_a_401_without_credentials_is_a_token_error() -> None:
    peer = make_peer()
    donor = connected(peer)
    session = Session(peer.emulator.hosts, state=donor.state)
    peer.set_scenario(faults=(Fault("ping", 401),))
    with pytest.raises(SkypeTokenException, match="no credentials"):
        peer.run(session.ping())
    assert peer.routes == ["ping"]


def test_connect_with_a_saved_token_but_no_user_id_fetches_it() -> None:
    """A SkPy token file gives a Skype token without the user id: one profile request."""
    peer = make_peer()
    donor = connected(peer)
    state = SessionState(skype_token=donor.state.skype_token)
    session = Session(peer.emulator.hosts, state=state)  # no credentials needed
    peer.run(session.connect())
    assert peer.routes == ["profile", *REGISTER]
    assert session.user_id == SKYPE_NAME
    assert session.state.guest is False


def test_fetching_the_user_id_on_connect_follows_the_401_rule() -> None:
    peer = make_peer()
    donor = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    peer.run(donor.skype_token())
    peer.set_scenario(faults=(Fault("profile", 401),))
    peer.clear()
    session = Session(
        peer.emulator.hosts,
        credentials=CREDENTIALS,
        state=SessionState(skype_token=donor.state.skype_token),
    )
    peer.run(session.connect())
    # The 401 on the profile: one login (which fetches the user id itself), then once more.
    assert peer.routes == ["profile", *SOAP, "profile", *REGISTER]
    assert session.user_id == SKYPE_NAME


# -- secrets never in a repr ------------------------------------------------------------------

SECRET_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="\x85"
)


@given(text=st.text(SECRET_CHARS, min_size=8, max_size=40))
def test_repr_never_shows_the_password_or_the_tokens(text: str) -> None:
    password = "\u00a7" + text  # a mark no repr holds, so a hit is a leak, not a coincidence
    peer = make_peer(account=Account(password=password))
    credentials = Credentials(EMAIL, password)
    session = Session(peer.emulator.hosts, credentials=lambda: credentials)
    peer.run(session.connect())
    listing = session.conversations()
    peer.run(listing.next_page())
    token = session.state.skype_token
    reg = session.registration
    assert token is not None
    assert reg is not None
    secrets = [password, token.token, reg.token.token, reg.token.token.partition("=")[2]]
    shown = [
        repr(session),
        str(session),
        repr(session.state),
        repr(reg),
        repr(listing),
        repr(credentials),
    ]
    for text in shown:
        for secret in secrets:
            assert secret not in text
    assert password not in session.snapshot().decode("utf-8")


@given(
    skype=st.text(SECRET_CHARS, min_size=8, max_size=60).map("\u00a7s".__add__),
    registration=st.text(SECRET_CHARS, min_size=8, max_size=60).map("\u00a7r".__add__),
    password=st.text(SECRET_CHARS, min_size=8, max_size=60).map("\u00a7p".__add__),
)
def test_repr_of_any_state_hides_random_secrets(
    skype: str, registration: str, password: str
) -> None:
    later = T0 + dt.timedelta(days=1)
    state = SessionState(
        user_id="live:fred",
        skype_token=SkypeToken(skype, later),
        registration=Registration(RegistrationToken(registration, later), CLIENT_S, "{ab-12}"),
        endpoints=("{ab-12}",),
    )
    session = Session(credentials=Credentials(EMAIL, password), state=state)
    assert repr(session) == (
        "Session(user_id='live:fred', logged_in=True, registered=True, guest=False)"
    )
    for text in (repr(session), repr(session.state), repr(session.conversations())):
        assert skype not in text
        assert registration not in text
        assert password not in text


# -- credentials --------------------------------------------------------------------------------


def test_credentials_callable_is_asked_only_when_a_login_is_due() -> None:
    peer = make_peer(Scenario(token_lifetime=2 * 3600, registration_lifetime=3600))
    asked: list[int] = []

    def source() -> Credentials:
        asked.append(1)
        return CREDENTIALS

    session = Session(peer.emulator.hosts, credentials=source)
    assert asked == []  # not at construction
    peer.run(session.connect())
    assert len(asked) == 1
    peer.run(session.connect())
    peer.run(session.ping())
    assert len(asked) == 1
    peer.clock.advance(3600 - LEEWAY_SECONDS)  # the registration is due, the login is not
    peer.clear()
    peer.run(session.ping())
    assert peer.routes == [*REGISTER, "ping"]
    assert len(asked) == 1
    peer.clock.advance(3600)  # now the Skype token is due too
    peer.clear()
    peer.run(session.connect())
    assert peer.routes == SOAP + REGISTER
    assert len(asked) == 2


def test_credentials_callable_returning_none_is_a_token_error() -> None:
    peer = make_peer()
    session = Session(peer.emulator.hosts, credentials=lambda: None)
    with pytest.raises(SkypeTokenException, match="no credentials"):
        peer.run(session.connect())
    assert peer.sent == []


def test_credentials_of_the_wrong_type_are_refused_before_sending() -> None:
    peer = make_peer()
    session = Session(peer.emulator.hosts, credentials=lambda: ("fred", "pw"))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="tuple"):
        peer.run(session.connect())
    assert peer.sent == []


def test_no_credentials_and_no_token_is_a_token_error() -> None:
    peer = make_peer()
    session = Session(peer.emulator.hosts)
    with pytest.raises(SkypeTokenException, match="no valid Skype token, and no credentials"):
        peer.run(session.connect())
    assert peer.sent == []


def test_no_credentials_and_an_expiring_token_is_a_token_error() -> None:
    peer = make_peer()
    donor = connected(peer)
    session = Session(peer.emulator.hosts, state=donor.state)
    peer.clock.advance(DAY - LEEWAY_SECONDS)
    with pytest.raises(SkypeTokenException):
        peer.run(session.connect())
    with pytest.raises(SkypeTokenException):
        peer.run(session.ping())  # the registration is due, and so is the login it needs
    assert peer.sent == []
    assert session.state == donor.state


def test_a_different_account_after_relogin_resets_the_state() -> None:
    peer = make_peer()
    old_reg = Registration(
        RegistrationToken("registrationToken=Qk9CLXJlZw==", T0 + dt.timedelta(hours=1)),
        CLIENT_S,
        "{b0b00000-0000-4000-8000-000000000000}",
    )
    old = SessionState(
        user_id="live:bob",
        skype_token=SkypeToken("bob-skype-token", T0 + dt.timedelta(minutes=1)),
        registration=old_reg,
        endpoints=("{b0b00000-0000-4000-8000-000000000000}",),
        paging=PagingState({f"GET {CLIENT_S}{CONVERSATIONS}": f"{CLIENT_S}{CONVERSATIONS}?s=b"}),
    )
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS, state=old)
    peer.run(session.connect())
    assert peer.routes == [*SOAP, *REGISTER]
    [endpoint] = peer.emulator.endpoint_ids()
    state = session.state
    assert state.user_id == SKYPE_NAME
    assert state.registration is not None
    assert state.registration.endpoint_id == endpoint
    assert state.endpoints == (endpoint,)
    assert state.paging == PagingState()
    assert all("Qk9C" not in (r.header("RegistrationToken") or "") for r in peer.sent)


def test_a_401_that_logs_in_as_another_account_drops_the_old_registration() -> None:
    peer = make_peer()
    old = SessionState(
        user_id="live:bob",
        skype_token=SkypeToken("bob-skype-token", T0 + dt.timedelta(hours=2)),
        registration=Registration(
            RegistrationToken("registrationToken=Qk9CLXJlZw==", T0 + dt.timedelta(hours=1)),
            CLIENT_S,
            "{b0b00000-0000-4000-8000-000000000000}",
        ),
    )
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS, state=old)
    response = peer.run(session.ping())
    assert response.status == 201
    # The emulator does not know bob's registration: 401, login as fred, register, ping again.
    assert peer.routes == ["ping", *SOAP, *REGISTER, "ping"]
    assert session.user_id == SKYPE_NAME
    assert peer.sent[-1].header("RegistrationToken") == session.state.registration.token.token  # type: ignore[union-attr]


# -- expiry ------------------------------------------------------------------------------------


def test_skype_token_expiry_uses_the_refresh_leeway() -> None:
    peer = make_peer(Scenario(token_lifetime=3600))
    session = connected(peer)
    reg = session.registration
    peer.clock.advance(3600 - LEEWAY_SECONDS - 1)  # one second outside the leeway
    peer.run(session.connect())
    assert peer.sent == []
    peer.clock.advance(1)  # exactly at the leeway: due
    peer.run(session.connect())
    assert peer.routes == SOAP  # a fresh login; the registration is still good
    assert session.registration is reg
    token = session.state.skype_token
    assert token is not None
    assert token.expiry == peer.clock() + dt.timedelta(seconds=3600)


def test_a_short_lived_token_is_renewed_at_half_its_life_not_at_every_call() -> None:
    # The leeway is min(REFRESH_LEEWAY, lifetime / 2), the lifetime being the token's expiry
    # minus the time the session received it. A flat 5 minutes made a 60 s token (and a 60 s
    # registration) count as expired at once, so every call logged in and registered again.
    peer = make_peer(Scenario(token_lifetime=60, registration_lifetime=60))
    session = connected(peer)
    for _ in range(100):
        peer.clock.advance(0.25)  # 25 s in all: within the first half of both lives
        peer.run(session.ping())
    assert peer.routes == ["ping"] * 100

    peer.clear()
    peer.clock.advance(5)  # 30 s after the login: half of the lifetime left, due
    peer.run(session.ping())
    assert peer.routes == [*SOAP, *REGISTER, "ping"]
    peer.clear()
    peer.clock.advance(29)  # the new tokens are 29 s old: not due yet
    peer.run(session.ping())
    assert peer.routes == ["ping"]


@pytest.mark.parametrize(
    ("lifetime", "leeway"),
    [
        (None, REFRESH_LEEWAY),
        (dt.timedelta(seconds=60), dt.timedelta(seconds=30)),
        (2 * REFRESH_LEEWAY, REFRESH_LEEWAY),
        (dt.timedelta(days=1), REFRESH_LEEWAY),
        (dt.timedelta(0), dt.timedelta(0)),
        (dt.timedelta(seconds=-5), dt.timedelta(0)),
    ],
)
def test_the_leeway_is_at_most_half_the_lifetime(
    lifetime: dt.timedelta | None, leeway: dt.timedelta
) -> None:
    assert refresh_leeway(lifetime) == leeway


def test_a_lifetime_must_be_a_timedelta() -> None:
    with pytest.raises(LocalProtocolError, match="lifetime is a timedelta, not int"):
        refresh_leeway(60)  # type: ignore[arg-type]


def test_a_token_of_unknown_lifetime_keeps_the_full_leeway() -> None:
    # A token the session did not receive itself (given in a state, or loaded from a snapshot)
    # has no known issue time.
    peer = make_peer()
    expiry = T0 + REFRESH_LEEWAY + dt.timedelta(seconds=1)
    state = SessionState(user_id=SKYPE_NAME, skype_token=SkypeToken("given-token", expiry))
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS, state=state)
    assert peer.run(session.skype_token()).token == "given-token"
    peer.clock.advance(1)
    assert peer.run(session.skype_token()).token != "given-token"
    assert peer.routes == SOAP


def test_call_with_token_logs_in_before_the_call_when_the_token_is_due() -> None:
    peer = make_peer(Scenario(token_lifetime=3600))
    session = connected(peer)
    old = session.state.skype_token
    assert old is not None
    peer.on(SCRIPTED, ok())
    peer.clock.advance(3600 - LEEWAY_SECONDS)
    sent_token = peer.run(session.call_with_token(echo))
    assert peer.routes == [*SOAP, "?"]
    assert sent_token != old.token
    assert peer.sent[-1].header("X-SkypeToken") == sent_token


def test_registration_due_registers_again_before_the_call() -> None:
    peer = make_peer(Scenario(registration_lifetime=3600))
    session = connected(peer)
    old = session.registration
    assert old is not None
    peer.clock.advance(3600 - LEEWAY_SECONDS)
    peer.run(session.ping())
    assert peer.routes == [*REGISTER, "ping"]
    new = session.registration
    assert new is not None
    assert new.endpoint_id != old.endpoint_id
    assert peer.sent[-1].header("RegistrationToken") == new.token.token
    assert session.state.endpoints == peer.emulator.endpoint_ids()


def test_registration_token_calls_do_not_check_the_skype_token() -> None:
    """docs/protocol.md §7.3: a RegistrationToken call checks only the registration token."""
    peer = make_peer(Scenario(token_lifetime=3600))
    session = connected(peer)
    peer.clock.advance(2 * 3600)  # the Skype token has expired; the registration has not
    peer.run(session.ping())
    assert peer.routes == ["ping"]


def test_both_tokens_expired_log_in_once_and_register_once_not_twice_as_skpy() -> None:
    """docs/protocol.md §7.4: SkPy's nested re-login registers inside the login and then again
    (SOAP: 2 login + profile + 2 x 3 registration + the call = 10 requests, two new endpoints).
    The session logs in once and registers once: 7 requests, one new endpoint."""
    peer = make_peer()
    session = connected(peer)
    peer.clock.advance(DAY + 1)
    peer.run(session.ping())
    assert peer.routes == [*SOAP, *REGISTER, "ping"]
    assert len(peer.sent) == 7
    assert len(peer.emulator.endpoint_ids()) == 2  # the lapsed one and exactly one new one


# -- recovery on an endpoint call ----------------------------------------------------------------


def test_401_on_an_endpoint_call_logs_in_registers_and_retries_once() -> None:
    peer = make_peer(Scenario(faults=(Fault("ping", 401),)))
    session = connected(peer)
    old_token = session.state.skype_token
    response = peer.run(session.ping())
    assert response.status == 201
    assert peer.routes == ["ping", *SOAP, *REGISTER, "ping"]
    assert session.state.skype_token != old_token
    assert peer.sent[-1].header("RegistrationToken") == session.registration.token.token  # type: ignore[union-attr]


def test_a_second_401_raises_without_further_attempts() -> None:
    peer = make_peer(Scenario(faults=(Fault("ping", 401, times=2),)))
    session = connected(peer)
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.ping())
    assert caught.value.status == 401
    assert type(caught.value) is SkypeApiException
    assert peer.routes == ["ping", *SOAP, *REGISTER, "ping"]


@pytest.mark.parametrize("status", [404, 729])
def test_404_or_729_registers_again_and_retries_once(status: int) -> None:
    peer = make_peer(Scenario(faults=(Fault("ping", status),)))
    session = connected(peer)
    old = session.registration
    response = peer.run(session.ping())
    assert response.status == 201
    assert peer.routes == ["ping", *REGISTER, "ping"]
    assert session.registration != old
    assert peer.sent[-1].header("RegistrationToken") == session.registration.token.token  # type: ignore[union-attr]


@pytest.mark.parametrize(("status", "kind"), [(404, SkypeApiException), (729, EndpointGoneError)])
def test_a_second_404_or_729_raises(status: int, kind: type[Exception]) -> None:
    peer = make_peer(Scenario(faults=(Fault("ping", status, times=2),)))
    session = connected(peer)
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.ping())
    assert type(caught.value) is kind
    assert caught.value.status == 404
    assert peer.routes == ["ping", *REGISTER, "ping"]


def test_429_propagates_at_once() -> None:
    peer = make_peer(Scenario(faults=(Fault("ping", 429, retry_after=7),)))
    session = connected(peer)
    with pytest.raises(SkypeRateLimitException) as caught:
        peer.run(session.ping())
    assert caught.value.retry_after == 7.0
    assert peer.routes == ["ping"]


@pytest.mark.parametrize("status", [400, 403, 500, 503])
def test_other_errors_propagate_at_once(status: int) -> None:
    peer = make_peer(Scenario(faults=(Fault("subscribe", status),)))
    session = connected(peer)
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.subscribe())
    assert caught.value.status == status
    assert peer.routes == ["subscribe"]


def test_401_then_404_on_one_call_uses_both_recoveries() -> None:
    peer = make_peer(Scenario(faults=(Fault("ping", 401), Fault("ping", 404))))
    session = connected(peer)
    peer.run(session.ping())
    assert peer.routes == ["ping", *SOAP, *REGISTER, "ping", *REGISTER, "ping"]
    assert len(peer.sent) == MAX_CALL_ATTEMPTS + len(SOAP) + 2 * len(REGISTER)


def test_404_then_401_on_one_call_uses_both_recoveries() -> None:
    peer = make_peer(Scenario(faults=(Fault("ping", 404), Fault("ping", 401))))
    session = connected(peer)
    peer.run(session.ping())
    assert peer.routes == ["ping", *REGISTER, "ping", *SOAP, *REGISTER, "ping"]


def test_401_then_404_then_anything_raises_the_third_error() -> None:
    peer = make_peer(Scenario(faults=(Fault("ping", 401), Fault("ping", 404), Fault("ping", 401))))
    session = connected(peer)
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.ping())
    assert caught.value.status == 401
    assert peer.routes.count("ping") == MAX_CALL_ATTEMPTS


def test_401_during_the_handshake_logs_in_once_and_posts_again() -> None:
    peer = make_peer()
    session = connected(peer)
    peer.set_scenario(faults=(Fault("register", 401),))
    old_token = session.state.skype_token
    peer.run(session.reregister())
    assert peer.routes == ["register", *SOAP, *REGISTER]
    token = session.state.skype_token
    assert token is not None
    assert token != old_token
    assert peer.sent[4].header("Authentication") == f"skypetoken={token.token}"


def test_a_second_401_during_the_handshake_raises_and_keeps_the_old_registration() -> None:
    peer = make_peer()
    session = connected(peer)
    peer.set_scenario(faults=(Fault("register", 401, times=2),))
    old = session.registration
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.reregister())
    assert caught.value.status == 401
    assert peer.routes == ["register", *SOAP, "register"]
    assert session.registration is old


def test_401_during_the_first_handshake_logs_in_a_second_time() -> None:
    peer = make_peer(Scenario(faults=(Fault("register", 401),)))
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    peer.run(session.connect())
    assert peer.routes == [*SOAP, "register", *SOAP, *REGISTER]


def test_a_registration_answer_without_token_is_retried_once_after_a_pause() -> None:
    peer = make_peer()
    session = connected(peer)
    peer.set_scenario(faults=(Fault("register", 404),))
    before = peer.clock()
    peer.run(session.reregister())
    assert peer.routes == ["register", *REGISTER]
    assert peer.clock() - before == dt.timedelta(seconds=1)


# -- call_with_token -----------------------------------------------------------------------------


def test_call_with_token_401_logs_in_and_retries_with_the_new_token() -> None:
    peer = make_peer()
    session = connected(peer)
    old = session.state.skype_token
    assert old is not None
    peer.on(SCRIPTED, error(401), ok())
    sent_token = peer.run(session.call_with_token(echo))
    assert peer.routes == ["?", *SOAP, "?"]
    assert peer.sent[0].header("X-SkypeToken") == old.token
    assert sent_token == peer.sent[-1].header("X-SkypeToken") != old.token
    assert session.registration is not None  # no registration: this call needs none


def test_call_with_token_second_401_raises() -> None:
    peer = make_peer()
    session = connected(peer)
    peer.on(SCRIPTED, error(401), error(401))
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.call_with_token(echo))
    assert caught.value.status == 401
    assert peer.routes == ["?", *SOAP, "?"]


@pytest.mark.parametrize("status", [403, 404, 429, 500])
def test_call_with_token_other_errors_propagate_at_once(status: int) -> None:
    peer = make_peer()
    session = connected(peer)
    peer.on(SCRIPTED, error(status))
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.call_with_token(echo))
    assert caught.value.status == status
    assert isinstance(caught.value, SkypeRateLimitException) == (status == 429)
    assert peer.routes == ["?"]


# -- poll ----------------------------------------------------------------------------------------


def test_poll_does_not_register_again_on_a_plain_404() -> None:
    peer = make_peer()
    session = connected(peer)
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.poll(hold=5))  # not subscribed: "Subscription not found"
    assert caught.value.status == 404
    assert not isinstance(caught.value, EndpointGoneError)
    assert peer.routes == ["poll"]


def test_poll_registers_again_on_729() -> None:
    peer = make_peer()
    session = connected(peer)
    poll_url = f"{CLIENT_S}/users/ME/endpoints/SELF/subscriptions/0/poll"
    peer.on(poll_url, error(404, 729), ok({"eventMessages": []}))
    response = peer.run(session.poll(hold=5))
    assert response.status == 200
    assert peer.routes == ["poll", *REGISTER, "poll"]
    assert peer.sent[0].timeout == 20.0


def test_poll_after_729_on_a_fresh_unsubscribed_endpoint_leaves_the_404_to_the_loop() -> None:
    peer = make_peer(Scenario(faults=(Fault("poll", 729),)))
    session = connected(peer)
    peer.run(session.subscribe())
    peer.clear()
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.poll(hold=5))
    assert caught.value.status == 404
    assert peer.routes == ["poll", *REGISTER, "poll"]


def test_poll_401_follows_the_401_rule() -> None:
    peer = make_peer(Scenario(faults=(Fault("poll", 401),)))
    session = connected(peer)
    peer.run(session.subscribe())
    peer.clear()
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.poll(hold=5))  # the retry reaches a fresh, unsubscribed endpoint
    assert caught.value.status == 404
    assert peer.routes == ["poll", *SOAP, *REGISTER, "poll"]


# -- the other operations ------------------------------------------------------------------------


def test_operations_send_what_the_endpoint_module_builds() -> None:
    peer = make_peer()
    session = connected(peer)
    peer.run(session.subscribe())
    peer.run(session.subscribe_presence(["8:alice.smith", "live:bob_1"]))
    peer.run(session.set_presence(Status.Busy))
    peer.run(session.configure())
    ids = peer.run(session.list_endpoints())
    peer.run(session.mark_consumed("8:alice.smith", "1;2;3"))
    assert peer.routes == [
        "subscribe",
        "presence_subscribe",
        "set_presence",
        "config",
        "endpoints",
        "consumption",
    ]
    assert ids == list(peer.emulator.endpoint_ids())
    assert session.state.endpoints == tuple(ids)
    assert peer.emulator.presence() == "Busy"
    assert peer.emulator.horizon("8:alice.smith") == "1;2;3"
    endpoint = session.state.endpoint_id
    assert peer.emulator.subscribed(endpoint)
    wire = endpoint.replace("{", "%7B").replace("}", "%7D")
    assert peer.sent[3].url == (
        f"{CLIENT_S}/users/ME/endpoints/{wire}/presenceDocs/messagingService"
    )
    assert all(
        r.header("RegistrationToken") == session.registration.token.token  # type: ignore[union-attr]
        for r in peer.sent
    )


def test_ack_acknowledges_a_trusted_url_and_refuses_another() -> None:
    peer = make_peer()
    session = connected(peer)
    peer.run(session.subscribe())
    response = peer.run(session.poll(hold=5))
    events = decode_events(response.body)
    url = next(e.ack_url for e in events if e.ack_url)
    assert url is not None
    peer.clear()
    assert peer.run(session.ack(url)) is True
    assert peer.routes == ["ack"]
    assert len(peer.emulator.acknowledged) == 1
    peer.clear()
    assert peer.run(session.ack("https://evil.example/v1/users/ME/ack")) is False
    assert peer.sent == []


def test_ack_of_an_unknown_message_raises_without_registering_again() -> None:
    peer = make_peer()
    session = connected(peer)
    endpoints_before = peer.emulator.endpoint_ids()
    peer.clear()
    unknown = f"{CLIENT_S}/users/ME/conversations/ALL/messages/123/ack"
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.ack(unknown))
    assert caught.value.status == 404
    assert peer.routes == ["ack"]
    assert peer.emulator.endpoint_ids() == endpoints_before


def test_subscribe_presence_refuses_one_string() -> None:
    peer = make_peer()
    session = connected(peer)
    with pytest.raises(LocalProtocolError):
        peer.run(session.subscribe_presence("8:alice.smith"))
    assert peer.sent == []


# -- registration redirects ------------------------------------------------------------------


def test_registration_redirect_keeps_the_new_messenger() -> None:
    peer = make_peer(Scenario(host_redirect=True))
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    peer.run(session.connect())
    assert peer.routes == [*SOAP, "register", *REGISTER]
    assert peer.sent[3].url == f"{CLIENT_S}/users/ME/endpoints"
    assert peer.sent[4].url == f"{DB3}/users/ME/endpoints"
    assert session.registration is not None
    assert session.registration.messenger == DB3
    assert all(r.url.startswith(DB3) for r in peer.sent[4:])
    peer.clear()
    peer.run(session.ping())
    assert [r.url for r in peer.sent] == [f"{DB3}/users/ME/endpoints/SELF/active"]
    peer.clear()
    peer.run(session.reregister())  # starts from the learnt host: no redirect this time
    assert peer.routes == REGISTER
    assert peer.sent[0].url == f"{DB3}/users/ME/endpoints"


def test_registration_redirect_drops_the_paging_links_under_the_old_messenger() -> None:
    peer = make_peer()
    session = connected(peer)
    peer.run(session.conversations().next_page())
    elsewhere = "GET https://api.skype.com/users/ME/contacts"
    paging = session.state.paging.with_link(
        "GET", "https://api.skype.com/users/ME/contacts", "https://api.skype.com/c?s=1"
    )
    session.state = attrs.evolve(session.state, paging=paging)
    assert session.state.paging.link("GET", CLIENT_S + CONVERSATIONS) is not None
    peer.set_scenario(host_redirect=True)
    peer.clear()
    peer.run(session.reregister())
    assert peer.routes == ["register", *REGISTER]
    assert session.registration is not None
    assert session.registration.messenger == DB3
    assert list(session.state.paging.links) == [elsewhere]
    # The listing starts over under the new messenger.
    peer.clear()
    items = peer.run(session.conversations().next_page())
    assert [item["id"] for item in items] == ["8:alice.smith", _PROJECT_X]
    assert peer.sent[0].url.startswith(f"{DB3}{CONVERSATIONS}?startTime=0&")


def test_registration_redirect_to_an_untrusted_host_sends_nothing_there() -> None:
    peer = make_peer(Scenario(foreign_location=True))
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    with pytest.raises(UntrustedHostError, match=r"evil\.example"):
        peer.run(session.connect())
    assert peer.routes == [*SOAP, "register"]
    assert all("evil.example" not in r.url for r in peer.sent)
    assert session.registration is None


def test_untrusted_redirect_on_reregistration_keeps_the_old_registration() -> None:
    peer = make_peer()
    session = connected(peer)
    old = session.state
    peer.set_scenario(foreign_location=True)
    with pytest.raises(UntrustedHostError):
        peer.run(session.reregister())
    assert peer.routes == ["register"]
    assert session.state == old


def test_registration_redirect_with_an_override_profile() -> None:
    hosts = Hosts(
        overrides={
            host: f"http://127.0.0.1:9/{host}"
            for host in (
                "login.live.com",
                "edge.skype.com",
                "api.skype.com",
                "client-s.gateway.messenger.live.com",
                "db3-client-s.gateway.messenger.live.com",
            )
        }
    )
    peer = make_peer(Scenario(host_redirect=True), hosts=hosts)
    session = Session(hosts, credentials=CREDENTIALS)
    peer.run(session.connect())
    assert session.registration is not None
    assert session.registration.messenger == (
        "http://127.0.0.1:9/db3-client-s.gateway.messenger.live.com/v1"
    )
    assert all(hosts.is_trusted(r.url) for r in peer.sent)


# -- listings ------------------------------------------------------------------------------------

_PROJECT_X = "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype"
_BOOK_CLUB = "19:5e2b8c1d9a7f4e3b6c0d1a2f3e4b5c6d@thread.skype"
ALL_CONVERSATIONS = ["8:alice.smith", _PROJECT_X, "8:live:bob_1", "28:concierge", _BOOK_CLUB]


def test_listing_pages_until_an_empty_page() -> None:
    peer = make_peer()
    session = connected(peer)
    listing = session.conversations()
    pages = list(iterate_pages(listing, peer, clock=peer.clock, sleep=peer.clock.advance))
    assert [[item["id"] for item in page] for page in pages] == [
        ALL_CONVERSATIONS[0:2],
        ALL_CONVERSATIONS[2:4],
        ALL_CONVERSATIONS[4:],
    ]
    assert peer.routes == ["conversations"] * 4  # the fourth answer is the empty page
    assert peer.sent[0].url.startswith(f"{CLIENT_S}{CONVERSATIONS}?startTime=0&view=")
    for previous, following in zip(peer.answers, peer.sent[1:], strict=False):
        assert following.url == previous.json()["_metadata"]["syncState"]
    assert listing.finished is True
    assert listing.pages == 4
    assert repr(listing) == f"Listing(GET {CONVERSATIONS}, pages=4, finished=True)"
    peer.clear()
    assert peer.run(listing.next_page()) is None
    assert peer.sent == []


def test_listing_state_lives_in_the_session() -> None:
    peer = make_peer()
    session = connected(peer)
    peer.run(session.conversations().next_page())
    link = peer.answers[0].json()["_metadata"]["syncState"]
    assert session.state.paging.links == {f"GET {CLIENT_S}{CONVERSATIONS}": link}
    # A new listing of the same path goes on from the link.
    peer.clear()
    items = peer.run(session.conversations().next_page())
    assert [item["id"] for item in items] == ALL_CONVERSATIONS[2:4]
    assert peer.sent[0].url == link


def test_session_paging_is_the_states_links() -> None:
    links = PagingState({"GET https://x.skype.com/l": "https://x.skype.com/l?s=1"})
    session = Session(state=SessionState(user_id="live:fred", paging=links))
    assert session.paging is session.state.paging
    session.paging = PagingState()
    assert session.state == SessionState(user_id="live:fred")


def test_listing_stops_at_max_pages() -> None:
    peer = make_peer()
    session = connected(peer)
    listing = session.conversations(max_pages=2)
    pages = list(iterate_pages(listing, peer, clock=peer.clock, sleep=peer.clock.advance))
    assert [len(page) for page in pages] == [2, 2]
    assert peer.routes == ["conversations", "conversations"]
    assert listing.finished is True


def test_listing_ends_at_a_page_without_a_new_link() -> None:
    peer = make_peer()
    session = connected(peer)
    url = f"{CLIENT_S}/users/ME/things"
    peer.on(url, ok({"things": [1, 2]}))
    listing = session.listing("/users/ME/things", items_key="things")
    assert peer.run(listing.next_page()) == [1, 2]
    assert listing.finished is True
    assert peer.run(listing.next_page()) is None
    assert peer.routes == ["?"]


def test_listing_refuses_a_sync_state_link_to_an_untrusted_host() -> None:
    peer = make_peer()
    session = connected(peer)
    listing = session.conversations()
    peer.run(listing.next_page())
    link = session.state.paging.link("GET", CLIENT_S + CONVERSATIONS)
    peer.set_scenario(foreign_sync_state=True)
    peer.clear()
    with pytest.raises(UntrustedHostError, match=r"evil\.example"):
        peer.run(listing.next_page())
    assert peer.routes == ["conversations"]  # the answer that named it; nothing went there
    assert session.state.paging.link("GET", CLIENT_S + CONVERSATIONS) == link
    assert listing.pages == 1
    assert listing.finished is False
    peer.set_scenario(foreign_sync_state=False)
    items = peer.run(listing.next_page())  # the same page again, from the kept link
    assert [item["id"] for item in items] == ALL_CONVERSATIONS[2:4]


def test_a_link_the_server_no_longer_knows_is_forgotten_and_the_listing_starts_over() -> None:
    peer = make_peer()
    session = connected(peer)
    url = CLIENT_S + CONVERSATIONS
    stale = f"{url}?syncState=forgotten&pageSize=2"
    session.state = attrs.evolve(
        session.state, paging=session.state.paging.with_link("GET", url, stale)
    )
    with pytest.raises(SkypeApiException) as caught:
        peer.run(session.conversations().next_page())
    assert caught.value.status == 400
    assert session.state.paging.link("GET", url) is None
    peer.clear()
    items = peer.run(session.conversations().next_page())
    assert [item["id"] for item in items] == ALL_CONVERSATIONS[:2]
    assert peer.sent[0].url.startswith(f"{url}?startTime=0&view=")


def test_a_link_answered_404_is_dropped_and_the_retry_starts_over() -> None:
    peer = make_peer()
    session = connected(peer)
    url = CLIENT_S + CONVERSATIONS
    stale = f"{url}?syncState=expired"
    session.state = attrs.evolve(
        session.state, paging=session.state.paging.with_link("GET", url, stale)
    )
    peer.on(stale, HttpResponse(404, (), b"{}"))
    items = peer.run(session.conversations().next_page())
    assert [item["id"] for item in items] == ALL_CONVERSATIONS[:2]
    assert peer.routes == ["conversations", *REGISTER, "conversations"]


def test_restart_forgets_the_link_and_lists_from_the_start() -> None:
    peer = make_peer()
    session = connected(peer)
    listing = session.conversations()
    pages = list(iterate_pages(listing, peer, clock=peer.clock, sleep=peer.clock.advance))
    assert listing.finished is True
    assert session.state.paging.link("GET", CLIENT_S + CONVERSATIONS) is not None
    listing.restart()
    assert (listing.pages, listing.finished) == (0, False)
    assert session.state.paging.link("GET", CLIENT_S + CONVERSATIONS) is None
    again = list(iterate_pages(listing, peer, clock=peer.clock, sleep=peer.clock.advance))
    assert again == pages


def test_listing_arguments_are_checked() -> None:
    session = Session(credentials=CREDENTIALS)
    with pytest.raises(LocalProtocolError, match="starts with '/'"):
        session.listing("users/ME/conversations", items_key="conversations")
    with pytest.raises(LocalProtocolError, match="max_pages"):
        session.conversations(max_pages=0)
    assert isinstance(session.conversations(), Listing)


def test_listing_recovers_from_729_like_any_endpoint_call() -> None:
    peer = make_peer(Scenario(faults=(Fault("conversations", 729),)))
    session = connected(peer)
    items = peer.run(session.conversations().next_page())
    assert [item["id"] for item in items] == ALL_CONVERSATIONS[:2]
    assert peer.routes == ["conversations", *REGISTER, "conversations"]


def test_snapshot_round_trip_resumes_without_traffic() -> None:
    peer = make_peer()
    session = connected(peer)
    peer.run(session.conversations().next_page())
    link = session.state.paging.link("GET", CLIENT_S + CONVERSATIONS)
    data = session.snapshot()
    assert PASSWORD.encode() not in data
    peer.clear()

    resumed = Session.from_snapshot(data, now=peer.clock(), hosts=peer.emulator.hosts)
    assert resumed.state == session.state
    assert load_snapshot(data, now=peer.clock(), hosts=peer.emulator.hosts) == session.state
    peer.run(resumed.connect())
    assert peer.sent == []
    peer.run(resumed.ping())
    assert peer.routes == ["ping"]
    peer.clear()
    items = peer.run(resumed.conversations().next_page())
    assert [item["id"] for item in items] == ALL_CONVERSATIONS[2:4]
    assert [r.url for r in peer.sent] == [link]


def test_snapshot_of_a_lapsed_registration_resumes_with_one_registration() -> None:
    peer = make_peer(Scenario(registration_lifetime=3600))
    session = connected(peer)
    data = session.snapshot()
    peer.clock.advance(3600)
    resumed = Session.from_snapshot(data, now=peer.clock(), hosts=peer.emulator.hosts)
    assert resumed.registration is None
    peer.run(resumed.ping())
    assert peer.routes == [*REGISTER, "ping"]


# -- shared refreshes under run_async ------------------------------------------------------------


async def test_concurrent_connects_share_one_login_and_one_registration() -> None:
    peer = make_peer()
    transport = AsyncPeer(peer)
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    states = await asyncio.gather(*(transport.run(session.connect()) for _ in range(5)))
    assert peer.routes == [*SOAP, *REGISTER]
    assert all(state is session.state for state in states)
    assert len(peer.emulator.endpoint_ids()) == 1


async def test_concurrent_calls_with_expired_tokens_share_one_refresh() -> None:
    peer = make_peer()
    transport = AsyncPeer(peer)
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    await transport.run(session.connect())
    peer.clock.advance(DAY + 1)
    peer.clear()
    calls = [transport.run(session.ping()) for _ in range(4)]
    calls += [transport.run(session.connect()) for _ in range(2)]
    await asyncio.gather(*calls)
    assert sorted(peer.routes) == sorted([*SOAP, *REGISTER, *["ping"] * 4])
    assert peer.routes[: len(SOAP)] == SOAP


async def test_concurrent_401s_share_one_login_and_one_registration() -> None:
    peer = make_peer(Scenario(faults=(Fault("ping", 401, times=4),)))
    transport = AsyncPeer(peer)
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    await transport.run(session.connect())
    peer.clear()
    responses = await asyncio.gather(*(transport.run(session.ping()) for _ in range(4)))
    assert [r.status for r in responses] == [201] * 4
    assert sorted(peer.routes) == sorted([*SOAP, *REGISTER, *["ping"] * 8])


async def test_a_failing_shared_login_is_seen_by_every_waiter() -> None:
    peer = make_peer(Scenario(wrong_password=True))
    transport = AsyncPeer(peer)
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    outcomes = await asyncio.gather(
        *(transport.run(session.connect()) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(o, SkypeAuthException) for o in outcomes)
    assert len({id(o) for o in outcomes}) == 1  # the one failure, shared
    assert peer.routes == ["soap"]
    assert session.state == SessionState()
    # The failure is not cached: the next attempt logs in afresh.
    peer.set_scenario(wrong_password=False)
    peer.clear()
    await transport.run(session.connect())
    assert peer.routes == [*SOAP, *REGISTER]


@pytest.mark.parametrize("cancelled", [0, 2])
async def test_cancelling_one_waiter_does_not_cancel_the_shared_refresh(cancelled: int) -> None:
    """Task 0 started the login; task 2 only waits on it."""
    peer = make_peer()
    transport = AsyncPeer(peer)
    gate = asyncio.Event()
    transport.gates["soap"] = gate
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    tasks = [asyncio.create_task(transport.run(session.connect())) for _ in range(3)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert transport.waiting == ["soap"]  # one login in flight, everyone waiting on it
    tasks[cancelled].cancel()
    await asyncio.sleep(0)
    gate.set()
    states = await asyncio.gather(*(t for i, t in enumerate(tasks) if i != cancelled))
    assert tasks[cancelled].cancelled()
    assert all(state is session.state for state in states)
    assert peer.routes == [*SOAP, *REGISTER]


async def test_concurrent_listings_keep_each_others_links() -> None:
    peer = make_peer()
    transport = AsyncPeer(peer)
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    await transport.run(session.connect())
    messages = "/users/ME/conversations/8:alice.smith/messages"
    await asyncio.gather(
        transport.run(session.conversations().next_page()),
        transport.run(session.listing(messages, items_key="messages").next_page()),
    )
    assert sorted(session.state.paging.links) == [
        f"GET {CLIENT_S}{CONVERSATIONS}",
        f"GET {CLIENT_S}{messages}",
    ]


async def test_a_page_in_flight_during_a_redirecting_reregistration_adds_no_stale_link() -> None:
    peer = make_peer()
    transport = AsyncPeer(peer)
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS)
    await transport.run(session.connect())
    gate = asyncio.Event()
    transport.gates["conversations"] = gate
    page = asyncio.create_task(transport.run(session.conversations().next_page()))
    for _ in range(5):
        await asyncio.sleep(0)
    assert transport.waiting == ["conversations"]
    peer.set_scenario(host_redirect=True)
    await transport.run(session.reregister())
    assert session.registration is not None
    assert session.registration.messenger == DB3
    gate.set()
    await page
    # The page answered under the messenger the session has left: its link is not kept.
    assert session.state.paging == PagingState()


# -- the worst case ------------------------------------------------------------------------------


def _worst_case_401_then_404(redirect: bool, user: str = EMAIL) -> list[str]:
    peer = make_peer(Scenario(faults=(Fault("ping", 401), Fault("ping", 404))))
    session = connected(peer, credentials=Credentials(user, PASSWORD))
    if redirect:
        peer.set_scenario(host_redirect=True)
    peer.run(session.ping())
    return peer.routes


def test_worst_case_of_one_endpoint_call_on_the_reauth_path() -> None:
    """401, then 404, with a SOAP login: 12 requests; 13 when the registration is redirected
    (the second registration starts from the learnt host, so it is not redirected again)."""
    plain = _worst_case_401_then_404(redirect=False)
    assert plain == ["ping", *SOAP, *REGISTER, "ping", *REGISTER, "ping"]
    assert len(plain) == 12
    redirected = _worst_case_401_then_404(redirect=True)
    assert redirected == [
        *["ping", *SOAP, "register", *REGISTER],
        *["ping", *REGISTER],
        "ping",
    ]
    assert len(redirected) == 13


def test_worst_case_with_the_live_login() -> None:
    """The same path with the Live login (six requests with the profile): 15, redirected 16."""
    plain = _worst_case_401_then_404(redirect=False, user=SKYPE_NAME)
    assert plain == ["ping", *LIVE, *REGISTER, "ping", *REGISTER, "ping"]
    assert len(plain) == 15
    assert len(_worst_case_401_then_404(redirect=True, user=SKYPE_NAME)) == 16


def test_worst_case_with_both_tokens_expired_first() -> None:
    """Both tokens lapsed before the call, then 401 and 404: 18 requests, with a redirect 19."""
    counts = []
    for redirect in (False, True):
        peer = make_peer(Scenario(faults=(Fault("ping", 401), Fault("ping", 404))))
        session = connected(peer)
        peer.clock.advance(DAY + 1)
        if redirect:
            peer.set_scenario(host_redirect=True)
        peer.run(session.ping())
        counts.append(len(peer.sent))
        assert peer.routes.count("soap") == 2
        assert peer.routes.count("config") == 3
    assert counts == [18, 19]


# -- trust ---------------------------------------------------------------------------------------


def _token_bearing(req: HttpRequest) -> bool:
    return any(name.lower() in TOKEN_HEADERS for name, _ in req.headers)


def test_every_token_goes_to_a_trusted_host_in_a_busy_session() -> None:
    peer = make_peer(Scenario(host_redirect=True, faults=(Fault("ping", 401), Fault("ping", 729))))
    session = connected(peer)
    peer.run(session.ping())
    list(iterate_pages(session.conversations(), peer, clock=peer.clock))
    peer.clock.advance(DAY + 1)
    peer.run(session.subscribe())
    tokened = [r for r in peer.sent if _token_bearing(r)]
    assert len(tokened) == len(peer.sent) - 2 * peer.routes.count("soap")
    assert all(session.hosts.is_trusted(r.url) for r in tokened)


def test_a_registration_on_an_untrusted_host_is_never_used() -> None:
    """A state handed to the constructor is not checked by ``load_snapshot``: the session checks
    the messaging base itself before any registration-token call."""
    peer = make_peer()
    later = T0 + dt.timedelta(hours=1)
    state = SessionState(
        user_id=SKYPE_NAME,
        skype_token=SkypeToken("skype-token", later),
        registration=Registration(
            RegistrationToken("registrationToken=UkVH", later), "https://evil.example/v1", "{ab}"
        ),
    )
    session = Session(peer.emulator.hosts, credentials=CREDENTIALS, state=state)
    for flow in (session.ping(), session.subscribe(), session.conversations().next_page()):
        with pytest.raises(UntrustedHostError, match=r"evil\.example"):
            peer.run(flow)
    assert peer.sent == []
    assert session.state == state


def test_a_state_saved_under_other_hosts_is_refused_by_an_override_profile() -> None:
    peer = make_peer()
    session = connected(peer)  # real URLs
    hosts = Hosts(overrides={"client-s.gateway.messenger.live.com": "http://127.0.0.1:9/cs"})
    moved = Session(hosts, credentials=CREDENTIALS, state=session.state)
    with pytest.raises(UntrustedHostError):
        peer.run(moved.ping())
    assert peer.sent == []
