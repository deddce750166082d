"""Token refresh (docs/protocol.md §2.4), driven with canned responses.

Branches of §2.4 covered here:
- request: exact URL (/login/login), query, refresh-token cookie; redirects followed, the cookie
  kept on same-origin hops and dropped on other origins
- page: t found -> t-exchange (exact request, token + expiry, default expiry); t without a value
  -> RemoteProtocolError; sErrTxt escaped or plain -> SkypeAuthException; a two-factor page, an
  empty sErrTxt or anything else -> SkypeAuthException "Couldn't retrieve t field from login
  response" (every refresh_cases vector)
- status: 500 at either step -> SkypeApiException, 429 -> SkypeRateLimitException
- secrets (old token, new token, t) never in an exception message
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from conftest import load_vector

from skyproto import (
    Hosts,
    HttpRequest,
    HttpResponse,
    RemoteProtocolError,
    SkypeApiException,
    SkypeAuthException,
    SkypeException,
    SkypeRateLimitException,
)
from skyproto.auth import refresh_login
from skyproto.auth.refresh import read_refresh_page
from skyproto.tokens import DEFAULT_TOKEN_LIFETIME, SkypeToken

from . import (
    NOW,
    UA,
    assert_clean,
    assert_same_wire,
    drive,
    page,
    redirect,
    skpy_requests,
)

OLD = "OLD-SKYPE-TOKEN-SECRET"
NEW = "NEW-SKYPE-TOKEN-SECRET"
T_VALUE = "T-VALUE-SECRET"
TOKEN = SkypeToken(OLD, NOW + dt.timedelta(minutes=3))
URL = (
    "https://login.skype.com/login/login?client_id=578134&redirect_uri=https%3A%2F%2Fweb.skype.com"
)
EXCHANGE_URL = "https://login.skype.com/login/microsoft?client_id=578134&redirect_uri=https%3A%2F%2Fweb.skype.com"
T_PAGE = page(f'<form name="fmHF"><input type="hidden" name="t" id="t" value="{T_VALUE}"></form>')
TOKEN_PAGE = page(f'<input name="skypetoken" value="{NEW}"><input name="expires_in" value="3600">')
FLOOR = dt.datetime.fromtimestamp(1700000000, dt.UTC)


def refresh(
    responses: list[HttpResponse], sent: list[HttpRequest] | None = None, hosts: Hosts | None = None
) -> SkypeToken:
    token: SkypeToken = drive(refresh_login(TOKEN, hosts=hosts or Hosts()), responses, sent=sent)
    return token


def test_requests_and_result() -> None:
    sent: list[HttpRequest] = []
    assert refresh([T_PAGE, TOKEN_PAGE], sent) == SkypeToken(
        NEW, FLOOR + dt.timedelta(seconds=3600)
    )
    first, exchange = sent
    assert (first.method, first.url, first.body) == ("GET", URL, b"")
    assert first.headers == (("User-Agent", UA), ("Cookie", f"refresh-token={OLD}"))
    assert (exchange.method, exchange.url) == ("POST", EXCHANGE_URL)
    assert exchange.headers == (
        ("User-Agent", UA),
        ("Content-Type", "application/x-www-form-urlencoded"),
    )
    assert exchange.body == (
        b"t=T-VALUE-SECRET&client_id=578134&oauthPartner=999&site_name=lw.skype.com"
        b"&redirect_uri=https%3A%2F%2Fweb.skype.com"
    )


def test_default_expiry() -> None:
    token = refresh([T_PAGE, page(f'<input name="skypetoken" value="{NEW}">')])
    assert token.expiry == NOW + DEFAULT_TOKEN_LIFETIME


def test_refresh_cookie_follows_same_origin_redirects_only() -> None:
    sent: list[HttpRequest] = []
    refresh(
        [
            redirect("/login/again", cookies=["jar=1; Path=/"]),
            redirect("https://login.live.com/elsewhere"),
            T_PAGE,
            TOKEN_PAGE,
        ],
        sent,
    )
    assert [r.url for r in sent[:3]] == [
        URL,
        "https://login.skype.com/login/again",
        "https://login.live.com/elsewhere",
    ]
    assert sent[1].header("cookie") == f"refresh-token={OLD}; jar=1"
    assert sent[2].header("cookie") is None
    # The jar cookie of login.skype.com is back for the exchange; the refresh token is not.
    assert sent[3].header("cookie") == "jar=1"


def test_hosts_mapping() -> None:
    sent: list[HttpRequest] = []
    hosts = Hosts(overrides={"login.skype.com": "http://127.0.0.1:5/login.skype.com"})
    refresh([T_PAGE, TOKEN_PAGE], sent, hosts)
    assert [r.url.split("?")[0] for r in sent] == [
        "http://127.0.0.1:5/login.skype.com/login/login",
        "http://127.0.0.1:5/login.skype.com/login/microsoft",
    ]


@pytest.mark.parametrize(
    "case", load_vector("live_pages.json")["refresh_cases"], ids=lambda c: c["name"]
)
def test_refresh_page_vectors(case: dict[str, Any]) -> None:
    expected = case["expected"]
    response = page(case["html"])
    if expected["outcome"] == "t":
        assert read_refresh_page(response) == expected["t"]
    else:
        assert expected["outcome"] == "AuthError"
        with pytest.raises(SkypeAuthException) as info:
            read_refresh_page(response)
        assert type(info.value) is SkypeAuthException
        if expected["message"]:
            assert info.value.message == expected["message"]
        else:
            # The reference raises an empty message; an empty sErrTxt is no message here.
            assert info.value.message == "Couldn't retrieve t field from login response"


@pytest.mark.parametrize("html", ['<input id="t">', '<b id="t" value="">'])
def test_valueless_t(html: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        refresh([page(html)])
    assert info.value.message == "the refresh page's t element has no value"


def failure(responses: list[HttpResponse]) -> SkypeException:
    with pytest.raises(SkypeException) as info:
        refresh(responses)
    assert_clean(info.value, OLD, NEW, T_VALUE)
    return info.value


def test_expired_session_page() -> None:
    exc = failure(
        [page("<script>var ServerData = {sErrTxt:'Your session has expired.'};</script>")]
    )
    assert type(exc) is SkypeAuthException
    assert exc.message == "Your session has expired."


def test_exchange_without_token() -> None:
    exc = failure([T_PAGE, page("<p>Sign-in failed</p>")])
    assert type(exc) is RemoteProtocolError
    assert exc.message == "Couldn't retrieve Skype token from login response"


@pytest.mark.parametrize("step", [0, 1])
def test_http_errors(step: int) -> None:
    answers = [T_PAGE, TOKEN_PAGE][:step]
    exc = failure([*answers, HttpResponse(500, (), b"")])
    assert type(exc) is SkypeApiException
    where = [
        "GET https://login.skype.com/login/login",
        "POST https://login.skype.com/login/microsoft",
    ]
    assert exc.message == f"500 response from {where[step]}"
    exc = failure([*answers, HttpResponse(429, (("Retry-After", "2"),), b"")])
    assert isinstance(exc, SkypeRateLimitException)
    assert exc.retry_after == 2.0


# -- parity with the reference client ------------------------------------------------------------


@pytest.mark.skpy
def test_requests_match_the_reference_client() -> None:
    def call(conn: Any) -> None:
        conn.tokens["skype"] = OLD
        conn.tokenExpiry["skype"] = dt.datetime(2100, 1, 1)
        conn.refreshSkypeToken()

    ours: list[HttpRequest] = []
    refresh([T_PAGE, TOKEN_PAGE], ours)
    assert_same_wire(ours, skpy_requests(call, [T_PAGE, TOKEN_PAGE])[:2])
