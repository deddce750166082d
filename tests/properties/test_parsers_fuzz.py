"""Every parser of server input, fuzzed: a result or a skyproto error, nothing else, no hang.

This is the h11 rule for the whole core. :data:`PARSERS` is one registry of ``(name, callable,
strategy)`` entries, each test parametrized over it; a callable gets a value drawn from its
strategy and must return, or raise a :class:`~skyproto.SkypeException` with a non-empty message.
Any other exception, or one example running for more than :data:`HANG_SECONDS`, fails the test.

Run it long with ``python -m pytest --hypothesis-profile=fuzz tests/properties/test_parsers_fuzz.py``
(10,000 examples per parser); CI runs the ``ci`` profile.

The second half times each scanner of server text at doubling input sizes (``tests/scaling.py``):
every scan of server text must be linear.

Where the core reads server input (``grep -n "\\.json()\\|\\.text\\b\\|json\\.loads\\|\\.header(\\|
header_all(\\|set_cookies()"`` over ``skyproto/``), and the entries that cover each read:

=====================================================  ===========================================
read                                                   entries
=====================================================  ===========================================
``_http.py`` ``HttpResponse.json`` / ``_load_json``      ``http.response_json``
``_http.py`` ``HttpResponse.text``                       ``http.response_text``
``_http.py`` ``HttpResponse.set_cookies``                ``http.set_cookies``
``_http.py`` ``HttpRequest.json/form/cookies``           ``http.request_*`` (the emulator's side)
``_http.py`` ``describe`` (``json.loads`` in redaction)   ``http.describe``, ``http.redact_url``
``auth/soap.py`` ``parse_xml`` / ``parse_security_token``  ``soap.parse_xml``, ``soap.security_token``
``auth/soap.py`` fault on an error status                ``soap.fault_message``, ``soap.flow_rst``
``auth/soap.py`` ``parse_edge_response`` (``.json()``)     ``soap.edge_response``, ``soap.flow_edge``
``auth/_pages.py`` ``t_value_or_error`` (``.text``)        ``pages.t_value_or_error``, ``pages.scan``,
                                                       ``pages.error_text``, ``pages.strip_tags``
``auth/_pages.py`` ``json_object`` (``.json()``)           ``pages.json_object``
``auth/_pages.py`` ``expiry_from``                       ``pages.expiry_from``
``auth/_pages.py`` ``parse_token_page`` (``.text``)        ``pages.token_page``
``auth/live.py`` ``check_page``, ``find_ppft``, ``find_opid``  ``live.*`` and the three ``live.flow_*``
``auth/live.py`` ``page.set_cookies()`` (MSPRequ/MSPOK)  ``live.flow_sign_in``
``auth/api.py`` the Skype-API answer                     ``api.flow``
``auth/refresh.py`` ``read_refresh_page``                ``refresh.page``, ``refresh.flow``
``auth/guest.py`` join page cookies, both JSON answers   ``guest.flow_*``
``auth/profile.py`` the profile answer                   ``profile.flow``
``auth/_redirects.py`` ``Location``, ``Set-Cookie``       ``redirects.*``
``registration.py`` ``Set-RegistrationToken``, ``Location``,  ``registration.*``
``.json()`` of the endpoint list
``calls.py`` ``Retry-After``, ``check_status``           ``calls.*``
``endpoint.py`` ``_endpoint_gone`` (``.json()``), links,   ``endpoint.*``
``list_endpoints`` (``.json()``)
``events.py`` ``decode_events`` (``json.loads``)           ``events.*``
``loop.py`` ``decode_events(response.body)``             ``events.decode``
``paging.py`` ``page`` (``.json()``), ``page_items``       ``paging.*``
``session.py`` ``load_snapshot`` (``json.loads``)          ``store.snapshot``
``store.py`` ``parse_skpy_token_file``                   ``store.token_file``
``hosts.py`` ``Hosts.from_json`` (``json.loads``)          ``hosts.from_json``, ``hosts.trust``
``ids.py`` ids in server links, ``Status.parse``         ``ids.*``
``commands.py`` (CLI: ``header('location')``, events)   covered by ``events.decode``
=====================================================  ===========================================
"""

