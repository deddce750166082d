"""Request construction, auth headers, status checks and the external call (skyproto.calls)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection
from typing import Any, get_args

import pytest
from skyproto.transports import run_sync

from skyproto import (
    Credentials,
    GuestCredentials,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    LoginMethod,
    Now,
    Session,
    SkypeApiException,
    SkypeRateLimitException,
    Stepper,
)
from skyproto._http import SECRET_HEADERS
from skyproto.auth.refresh import refresh_login
from skyproto.calls import (
    DEFAULT_ACCEPTED,
    EXTERNAL_ACCEPTED,
    REGISTRATION_ACCEPTED,
    TIMEOUTS,
    USER_AGENT,
    AuthKind,
    CallKind,
    auth_header,
    build_request,
    call_timeout,
    check_status,
    external_call,
    parse_retry_after,
)
from skyproto.emulator import DEFAULT_ACCOUNT, DEFAULT_MEETING_ID, Emulator
from skyproto.events import decode_events

NOW = dt.datetime(2015, 10, 21, 7, 0, tzinfo=dt.UTC)
HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"  # 28 minutes after NOW
URL = "https://api.skype.com/users/self/profile"

# -- accepted sets and check_status --------------------------------------------------------------


def test_accepted_sets_match_the_protocol() -> None:
    assert frozenset({200, 201, 202, 204, 207}) == DEFAULT_ACCEPTED
    assert frozenset({200, 201, 204, 207}) == EXTERNAL_ACCEPTED
    assert frozenset({200, 201, 404}) == REGISTRATION_ACCEPTED


STATUSES = [200, 201, 202, 204, 207, 301, 400, 401, 403, 404, 409, 500, 503]


@pytest.mark.parametrize(
    "accepted", [DEFAULT_ACCEPTED, EXTERNAL_ACCEPTED, REGISTRATION_ACCEPTED], ids=str
)
@pytest.mark.parametrize("status", STATUSES)
def test_check_status_for_each_accepted_set(accepted: Collection[int], status: int) -> None:
    response = HttpResponse(status, url=URL)
    if status in accepted:
        assert check_status(response, accepted, method="GET", url=URL) is response
        return
    with pytest.raises(SkypeApiException) as caught:
        check_status(response, accepted, method="GET", url=URL)
    assert type(caught.value) is SkypeApiException
    assert caught.value.message == f"{status} response from GET {URL}"
    assert caught.value.response is response


def test_error_message_drops_query_fragment_and_user_info() -> None:
    with pytest.raises(SkypeApiException) as caught:
        check_status(
            HttpResponse(500),
            DEFAULT_ACCEPTED,
            method="post",
            url="https://me:pw@x/y?t=secret#frag",
        )
    assert str(caught.value) == "500 response from POST https://x/y"


def test_error_message_matches_the_reference_client() -> None:
    skpy_conn = pytest.importorskip("skpy.conn")

    class Answer:
        def __init__(self, status: int) -> None:
            self.status_code = status
            self.headers: dict[str, str] = {}
            self.text = ""

    for status in (400, 404, 500):
        connection = skpy_conn.SkypeConnection()
        connection.sess.request = lambda method, url, _s=status, **kw: Answer(_s)
        with pytest.raises(Exception) as reference:
            connection("POST", "https://x/y", params={"q": "1"})
        with pytest.raises(SkypeApiException) as ours:
            check_status(HttpResponse(status), DEFAULT_ACCEPTED, method="POST", url="https://x/y")
        assert ours.value.message == reference.value.args[0]


def test_429_with_retry_after_seconds() -> None:
    response = HttpResponse(429, (("Retry-After", "30"),))
    with pytest.raises(SkypeRateLimitException) as caught:
        check_status(response, DEFAULT_ACCEPTED, method="GET", url=URL)
    assert caught.value.retry_after == 30.0
    assert caught.value.response is response
    assert str(caught.value) == "Rate limit exceeded; retry after 30 s"


def test_429_with_an_http_date_needs_now() -> None:
    response = HttpResponse(429, (("retry-after", HTTP_DATE),))
    with pytest.raises(SkypeRateLimitException) as with_now:
        check_status(response, DEFAULT_ACCEPTED, method="GET", url=URL, now=NOW)
    assert with_now.value.retry_after == 1680.0
    assert str(with_now.value) == "Rate limit exceeded; retry after 1680 s"
    with pytest.raises(SkypeRateLimitException) as without_now:
        check_status(response, DEFAULT_ACCEPTED, method="GET", url=URL)
    assert without_now.value.retry_after is None
    assert str(without_now.value) == "Rate limit exceeded"


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1e3", "\u00b2", "1_0", "inf", "5 s"])
def test_429_with_absent_or_garbage_retry_after(value: str | None) -> None:
    headers = () if value is None else (("Retry-After", value),)
    with pytest.raises(SkypeRateLimitException) as caught:
        check_status(HttpResponse(429, headers), DEFAULT_ACCEPTED, method="GET", url=URL, now=NOW)
    assert caught.value.retry_after is None
    assert str(caught.value) == "Rate limit exceeded"


def test_429_accepted_is_returned() -> None:
    response = HttpResponse(429)
    assert check_status(response, {200, 429}, method="GET", url=URL) is response


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("007", 7.0),
        ("1" + "0" * 400, None),
        ("-1", None),
        ("+1", None),
        ("nan", None),
        ("\u0663", None),  # a non-ASCII digit
        (HTTP_DATE, 1680.0),
        ("Wed, 21 Oct 2015 06:00:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 -0000", 1680.0),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 1680.0),  # the obsolete RFC 850 form
        ("Wed, 32 Oct 2015 07:28:00 GMT", None),
        ("Wed, 21 Oct 99999 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_parse_retry_after_refuses_a_naive_now() -> None:
    with pytest.raises(LocalProtocolError, match="timezone-aware"):
        parse_retry_after(HTTP_DATE, now=dt.datetime(2015, 10, 21))
    assert parse_retry_after(None) is None
    assert parse_retry_after(HTTP_DATE) is None


# -- auth headers and build_request -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "header"),
    [
        (AuthKind.SKYPE_TOKEN, ("X-SkypeToken", "tok")),
        (AuthKind.AUTHORIZE, ("Authorization", "skype_token tok")),
        (AuthKind.REG_TOKEN, ("RegistrationToken", "tok")),
    ],
)
def test_auth_header_for_each_kind(kind: AuthKind, header: tuple[str, str]) -> None:
    assert auth_header(kind, "tok") == header
    assert header[0].lower() in SECRET_HEADERS


def test_build_request_header_order() -> None:
    req = build_request(
        "post",
        f"{URL}?x=1",
        auth=(AuthKind.REG_TOKEN, "registrationToken=abc"),
        params={"y": "a|b"},
        headers={"Accept": "application/json", "Skip": None},
        json={"k": 1},
        timeout=4.0,
    )
    assert req == HttpRequest(
        "POST",
        f"{URL}?x=1&y=a%7Cb",
        (
            ("User-Agent", USER_AGENT),
            ("RegistrationToken", "registrationToken=abc"),
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
        ),
        b'{"k": 1}',
        4.0,
    )


def test_build_request_user_agent_choices() -> None:
    assert build_request("GET", URL).headers == (("User-Agent", USER_AGENT),)
    assert build_request("GET", URL, user_agent="Browser").headers == (("User-Agent", "Browser"),)
    given = build_request("GET", URL, headers=[("user-agent", "Mine"), ("A", "1")])
    assert given.headers == (("user-agent", "Mine"), ("A", "1"))


def test_build_request_form_content_and_cookies() -> None:
    form = build_request("POST", URL, form={"a": "1"}, cookies={"c": "2"})
    assert form.headers == (
        ("User-Agent", USER_AGENT),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Cookie", "c=2"),
    )
    content = build_request("POST", URL, content="<x/>")
    assert (content.headers, content.body) == ((("User-Agent", USER_AGENT),), b"<x/>")


# -- external_call ------------------------------------------------------------------------------


def start_external(**kwargs: Any) -> tuple[Stepper[HttpResponse], HttpRequest]:
    step = Stepper(external_call("GET", "https://a.config.skype.com/config/v1/x", **kwargs))
    pending = step.pending
    assert isinstance(pending, HttpRequest)
    return step, pending


def test_external_call_request_has_no_auth() -> None:
    _, req = start_external(params={"q": "a b"}, headers={"Accept": "*/*"}, timeout=9.0)
    assert req.method == "GET"
    assert req.url == "https://a.config.skype.com/config/v1/x?q=a+b"
    assert req.headers == (("User-Agent", USER_AGENT), ("Accept", "*/*"))
    assert req.body == b""
    assert req.timeout == 9.0
    assert not any(name.lower() in SECRET_HEADERS for name, _ in req.headers)


@pytest.mark.parametrize("status", [200, 201, 204, 207])
def test_external_call_returns_accepted_responses(status: int) -> None:
    step, _ = start_external()
    response = HttpResponse(status, (), b"{}")
    assert step.receive(response) is None
    assert step.done
    assert step.result is response


def test_external_call_refuses_202() -> None:
    step, _ = start_external(params={"q": "1"})
    with pytest.raises(SkypeApiException) as caught:
        step.receive(HttpResponse(202))
    assert type(caught.value) is SkypeApiException
    assert str(caught.value) == "202 response from GET https://a.config.skype.com/config/v1/x"
    assert step.done


def test_external_call_accepted_override() -> None:
    step, _ = start_external(accepted={202})
    step.receive(HttpResponse(202))
    assert step.result.status == 202


def test_external_call_429_with_seconds_asks_no_time() -> None:
    step, _ = start_external()
    with pytest.raises(SkypeRateLimitException) as caught:
        step.receive(HttpResponse(429, (("Retry-After", "12"),)))
    assert caught.value.retry_after == 12.0


def test_external_call_429_with_a_date_asks_the_time() -> None:
    step, _ = start_external()
    assert step.receive(HttpResponse(429, (("Retry-After", HTTP_DATE),))) == Now()
    with pytest.raises(SkypeRateLimitException) as caught:
        step.send(NOW)
    assert caught.value.retry_after == 1680.0


def test_external_call_429_without_retry_after() -> None:
    step, _ = start_external()
    with pytest.raises(SkypeRateLimitException) as caught:
        step.receive(HttpResponse(429))
    assert caught.value.retry_after is None
    assert str(caught.value) == "Rate limit exceeded"


# -- timeouts -------------------------------------------------------------------------------------


def test_the_timeout_table_covers_every_kind_with_a_finite_bound() -> None:
    assert set(TIMEOUTS) == set(get_args(CallKind))
    for seconds in TIMEOUTS.values():
        assert 0 < seconds < 120
    with pytest.raises(TypeError):
        TIMEOUTS["call"] = 1.0  # type: ignore[index]


def test_build_request_always_sets_a_finite_timeout() -> None:
    assert build_request("GET", URL).timeout == TIMEOUTS["call"]
    assert build_request("GET", URL, kind="ack").timeout == TIMEOUTS["ack"]
    assert build_request("GET", URL, kind="login page").timeout == TIMEOUTS["login page"]
    # A timeout of the caller's own wins over the table.
    assert build_request("GET", URL, kind="ack", timeout=2.5).timeout == 2.5
    assert build_request("GET", URL, timeout=7).timeout == 7.0
    assert external_call("GET", URL).send(None).timeout == TIMEOUTS["call"]


@pytest.mark.parametrize("bad", [0, -1, math.inf, math.nan, True, "5"])
def test_build_request_refuses_a_timeout_that_is_not_positive_and_finite(bad: Any) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        build_request("GET", URL, timeout=bad)
    assert "timeout" in str(caught.value)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="no timeout for calls of kind 'lunch'"):
        build_request("GET", URL, kind="lunch")  # type: ignore[arg-type]


def test_poll_timeout_is_the_hold_plus_the_margin() -> None:
    assert call_timeout("poll", hold=30) == 30 + TIMEOUTS["poll"]
    assert call_timeout("endpoint") == TIMEOUTS["endpoint"]
    for bad in (math.inf, math.nan, -1.0):
        with pytest.raises(LocalProtocolError):
            call_timeout("poll", hold=bad)


#: The kind of call each emulator route is.
ROUTE_KINDS: dict[str, CallKind] = {
    "soap": "token exchange",
    "edge": "token exchange",
    "api_login": "token exchange",
    "t_exchange": "token exchange",
    "live_start": "login page",
    "live_page": "login page",  # the redirect hop keeps the first request's timeout
    "refresh": "login page",
    "live_credentials": "login form",
    "live_confirm": "login form",
    "profile": "profile",
    "join_page": "guest",
    "meeting": "guest",
    "join_thread": "guest",
    "register": "registration",
    "config": "endpoint",
    "ping": "endpoint",
    "subscribe": "endpoint",
    "set_presence": "endpoint",
    "endpoints": "endpoint",
    "ack": "ack",
    "conversations": "paging",
}


class Recorder:
    """The pure emulator as a transport, keeping each request's route and timeout."""

    def __init__(self) -> None:
        self.emulator = Emulator(seed=3)
        self.seen: list[tuple[str | None, float | None]] = []

    def send(self, req: HttpRequest) -> HttpResponse:
        self.seen.append((self.emulator.route(req), req.timeout))
        return self.emulator.handle(req, NOW)

    def run(self, flow: Any) -> Any:
        return run_sync(flow, self, clock=lambda: NOW, sleep=lambda _: None)


