"""Guest login (docs/protocol.md §2.6), driven with canned responses.

Branches of §2.6 covered here (and the §12.21, §12.26 fixes):
- join id: URL or bare id, trailing '/', query and fragment, percent-encoding; empty / '.' /
  '..' / not a str -> LocalProtocolError; empty display name -> LocalProtocolError
- join page: browser User-Agent, redirects followed, csrf_token and launcher_session_id from the
  final response's own Set-Cookie (missing either, or set only on a redirect hop ->
  RemoteProtocolError); host-only cookies not sent to api.join.skype.com, Domain cookies are
- meetings lookup: exact request; threadId missing, null, empty, not a string, '..' ->
  RemoteProtocolError; body not JSON / not an object
- thread join: exact URL (thread id percent-encoded, ':' and '@' literal), headers in order,
  JSON body; skypetoken missing / empty -> RemoteProtocolError; expiry = now + GUEST lifetime
- status errors at every step (404 -> SkypeApiException, 429 -> SkypeRateLimitException);
  Hosts mapping of every URL; the tokens never appear in an exception message
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from skyproto import (
    Hosts,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    RemoteProtocolError,
    SkypeApiException,
    SkypeException,
    SkypeRateLimitException,
)
from skyproto.auth import guest_login
from skyproto.auth.guest import BROWSER_USER_AGENT, meeting_id
from skyproto.tokens import GUEST_TOKEN_LIFETIME, SkypeToken

from . import NOW, UA, assert_clean, assert_same_wire, drive, page, redirect, skpy_requests

MEETING = "KJzQ8aJ3gN2f"
THREAD = "19:0f3c2a9d@thread.skype"
CSRF = "CSRF-SECRET-0123"
LAUNCHER = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
GUEST_TOKEN = "GUEST-TOKEN-SECRET"
JOIN_COOKIES = (f"csrf_token={CSRF}; path=/; Secure", f"launcher_session_id={LAUNCHER}; path=/")
JOIN_PAGE = page("<div id='join'></div>", headers=[("Set-Cookie", c) for c in JOIN_COOKIES])
MEETING_ANSWER = HttpResponse.build(200, json={"threadId": THREAD, "isGuestJoinEnabled": True})
JOINED = HttpResponse.build(200, json={"skypetoken": GUEST_TOKEN, "skypeid": "guest:x"})


def join(
    responses: list[HttpResponse],
    sent: list[HttpRequest] | None = None,
    *,
    link: str = f"https://join.skype.com/{MEETING}",
    name: str = "Guest Name",
    hosts: Hosts | None = None,
) -> SkypeToken:
    token: SkypeToken = drive(guest_login(link, name, hosts=hosts or Hosts()), responses, sent=sent)
    return token


@pytest.mark.parametrize(
    ("link", "ident"),
    [
        ("https://join.skype.com/KJzQ8aJ3gN2f", "KJzQ8aJ3gN2f"),
        ("https://join.skype.com/KJzQ8aJ3gN2f/", "KJzQ8aJ3gN2f"),
        ("https://join.skype.com/KJzQ8aJ3gN2f//", "KJzQ8aJ3gN2f"),
        ("https://join.skype.com/KJzQ8aJ3gN2f?src=mail#x", "KJzQ8aJ3gN2f"),
        ("  KJzQ8aJ3gN2f  ", "KJzQ8aJ3gN2f"),
        ("join.skype.com/invite/AbC", "AbC"),
        ("https://join.skype.com/a%20b", "a b"),
    ],
)
def test_meeting_id(link: str, ident: str) -> None:
    assert meeting_id(link) == ident


@pytest.mark.parametrize(
    "link", ["", "/", "https://join.skype.com/", "https://join.skype.com", "..", "https://x/./", 5]
)
def test_meeting_id_refused(link: Any) -> None:
    with pytest.raises(LocalProtocolError):
        meeting_id(link)
    sent: list[HttpRequest] = []
    with pytest.raises(LocalProtocolError):
        join([], sent, link=link)
    assert sent == []


@pytest.mark.parametrize("name", ["", "   ", None])
def test_display_name_required(name: Any) -> None:
    with pytest.raises(LocalProtocolError):
        join([], name=name)


def test_requests_and_result() -> None:
    sent: list[HttpRequest] = []
    later = NOW + dt.timedelta(seconds=3, microseconds=7)
    flow = guest_login(f"https://join.skype.com/{MEETING}", "Guest Name", hosts=Hosts())
    token = drive(flow, [JOIN_PAGE, MEETING_ANSWER, JOINED], sent=sent, times=[NOW, later])
    # The expiry counts from when the token arrived, microseconds kept.
    assert token == SkypeToken(GUEST_TOKEN, later + GUEST_TOKEN_LIFETIME)
    page_req, meeting_req, join_req = sent
    assert (page_req.method, page_req.url, page_req.body) == (
        "GET",
        f"https://join.skype.com/{MEETING}",
        b"",
    )
    assert page_req.headers == (("User-Agent", BROWSER_USER_AGENT),)
    assert BROWSER_USER_AGENT == (
        "Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/33.0.1750.117 Safari/537.36"
    )
    # join.skype.com's host-only cookies are not sent to api.join.skype.com (§12.26).
    assert (meeting_req.method, meeting_req.url, meeting_req.headers) == (
        "GET",
        f"https://api.join.skype.com/v1/meetings/{MEETING}",
        (("User-Agent", UA),),
    )
    assert (join_req.method, join_req.url) == (
        "POST",
        "https://api.join.skype.com/v1/threads/19:0f3c2a9d@thread.skype/members",
    )
    assert join_req.headers == (
        ("User-Agent", UA),
        ("csrf_token", CSRF),
        ("X-Skype-Request-Id", LAUNCHER),
        ("Content-Type", "application/json"),
    )
    assert join_req.body == b'{"displayName": "Guest Name"}'


def test_ids_are_percent_encoded_in_paths() -> None:
    sent: list[HttpRequest] = []
    odd_thread = HttpResponse.build(200, json={"threadId": "19:a/b?c#d %@thread.skype"})
    join([JOIN_PAGE, odd_thread, JOINED], sent, link="https://join.skype.com/a%3Fb")
    assert [r.url for r in sent] == [
        "https://join.skype.com/a%3Fb",
        "https://api.join.skype.com/v1/meetings/a%3Fb",
        "https://api.join.skype.com/v1/threads/19:a%2Fb%3Fc%23d%20%25@thread.skype/members",
    ]


def test_redirected_join_page_and_domain_cookies() -> None:
    sent: list[HttpRequest] = []
    hop = redirect(f"https://join.skype.com/l/{MEETING}", cookies=["wide=1; Domain=skype.com"])
    join([hop, JOIN_PAGE, MEETING_ANSWER, JOINED], sent)
    assert sent[1].url == f"https://join.skype.com/l/{MEETING}"
    assert sent[1].headers == (("User-Agent", BROWSER_USER_AGENT), ("Cookie", "wide=1"))
    assert sent[2].header("cookie") == "wide=1"
    assert sent[3].header("cookie") == "wide=1"


def test_hosts_mapping() -> None:
    hosts = Hosts(
        overrides={
            "join.skype.com": "http://127.0.0.1:4/join.skype.com",
            "api.join.skype.com": "http://127.0.0.1:4/api.join.skype.com",
        }
    )
    sent: list[HttpRequest] = []
    join([JOIN_PAGE, MEETING_ANSWER, JOINED], sent, hosts=hosts)
    assert [r.url for r in sent] == [
        f"http://127.0.0.1:4/join.skype.com/{MEETING}",
        f"http://127.0.0.1:4/api.join.skype.com/v1/meetings/{MEETING}",
        f"http://127.0.0.1:4/api.join.skype.com/v1/threads/{THREAD}/members",
    ]


def failure(responses: list[HttpResponse]) -> tuple[SkypeException, list[HttpRequest]]:
    sent: list[HttpRequest] = []
    with pytest.raises(SkypeException) as info:
        join(responses, sent)
    assert_clean(info.value, CSRF, GUEST_TOKEN)
    return info.value, sent


@pytest.mark.parametrize(
    "cookies",
    [(), (JOIN_COOKIES[0],), (JOIN_COOKIES[1],), ("csrf_token=; path=/", JOIN_COOKIES[1])],
)
def test_join_page_cookies_missing(cookies: tuple[str, ...]) -> None:
    answer = page("<p>x</p>", headers=[("Set-Cookie", c) for c in cookies])
    exc, sent = failure([answer])
    assert type(exc) is RemoteProtocolError
    assert exc.message == "the join page set no csrf_token or launcher_session_id cookie"
    assert len(sent) == 1


def test_join_cookies_set_only_on_a_redirect_hop_do_not_count() -> None:
    exc, _ = failure([redirect(f"/x/{MEETING}", cookies=JOIN_COOKIES), page("<p>x</p>")])
    assert exc.message == "the join page set no csrf_token or launcher_session_id cookie"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (HttpResponse.build(200, json={}), "the meeting's threadId is missing or empty"),
        (
            HttpResponse.build(200, json={"threadId": None}),
            "the meeting's threadId is missing or empty",
        ),
        (
            HttpResponse.build(200, json={"threadId": ""}),
            "the meeting's threadId is missing or empty",
        ),
        (
            HttpResponse.build(200, json={"threadId": 19}),
            "the meeting's threadId is missing or empty",
        ),
        (
            HttpResponse.build(200, json={"threadId": ".."}),
            "the meeting's threadId is not a conversation id",
        ),
        (HttpResponse.build(200, json=[THREAD]), "meetings lookup response is not a JSON object"),
        (HttpResponse(200, (), b"<html>"), "meetings lookup response is not JSON"),
    ],
)
def test_meeting_answer_malformed(answer: HttpResponse, message: str) -> None:
    exc, sent = failure([JOIN_PAGE, answer])
    assert type(exc) is RemoteProtocolError
    assert exc.message == message
    assert len(sent) == 2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            HttpResponse.build(200, json={"skypeid": "guest:x"}),
            "the guest skypetoken is missing or empty",
        ),
        (
            HttpResponse.build(200, json={"skypetoken": ""}),
            "the guest skypetoken is missing or empty",
        ),
        (HttpResponse.build(200, json=[GUEST_TOKEN]), "thread join response is not a JSON object"),
        (HttpResponse(201, (), b""), "thread join response is not JSON"),
    ],
)
def test_join_answer_malformed(answer: HttpResponse, message: str) -> None:
    exc, _ = failure([JOIN_PAGE, MEETING_ANSWER, answer])
    assert type(exc) is RemoteProtocolError
    assert exc.message == message


@pytest.mark.parametrize(
    "step",
    [
        (0, "GET", f"https://join.skype.com/{MEETING}"),
        (1, "GET", f"https://api.join.skype.com/v1/meetings/{MEETING}"),
        (2, "POST", f"https://api.join.skype.com/v1/threads/{THREAD}/members"),
    ],
)
def test_http_errors(step: tuple[int, str, str]) -> None:
    index, method, url = step
    answers = [JOIN_PAGE, MEETING_ANSWER][:index]
    exc, _ = failure([*answers, HttpResponse.build(404, json={"message": "Meeting not found."})])
    assert type(exc) is SkypeApiException
    assert exc.message == f"404 response from {method} {url}"
    exc, _ = failure([*answers, HttpResponse(429, (), b"")])
    assert type(exc) is SkypeRateLimitException


# -- parity with the reference client ------------------------------------------------------------


@pytest.mark.skpy
def test_requests_match_the_reference_client() -> None:
    link = f"https://join.skype.com/{MEETING}"
    script = [JOIN_PAGE, MEETING_ANSWER, JOINED]
    ours: list[HttpRequest] = []
    join(script, ours, link=link)
    theirs = skpy_requests(lambda conn: conn.guestLogin(link, "Guest Name"), script)[:3]
    # SkPy's jar sends join.skype.com's host-only cookies on to api.join.skype.com (§12.26);
    # skyproto does not. Everything else is the same.
    for request in theirs[1:]:
        assert request.cookies() == {"csrf_token": CSRF, "launcher_session_id": LAUNCHER}
    assert [r.header("cookie") for r in ours] == [None, None, None]
    without_cookies = [
        attrs.evolve(r, headers=tuple((k, v) for k, v in r.headers if k != "Cookie"))
        for r in theirs
    ]
    assert_same_wire(ours, without_cookies)