from __future__ import annotations

import datetime as dt
import json
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hostile import (
    header_text,
    headers,
    json_bodies,
    json_object_with,
    json_values,
    odd_numbers,
    page_bodies,
    pages,
    pieces,
    raw_bytes,
    raw_text,
    registration_headers,
    retry_after_values,
    set_cookie_values,
    share_of_profile,
    urls,
    xml_bodies,
)
from hypothesis import given
from hypothesis import strategies as st
from scaling import assert_linear

from skyproto import (
    Credentials,
    Hosts,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    PagingState,
    Registration,
    RegistrationToken,
    RemoteProtocolError,
    SkypeException,
    SkypeToken,
    Status,
    chat_from_url,
    no_prefix,
    paging,
    user_from_url,
)
from skyproto import events as events_module
from skyproto._flow import Now, Sleep, Stepper
from skyproto._http import describe, redact_url
from skyproto.auth import _pages, api_login, fetch_user_id, guest_login, live_login, refresh_login
from skyproto.auth._redirects import CookieJar, _expires_passed, fetch, resolve_location
from skyproto.auth.live import check_page, find_opid, find_ppft
from skyproto.auth.refresh import read_refresh_page
from skyproto.auth.soap import (
    _fault_message,
    _first_fault,
    parse_edge_response,
    parse_security_token,
    parse_xml,
    soap_login,
)
from skyproto.calls import DEFAULT_ACCEPTED, check_status, display_url, parse_retry_after
from skyproto.emulator import pages as canned
from skyproto.endpoint import _endpoint_from_link, check_endpoint_status, list_endpoints
from skyproto.events import decode_events, parse_event_time
from skyproto.registration import (
    _endpoint_from_body,
    _read_answer,
    normalise_base,
    normalise_endpoint_id,
    parse_location,
    parse_registration_token,
    register,
)
from skyproto.session import load_snapshot
from skyproto.store import parse_skpy_token_file

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
HOSTS = Hosts()
H = "https://client-s.gateway.messenger.live.com/v1"
REG = Registration(RegistrationToken("registrationToken=abc", T0 + dt.timedelta(days=1)), H, None)
TOKEN = SkypeToken("skype-token", T0 + dt.timedelta(days=1))
CREDENTIALS = Credentials("fred.2", "secret password")
#: One example running longer than this is a hang.
HANG_SECONDS = 20


# -- responses and flows ------------------------------------------------------------------------


def response(
    body: bytes = b"",
    head: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    status: int = 200,
    url: str = "https://login.live.com/ppsecure/post.srf",
) -> HttpResponse:
    return HttpResponse(status, tuple(head), body, url)


def run_flow(flow: Any, answers: list[HttpResponse]) -> Any:
    """Drive ``flow``: requests get ``answers`` in order, ``Now`` gets :data:`T0`, ``Sleep``
    nothing. When the answers run out with a request pending, the flow is closed."""
    step = Stepper(flow)
    queue = list(answers)
    while not step.done:
        effect = step.pending
        if isinstance(effect, HttpRequest):
            if not queue:
                step.close()
                return None
            step.send(queue.pop(0))
        elif isinstance(effect, Now):
            step.send(T0)
        elif isinstance(effect, Sleep):
            step.send(None)
        else:  # pragma: no cover - the flows here yield nothing else
            raise AssertionError(f"unexpected effect {effect!r}")
    return step.result


statuses = st.one_of(
    st.sampled_from([200, 200, 200, 201, 204, 301, 302, 404, 429, 500]), st.integers(100, 599)
)