@pytest.mark.parametrize("method", ["soap", "live", "api", "guest"])
def test_every_request_a_session_sends_has_its_kinds_timeout(method: str) -> None:
    peer = Recorder()
    hosts = peer.emulator.hosts
    if method == "guest":
        credentials: Any = GuestCredentials(f"{hosts.join}/{DEFAULT_MEETING_ID}", "Alice")
        session = Session(hosts, credentials=credentials)
    else:
        credentials = Credentials(DEFAULT_ACCOUNT.user, DEFAULT_ACCOUNT.password)
        session = Session(hosts, credentials=credentials, method=LoginMethod(method))
    peer.run(session.connect())
    peer.run(session.subscribe())
    peer.run(session.ping())
    peer.run(session.set_presence())
    peer.run(session.list_endpoints())
    peer.emulator.queue_event("text", NOW)
    events = decode_events(peer.run(session.poll(hold=5)).body)
    acks = [event.ack_url for event in events if event.ack_url is not None]
    if method != "guest":
        assert acks
        peer.run(session.ack(acks[0]))
        peer.run(session.conversations().next_page())
        token = session.state.skype_token
        assert token is not None
        peer.run(refresh_login(token, hosts=hosts))
    polls = [timeout for route, timeout in peer.seen if route == "poll"]
    assert polls == [5 + TIMEOUTS["poll"]]
    others = [(route, timeout) for route, timeout in peer.seen if route != "poll"]
    assert others
    for route, timeout in others:
        assert route in ROUTE_KINDS, route
        assert timeout == TIMEOUTS[ROUTE_KINDS[route]], route
