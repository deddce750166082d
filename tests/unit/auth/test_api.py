"""Skype-API login (docs/protocol.md §2.3), driven with canned responses.

Branches of §2.3 covered here:
- request: exact URL, headers, JSON body (key order, separators), passwordHash for every
  helpers.json case
- answer: skypetoken + expiresIn (int, integer string), no expiresIn -> default lifetime;
  no skypetoken -> SkypeAuthException "Couldn't retrieve Skype token from response" (with the
  server's status code and text when given); body not JSON / not an object, skypetoken empty or
  not a string, expiresIn malformed -> RemoteProtocolError
- status: 500 -> SkypeApiException, 429 -> SkypeRateLimitException; Hosts mapping
- secrets (password, hash, token) never in an exception message
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
from skyproto.auth import api_login
from skyproto.ids import password_hash
from skyproto.tokens import DEFAULT_TOKEN_LIFETIME, Credentials, SkypeToken

from . import NOW, UA, assert_clean, drive

URL = "https://api.skype.com/login/skypetoken"
CREDS = Credentials("fred.2", "password")
SECRET_CREDS = Credentials("fred.2", "PASSWORD-SECRET")
SECRET_HASH = password_hash("fred.2", "PASSWORD-SECRET")
SKYPE_TOKEN = "SKYPE-TOKEN-SECRET"
FLOOR = dt.datetime.fromtimestamp(1700000000, dt.UTC)


def login(
    responses: list[HttpResponse],
    sent: list[HttpRequest] | None = None,
    *,
    creds: Credentials = SECRET_CREDS,
    hosts: Hosts | None = None,
) -> SkypeToken:
    token: SkypeToken = drive(api_login(creds, hosts=hosts or Hosts()), responses, sent=sent)
    return token


def answer(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse.build(status, json=data)


def test_request_and_success() -> None:
    sent: list[HttpRequest] = []
    token = login([answer({"skypetoken": SKYPE_TOKEN, "expiresIn": 86400})], sent, creds=CREDS)
    assert token == SkypeToken(SKYPE_TOKEN, FLOOR + dt.timedelta(seconds=86400))
    (req,) = sent
    assert (req.method, req.url) == ("POST", URL)
    assert req.headers == (("User-Agent", UA), ("Content-Type", "application/json"))
    assert req.body == (
        b'{"username": "fred.2", "passwordHash": "fI9SFNp7ho6Vv8JxAG0www==", "scopes": "client"}'
    )


@pytest.mark.parametrize("case", load_vector("helpers.json")["password_hash"])
def test_password_hash_vectors_reach_the_wire(case: dict[str, str]) -> None:
    sent: list[HttpRequest] = []
    login(
        [answer({"skypetoken": "x"})],
        sent,
        creds=Credentials(case["user"], case["password"]),
    )
    assert sent[0].json() == {
        "username": case["user"],
        "passwordHash": case["passwordHash"],
        "scopes": "client",
    }


def test_non_ascii_user_is_escaped_in_json() -> None:
    sent: list[HttpRequest] = []
    login([answer({"skypetoken": "x"})], sent, creds=Credentials("jö", "p"))
    assert sent[0].body.startswith(b'{"username": "j\\u00f6", "passwordHash": ')


@pytest.mark.parametrize(
    ("data", "expiry"),
    [
        ({"skypetoken": "tok", "expiresIn": "600"}, FLOOR + dt.timedelta(seconds=600)),
        ({"skypetoken": "tok", "expiresIn": 0}, FLOOR),
        ({"skypetoken": "tok"}, NOW + DEFAULT_TOKEN_LIFETIME),
    ],
)
def test_expiry(data: dict[str, Any], expiry: dt.datetime) -> None:
    assert login([answer(data)]) == SkypeToken("tok", expiry)


def test_hosts_mapping() -> None:
    sent: list[HttpRequest] = []
    hosts = Hosts(overrides={"api.skype.com": "http://127.0.0.1:7/api.skype.com"})
    login([answer({"skypetoken": "x"})], sent, hosts=hosts)
    assert sent[0].url == "http://127.0.0.1:7/api.skype.com/login/skypetoken"


def failure(response: HttpResponse) -> SkypeException:
    with pytest.raises(SkypeException) as info:
        login([response])
    assert_clean(info.value, "PASSWORD-SECRET", SECRET_HASH, SKYPE_TOKEN)
    return info.value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Couldn't retrieve Skype token from response"),
        ({"token": "x"}, "Couldn't retrieve Skype token from response"),
        (
            {"status": {"code": 40120, "text": "Authentication failed. Bad username or password."}},
            "Couldn't retrieve Skype token from response "
            "(40120 - Authentication failed. Bad username or password.)",
        ),
        ({"status": {"code": 40002}}, "Couldn't retrieve Skype token from response (40002 - None)"),
        ({"status": "bad"}, "Couldn't retrieve Skype token from response"),
    ],
)
def test_no_token_is_an_auth_error(data: dict[str, Any], message: str) -> None:
    exc = failure(answer(data))
    assert type(exc) is SkypeAuthException
    assert exc.message == message


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (HttpResponse(200, (), b"<html>"), "Skype-API login response is not JSON"),
        (answer([SKYPE_TOKEN]), "Skype-API login response is not a JSON object"),
        (answer({"skypetoken": ""}), "the login response's skypetoken is missing or empty"),
        (answer({"skypetoken": None}), "the login response's skypetoken is missing or empty"),
        (answer({"skypetoken": 5}), "the login response's skypetoken is missing or empty"),
        (
            answer({"skypetoken": SKYPE_TOKEN, "expiresIn": "1d"}),
            "expiresIn in the login answer is not an integer number of seconds",
        ),
        (
            answer({"skypetoken": SKYPE_TOKEN, "expiresIn": None}),
            "expiresIn in the login answer has no value",
        ),
        (
            answer({"skypetoken": SKYPE_TOKEN, "expiresIn": -3}),
            "expiresIn in the login answer is out of range",
        ),
    ],
)
def test_malformed_answers(response: HttpResponse, message: str) -> None:
    exc = failure(response)
    assert type(exc) is RemoteProtocolError
    assert exc.message == message


def test_http_error() -> None:
    exc = failure(answer({"status": {"code": 1}}, status=401))
    assert type(exc) is SkypeApiException
    assert exc.message == f"401 response from POST {URL}"


def test_rate_limit() -> None:
    exc = failure(HttpResponse(429, (("Retry-After", "7"),), b""))
    assert isinstance(exc, SkypeRateLimitException)
    assert exc.retry_after == 7.0