# A response for a step: a near-valid body, odd headers, mostly status 200.
def responses(
    bodies: st.SearchStrategy[bytes],
    *,
    extra_headers: st.SearchStrategy[list[tuple[str, str]]] = headers,
) -> st.SearchStrategy[HttpResponse]:
    return st.builds(response, bodies, extra_headers, statuses)


# -- near-valid inputs per parser ---------------------------------------------------------------

expiries = st.one_of(st.integers(-10, 10**12), odd_numbers, st.floats(), json_values)
edge_answers = json_object_with(
    {
        "skypetoken": st.one_of(st.text(max_size=20), json_values),
        "expiresIn": expiries,
        "status": json_object_with({"code": json_values, "text": st.text(max_size=20)}),
    }
)
good_sign_in = response(
    canned.live_sign_in_page(
        "https://login.live.com/ppsecure/post.srf", "PPFT-value", "ctx"
    ).encode(),
    [("Set-Cookie", "MSPRequ=r; path=/"), ("Set-Cookie", "MSPOK=o; secure")],
)
good_opid = response(
    canned.live_opid_page("https://x/post.srf?opid=ABC123", "PPFT-value", "ctx").encode()
)
good_join = response(
    b"<html></html>",
    [("Set-Cookie", "csrf_token=c"), ("Set-Cookie", "launcher_session_id=l")],
    url="https://join.skype.com/AbCd",
)
good_meeting = response(json.dumps({"threadId": "19:x@thread.skype"}).encode())
soap_token = canned.soap_token_response(
    "security-token", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"
)
good_rst = response(soap_token.encode(), url="https://login.live.com/RST.srf")

token_pages = st.one_of(
    page_bodies,
    st.builds(
        lambda token, expires: (
            canned.skype_token_page("https://web.skype.com", token, 0)
            .replace('value="0"', f'value="{expires}"')
            .encode("utf-8")
        ),
        st.text(max_size=20),
        odd_numbers,
    ),
)

timestamps = st.one_of(
    st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    pieces(
        [
            "2024-05-06",
            "T",
            "07:08:09",
            ".",
            "9" * 30,
            "Z",
            "+99:99",
            "-00:00",
            "9999-12-31T23:59:59",
            "0000-00-00T00:00:00",
        ],
        max_size=6,
    ),
    json_values,
)
resources = json_object_with(
    {
        "messagetype": st.sampled_from(["Text", "RichText", "Control/Typing", "Event/Call", "X"]),
        "selfLink": urls,
        "status": st.sampled_from(["Online", "Busy", "online"]),
        "id": st.one_of(st.integers(), st.text(max_size=8)),
        "members": st.lists(json_object_with({"id": st.text(max_size=10)}), max_size=3),
        "from": urls,
        "conversationLink": urls,
        "skypeeditedid": st.text(max_size=5),
        "ackrequired": urls,
        "originalarrivaltime": timestamps,
        "publicInfo": json_object_with({"capabilities": st.text(max_size=10)}),
    }
)
event_elements = json_object_with(
    {
        "id": st.one_of(st.integers(), json_values),
        "time": timestamps,
        "resourceType": st.sampled_from(
            [
                "UserPresence",
                "EndpointPresence",
                "NewMessage",
                "ConversationUpdate",
                "ThreadUpdate",
                "Other",
            ]
        ),
        "resource": resources,
    }
)
poll_bodies = json_bodies(json_object_with({"eventMessages": st.lists(event_elements, max_size=4)}))
listing_bodies = json_bodies(
    json_object_with(
        {
            "_metadata": json_object_with({"syncState": urls}),
            "conversations": st.lists(json_values, max_size=3),
        }
    )
)
endpoint_lists = json_bodies(
    json_object_with(
        {"endpointPresenceDocs": st.lists(json_object_with({"link": urls}), max_size=3)}
    )
)
gone_bodies = json_bodies(
    json_object_with(
        {
            "errorCode": st.sampled_from([729, "729", 729.0, True]),
            "standardizedError": json_object_with({"errorCode": st.sampled_from([729, "729"])}),
        }
    )
)

