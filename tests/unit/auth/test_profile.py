"""The user id behind a Skype token (docs/protocol.md §2.7), driven with canned responses.

Branches covered: exact request (X-SkypeToken auth kind), classic / live: / guest: user ids,
username missing, null, empty or not a string -> RemoteProtocolError (the reference keeps None),
body not JSON / not an object, 401 -> SkypeApiException, 429 -> SkypeRateLimitException, Hosts
mapping; the token never appears in an exception message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skyproto import (
    Hosts,
    HttpRequest,
    HttpResponse,
    RemoteProtocolError,
    SkypeApiException,
    SkypeException,
    SkypeRateLimitException,
)
from skyproto.auth import fetch_user_id
from skyproto.tokens import SkypeToken

from . import NOW, UA, assert_clean, assert_same_wire, drive, skpy_requests

SECRET = "SKYPE-TOKEN-SECRET"
TOKEN = SkypeToken(SECRET, NOW + dt.timedelta(hours=1))
URL = "https://api.skype.com/users/self/profile"


def user_id(response: HttpResponse, sent: list[HttpRequest] | None = None, **kw: Any) -> str:
    result: str = drive(fetch_user_id(TOKEN, hosts=kw.get("hosts", Hosts())), [response], sent=sent)
    return result


@pytest.mark.parametrize("name", ["fred.2", "live:fred_1", "guest:name_0a1b2c3d"])
def test_request_and_user_id(name: str) -> None:
    sent: list[HttpRequest] = []
    assert user_id(HttpResponse.build(200, json={"firstname": "F", "username": name}), sent) == name
    (req,) = sent
    assert (req.method, req.url, req.body) == ("GET", URL, b"")
    assert req.headers == (("User-Agent", UA), ("X-SkypeToken", SECRET))


def test_hosts_mapping() -> None:
    sent: list[HttpRequest] = []
    hosts = Hosts(overrides={"api.skype.com": "http://127.0.0.1:7/api.skype.com"})
    user_id(HttpResponse.build(200, json={"username": "x"}), sent, hosts=hosts)
    assert sent[0].url == "http://127.0.0.1:7/api.skype.com/users/self/profile"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (HttpResponse.build(200, json={}), "the profile's username is missing or empty"),
        (
            HttpResponse.build(200, json={"username": None}),
            "the profile's username is missing or empty",
        ),
        (
            HttpResponse.build(200, json={"username": ""}),
            "the profile's username is missing or empty",
        ),
        (
            HttpResponse.build(200, json={"username": 8}),
            "the profile's username is missing or empty",
        ),
        (HttpResponse.build(200, json=["fred"]), "profile response is not a JSON object"),
        (HttpResponse(200, (), b"{bad"), "profile response is not JSON"),
    ],
)
def test_malformed(response: HttpResponse, message: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        user_id(response)
    assert info.value.message == message
    assert_clean(info.value, SECRET)


def test_unauthorised() -> None:
    with pytest.raises(SkypeApiException) as info:
        user_id(HttpResponse.build(401, json={"status": {"code": 40100}}))
    assert type(info.value) is SkypeApiException
    assert info.value.message == f"401 response from GET {URL}"
    assert_clean(info.value, SECRET)


def test_rate_limited() -> None:
    with pytest.raises(SkypeRateLimitException) as info:
        user_id(HttpResponse(429, (), b""))
    assert info.value.retry_after is None
    assert isinstance(info.value, SkypeException)


@pytest.mark.skpy
def test_request_matches_the_reference_client() -> None:
    def call(conn: Any) -> None:
        conn.tokens["skype"] = SECRET
        conn.tokenExpiry["skype"] = dt.datetime(2100, 1, 1)
        conn.getUserId()

    answer = HttpResponse.build(200, json={"username": "fred.2"})
    ours: list[HttpRequest] = []
    user_id(answer, ours)
    assert_same_wire(ours, skpy_requests(call, [answer]))