_valid_snapshot = {
    "version": 1,
    "user_id": "fred.2",
    "skype_token": {"token": "t", "expiry": "2100-01-01T00:00:00+00:00"},
    "registration": {
        "token": {"token": "registrationToken=x", "expiry": "2100-01-01T00:00:00+00:00"},
        "messenger": H,
        "endpoint_id": "{x}",
    },
    "endpoints": ["{x}"],
    "paging": {"links": {"GET x": "y"}},
    "guest": False,
}
snapshots = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            key: st.one_of(
                st.just(value), json_values, urls if key == "registration" else json_values
            )
            for key, value in _valid_snapshot.items()
        },
    ).map(lambda doc: json.dumps(doc).encode()),
    st.builds(
        lambda messenger, expiry: json.dumps(
            {
                **_valid_snapshot,
                "skype_token": {"token": "t", "expiry": expiry},
                "registration": {**_valid_snapshot["registration"], "messenger": messenger},
            }  # type: ignore[dict-item]
        ).encode(),
        urls,
        st.one_of(
            st.text(max_size=30),
            pieces(["9999-12-31T23:59:59", "+14:00", "-23:59", "Z", "0001-01-01"], max_size=4),
        ),
    ),
    json_bodies(),
)
token_files = st.one_of(
    st.lists(
        st.one_of(
            pieces(["fred.2", "guest:x", "token", "registrationToken=x", "\x7f"], max_size=3),
            odd_numbers,
            urls,
        ),
        min_size=5,
        max_size=7,
    ).map(lambda lines: "\n".join(lines)),
    raw_text,
)
token_file_inputs = st.one_of(
    token_files, token_files.map(lambda t: t.encode("utf-8", "surrogatepass")), raw_bytes
)
host_profiles = st.one_of(
    json_bodies(
        json_object_with(
            {
                "hosts": st.dictionaries(
                    st.one_of(
                        st.sampled_from(["login.live.com", "api.skype.com"]), st.text(max_size=10)
                    ),
                    urls,
                    max_size=3,
                )
            }
        )
    ),
    st.dictionaries(st.text(max_size=10), urls, max_size=3),
)


def _hosts_from(value: Any) -> Any:
    return Hosts.from_json(value)


def _soap_fault(body: bytes) -> Any:
    fault = _first_fault(parse_xml(body))
    return None if fault is None else _fault_message(fault)


def _cookie_jar(pair: tuple[list[str], str]) -> Any:
    values, url = pair
    jar = CookieJar()
    for value in values:
        jar.store(
            "https://login.live.com/ppsecure/post.srf", response(head=[("Set-Cookie", value)]), T0
        )
    return jar.cookies_for(url if url.startswith("http") else "https://login.live.com/" + url)


def _fetch_one(answer: HttpResponse) -> Any:
    req = HttpRequest("GET", "https://login.skype.com/login")
    # A second, plain answer ends the flow after one redirect.
    return run_flow(fetch(req, hosts=HOSTS, jar=CookieJar(), now=T0), [answer, response()])


def _registration_flow(answer: HttpResponse) -> Any:
    return run_flow(register(TOKEN, hosts=HOSTS), [answer, answer, answer, answer, answer])


def _page_flow(answer: HttpResponse) -> Any:
    url = f"{H}/users/ME/conversations"
    return run_flow(paging.page(PagingState(), "GET", url, reg=REG, hosts=HOSTS), [answer])


def _structure_as(value: Any) -> Any:
    raw, cls = value
    return events_module.converter.structure(raw, cls)


# -- the registry -------------------------------------------------------------------------------

Entry = tuple[str, Callable[[Any], object], st.SearchStrategy[Any]]

PARSERS: list[Entry] = [
    # _http.py
    ("http.response_json", lambda b: response(b).json(), json_bodies()),
    ("http.response_text", lambda b: response(b).text, page_bodies),
    (
        "http.set_cookies",
        lambda vs: response(head=[("Set-Cookie", v) for v in vs]).set_cookies(),
        st.lists(set_cookie_values, max_size=4),
    ),
    (
        "http.request_json",
        lambda b: HttpRequest("POST", "https://a.skype.com/", (), b).json(),
        json_bodies(),
    ),
    (
        "http.request_form",
        lambda b: HttpRequest("POST", "https://a.skype.com/", (), b).form(),
        st.one_of(raw_bytes, pages.map(str.encode)),
    ),
    (
        "http.request_cookies",
        lambda v: HttpRequest("GET", "https://a.skype.com/", [("Cookie", v)]).cookies(),
        set_cookie_values,
    ),
    (
        "http.describe",
        lambda r: describe(r),
        responses(st.one_of(page_bodies, json_bodies(), xml_bodies)),
    ),
    ("http.redact_url", redact_url, urls),
    # auth/soap.py
    ("soap.parse_xml", parse_xml, xml_bodies),
    ("soap.security_token", lambda b: parse_security_token(response(b)), xml_bodies),
    ("soap.fault_message", _soap_fault, xml_bodies),
    (
        "soap.edge_response",
        lambda b: parse_edge_response(response(b), T0),
        json_bodies(edge_answers),
    ),
    (
        "soap.flow_rst",
        lambda r: run_flow(soap_login(CREDENTIALS, hosts=HOSTS), [r]),
        responses(xml_bodies),
    ),
    (
        "soap.flow_edge",
        lambda r: run_flow(soap_login(CREDENTIALS, hosts=HOSTS), [good_rst, r]),
        responses(json_bodies(edge_answers)),
    ),
    # auth/_pages.py
    ("pages.scan", _pages.scan_page, pages),
    ("pages.error_text", _pages.error_text, pages),
    ("pages.strip_tags", _pages._strip_tags, pages),
    ("pages.t_value_or_error", lambda b: _pages.t_value_or_error(response(b), "page"), page_bodies),
    ("pages.json_object", lambda b: _pages.json_object(response(b), "answer"), json_bodies()),
    (
        "pages.expiry_from",
        lambda v: _pages.expiry_from({"expiresIn": v}, "expiresIn", T0, response()),
        expiries,
    ),
    ("pages.token_page", lambda b: _pages.parse_token_page(response(b), T0), token_pages),
    # auth/live.py
    ("live.check_page", lambda b: check_page(response(b)), page_bodies),
    ("live.find_ppft", find_ppft, pages),
    ("live.find_opid", find_opid, pages),
    (
        "live.flow_sign_in",
        lambda r: run_flow(live_login(CREDENTIALS, hosts=HOSTS), [r]),
        responses(page_bodies),
    ),
    (
        "live.flow_credentials",
        lambda r: run_flow(live_login(CREDENTIALS, hosts=HOSTS), [good_sign_in, r]),
        responses(page_bodies),
    ),
    (
        "live.flow_confirm",
        lambda r: run_flow(live_login(CREDENTIALS, hosts=HOSTS), [good_sign_in, good_opid, r]),
        responses(page_bodies),
    ),
    (
        "live.flow_t_exchange",
        lambda r: run_flow(
            live_login(CREDENTIALS, hosts=HOSTS),
            [response(canned.live_confirm_page("https://x", "t-value").encode()), r],
        ),
        responses(token_pages),
    ),
    # auth/api.py, auth/refresh.py, auth/guest.py, auth/profile.py
    (
        "api.flow",
        lambda r: run_flow(api_login(CREDENTIALS, hosts=HOSTS), [r]),
        responses(json_bodies(edge_answers)),
    ),
    ("refresh.page", lambda b: read_refresh_page(response(b)), page_bodies),
    (
        "refresh.flow",
        lambda r: run_flow(refresh_login(TOKEN, hosts=HOSTS), [r]),
        responses(page_bodies),
    ),
    (
        "guest.flow_join_page",
        lambda r: run_flow(guest_login("AbCd", "Guest", hosts=HOSTS), [r]),
        responses(page_bodies),
    ),
    (
        "guest.flow_meeting",
        lambda r: run_flow(guest_login("AbCd", "Guest", hosts=HOSTS), [good_join, r]),
        responses(
            json_bodies(
                json_object_with({"threadId": st.one_of(urls, st.sampled_from([".", "..", ""]))})
            )
        ),
    ),
    (
        "guest.flow_thread_join",
        lambda r: run_flow(guest_login("AbCd", "Guest", hosts=HOSTS), [good_join, good_meeting, r]),
        responses(json_bodies(edge_answers)),
    ),
    (
        "profile.flow",
        lambda r: run_flow(fetch_user_id(TOKEN, hosts=HOSTS), [r]),
        responses(json_bodies(json_object_with({"username": json_values}))),
    ),
    # auth/_redirects.py
    (
        "redirects.resolve_location",
        lambda u: resolve_location(u, "https://login.live.com/a/b?c=d", HOSTS),
        urls,
    ),
    ("redirects.cookie_jar", _cookie_jar, st.tuples(st.lists(set_cookie_values, max_size=4), urls)),
    ("redirects.expires", lambda v: _expires_passed(v, T0), retry_after_values),
    ("redirects.fetch", _fetch_one, responses(raw_bytes)),
    # registration.py
    ("registration.token_header", parse_registration_token, registration_headers),
    ("registration.location", parse_location, urls),
    ("registration.endpoint_id", normalise_endpoint_id, urls),
    ("registration.base", normalise_base, urls),
    ("registration.answer", lambda r: _read_answer(r, H), responses(endpoint_lists)),
    (
        "registration.endpoint_from_body",
        lambda b: _endpoint_from_body(response(b)),
        json_bodies(st.lists(json_object_with({"id": urls}), max_size=2)),
    ),
    ("registration.flow", _registration_flow, responses(endpoint_lists)),
    # calls.py
    ("calls.retry_after", lambda v: parse_retry_after(v, now=T0), retry_after_values),
    (
        "calls.check_status",
        lambda r: check_status(r, DEFAULT_ACCEPTED, method="GET", url=H, now=T0),
        responses(raw_bytes),
    ),
    ("calls.display_url", display_url, urls),
    # endpoint.py
    (
        "endpoint.check_status",
        lambda r: check_endpoint_status(r, method="POST", url=H, now=T0),
        responses(gone_bodies),
    ),
    ("endpoint.link", _endpoint_from_link, st.one_of(urls, json_values)),
    ("endpoint.list_flow", lambda r: run_flow(list_endpoints(REG), [r]), responses(endpoint_lists)),
    # events.py
    (
        "events.decode",
        decode_events,
        st.one_of(poll_bodies, poll_bodies.map(lambda b: b.decode("utf-8", "replace"))),
    ),
    ("events.time", parse_event_time, timestamps),
    (
        "events.structure_as",
        _structure_as,
        st.tuples(
            event_elements,
            st.sampled_from(
                [events_module.PresenceEvent, events_module.MessageEvent, events_module.Message]
            ),
        ),
    ),
    # paging.py
    ("paging.page_flow", _page_flow, responses(listing_bodies)),
    (
        "paging.page_items",
        lambda v: paging.page_items(v, "conversations"),
        json_object_with({"conversations": json_values}),
    ),
    # session.py and store.py
    ("store.snapshot", lambda b: load_snapshot(b, now=T0, hosts=HOSTS), snapshots),
    (
        "store.token_file",
        lambda t: parse_skpy_token_file(t, now=T0, hosts=HOSTS),
        token_file_inputs,
    ),
    # hosts.py
    ("hosts.from_json", _hosts_from, host_profiles),
    ("hosts.trust", lambda u: HOSTS.is_trusted(u), urls),
    ("hosts.require_trusted", lambda u: HOSTS.require_trusted(u, "a link"), urls),
    # ids.py (ids in server links)
    ("ids.user_from_url", user_from_url, urls),
    ("ids.chat_from_url", chat_from_url, urls),
    ("ids.no_prefix", no_prefix, header_text),
    ("ids.status", Status.parse, json_values),
]


@contextmanager
def _hang_guard(name: str) -> Iterator[None]:
    def hung(_signum: int, _frame: object) -> None:
        raise AssertionError(f"{name}: one example ran longer than {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(("name", "parse", "strategy"), PARSERS, ids=[e[0] for e in PARSERS])
def test_a_result_or_a_skyproto_error(
    name: str, parse: Callable[[Any], object], strategy: st.SearchStrategy[Any]
) -> None:
    @share_of_profile(0.3)
    @given(strategy)
    def check(value: Any) -> None:
        with _hang_guard(name):
            try:
                parse(value)
            except SkypeException as exc:
                failure: SkypeException | None = exc
            else:
                failure = None
        assert failure is None or failure.message, f"{name}: a skyproto error with no message"

    check()


def test_the_registry_names_each_parser_once() -> None:
    names = [entry[0] for entry in PARSERS]
    assert len(names) == len(set(names))
    assert len(names) >= 60


# -- findings, pinned -----------------------------------------------------------------------------


def test_a_sync_state_link_that_is_no_url_is_a_protocol_error() -> None:
    # urljoin raised ValueError ("Invalid IPv6 URL") out of the listing flow.
    answer = response(json.dumps({"_metadata": {"syncState": "http://[x"}}).encode())
    with pytest.raises(RemoteProtocolError, match="syncState is not a valid URL"):
        _page_flow(answer)


def test_a_deeply_nested_hosts_profile_is_a_local_error() -> None:
    # json.loads raised RecursionError out of Hosts.from_json (and so from_file).
    with pytest.raises(LocalProtocolError, match="not valid JSON"):
        Hosts.from_json("[" * 100_000)


# -- linear scans ---------------------------------------------------------------------------------
#
# Every scanner of server text, timed at n, 2n and 4n on the input that is worst for it.


def _page_response(text: str) -> HttpResponse:
    return response(text.encode("utf-8"), [("Content-Type", "text/html")])


SCANS: list[Any] = [
    ("pages.scan.open_tags", _pages.scan_page, lambda n: "<a" * n),
    ("pages.scan.quotes", _pages.scan_page, lambda n: '<input value="' + '"' * n),
    ("pages.error_text.tags", _pages.error_text, lambda n: "sErrTxt:'" + "<a" * n + "'"),
    ("pages.error_text.escapes", _pages.error_text, lambda n: "sErrTxt:'" + "\\" * n),
    pytest.param(
        "pages.strip_tags.lines",
        _pages.error_text,
        # A character outside the BMP makes the text UCS-4, where find() is slower per character,
        # so the quadratic part outweighs the per-tag overhead at sizes cheap enough to time.
        lambda n: "sErrTxt:'\U0001f600" + "<\n" * n + "'",
        (20_000, 40_000, 80_000),
    ),
    ("live.check_page.open_tags", lambda t: check_page(_page_response(t)), lambda n: "<a" * n),
    (
        "live.check_page.two_factor",
        lambda t: check_page(_page_response(t)),
        lambda n: "V:" + " " * n,
    ),
    ("live.find_ppft.inputs", find_ppft, lambda n: '<input name="PPFT"' * n),
    ("live.find_ppft.lines", find_ppft, lambda n: "<input\n" * n),
    ("live.find_opid", find_opid, lambda n: "opid=" * n),
    (
        "pages.token_page.inputs",
        lambda t: _pages.parse_token_page(_page_response(t), T0),
        lambda n: "<input " * n,
    ),
    pytest.param(
        "soap.parse_xml.nesting",
        parse_xml,
        lambda n: ("<a>" * n + "</a>" * n).encode(),
        (16_000, 32_000, 64_000),  # a deep tree leaves the cache early; time it beyond that
    ),
    (
        "soap.security_token.elements",
        lambda b: parse_security_token(response(b)),
        lambda n: ("<r>" + "<BinarySecurityToken>x</BinarySecurityToken>" * n + "</r>").encode(),
    ),
    ("http.response_json.nesting", lambda b: response(b).json(), lambda n: b"[" * n),
    ("events.decode.nesting", decode_events, lambda n: b'{"eventMessages":' + b"[" * n),
    (
        "events.decode.many",
        decode_events,
        lambda n: json.dumps({"eventMessages": [{"id": 1}] * n}).encode(),
    ),
    (
        "registration.token_header.separators",
        parse_registration_token,
        lambda n: ";" * n + "registrationToken=a;expires=1",
    ),
    (
        "registration.token_header.equals",
        parse_registration_token,
        lambda n: "registrationToken=" + "=" * n,
    ),
    (
        "registration.location.segments",
        parse_location,
        lambda n: "https://a.skype.com" + "/users/ME" * n,
    ),
    ("calls.retry_after.long", lambda v: parse_retry_after(v, now=T0), lambda n: " " * n + "1"),
    (
        "redirects.cookie.attributes",
        _cookie_jar,
        lambda n: (["a=b" + ";" * n + "Domain=skype.com"], "https://login.live.com/"),
    ),
    (
        "http.set_cookies.long",
        lambda v: response(head=[("Set-Cookie", v)]).set_cookies(),
        lambda n: "a=" + "=" * n,
    ),
    ("http.redact_url.pairs", redact_url, lambda n: "https://a/?" + "&" * n + "t=x"),
    ("http.redact_url.equals", redact_url, lambda n: "https://a/?" + "=" * n),
    ("ids.user_from_url", user_from_url, lambda n: "users/1:" * n),
    (
        "store.token_file.long",
        lambda t: parse_skpy_token_file(t, now=T0, hosts=HOSTS),
        lambda n: "a\n" * 5 + "9" * n,
    ),
    (
        "hosts.trust.long",
        lambda u: HOSTS.is_trusted(u),
        lambda n: "https://a.skype.com/" + "%2F.." * n,
    ),
    pytest.param(
        "http.describe.open_tags",
        lambda t: describe(response(t.encode())),
        lambda n: "<a" * n,
        (250, 500, 1000),
    ),
    pytest.param(
        "http.describe.soap_secret",
        lambda t: describe(response(t.encode())),
        lambda n: "<Password>" * n,
        (400, 800, 1600),
    ),
    ("http.describe.script_quotes", lambda t: describe(response(t.encode())), lambda n: "t:'" * n),
    ("http.describe.quotes", lambda t: describe(response(t.encode())), lambda n: "t='" + "'" * n),
    (
        "http.describe.json_nesting",
        lambda b: describe(response(b, [("Content-Type", "application/json")])),
        lambda n: b"[" * n,
    ),
    (
        "http.describe.long_header",
        lambda v: describe(response(head=[("Location", v)])),
        lambda n: "https://a/?" + "t=x&" * n,
    ),
]


def _scan_id(entry: Any) -> str:
    return str(entry.values[0] if hasattr(entry, "values") else entry[0])


def _with_sizes(entry: Any) -> Any:
    if hasattr(entry, "values"):
        return (
            entry
            if len(entry.values) == 4
            else pytest.param(*entry.values, None, marks=entry.marks)
        )
    return (*entry, None) if len(entry) == 3 else entry


@pytest.mark.parametrize(
    ("name", "scan", "make_input", "sizes"),
    [_with_sizes(e) for e in SCANS],
    ids=[_scan_id(e) for e in SCANS],
)
def test_scans_of_server_text_are_linear(
    name: str,
    scan: Callable[[Any], object],
    make_input: Callable[[int], Any],
    sizes: tuple[int, ...] | None,
) -> None:
    assert_linear(scan, make_input, sizes=sizes or (8_000, 16_000, 32_000))
