"""The 41 recorded registration-handshake cases (tests/vectors/regtoken_headers.json).

Where the reference outcome is correct we match it exactly (token, expiry, endpoint id, messaging
base and every URL posted). Where it crashes or loops we raise a clear error within the bounds;
where it follows an untrusted host we refuse before sending anything there. The deliberate
differences are listed in ``OURS`` with the reason next to each.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from skyproto import (
    Hosts,
    HttpRequest,
    HttpResponse,
    Now,
    RemoteProtocolError,
    SkypeApiException,
    SkypeRateLimitException,
    Sleep,
    Stepper,
    UntrustedHostError,
)
from skyproto.calls import USER_AGENT
from skyproto.registration import NO_TOKEN_RETRY_DELAY, Registration, register
from skyproto.tokens import SkypeToken

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "regtoken_headers.json").read_text("utf-8")
)
CASES = {case["name"]: case for case in VECTORS["cases"]}
CLOCK = dt.datetime.fromtimestamp(VECTORS["clock_for_lockandkey"], dt.UTC)
SKYPE_TOKEN = SkypeToken(VECTORS["skype_token_used"], CLOCK + dt.timedelta(days=1))
DEFAULT = VECTORS["default_msgs_host"]
DB3 = "https://db3-client-s.gateway.messenger.live.com/v1"
EP = "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}"
LONG_TOKEN = "registrationToken=U2lnbmF0dXJlOjI6MjgyNjkxNzkxMzs3OlZlcnNpb246Njo="

#: Cases where the reference result is right and we match it exactly.
MATCH_REFERENCE = {
    "typical-201",
    "plain-200-no-location",
    "header-order-varied",
    "no-spaces",
    "token-name-case-insensitive",
    "token-truncated-at-unlisted-char",
    "token-with-version-suffix",
    "expires-fractional",
    "expires-zero",
    "json-fallback-200",
    "json-fallback-200-empty-list",
    "json-fallback-201-not-consulted",
    "location-endpoint-only",
    "header-endpoint-beats-location",
    "redirect-404-other-host",
    "redirect-201-with-token-discarded",
    "redirect-query-string",
    "same-host-404-with-token",
    "status-401",
    "status-500",
    "status-429",
}


def _ok(token: str, endpoint: str | None, host: str, urls: list[str]) -> dict[str, Any]:
    return {"token": token, "expires": 1700086400, "endpoint": endpoint, "host": host, "urls": urls}


def _err(kind: type[Exception], urls: list[str], sleeps: int = 0) -> dict[str, Any]:
    return {"error": kind, "urls": urls, "sleeps": sleeps}


POST_DEFAULT = [f"{DEFAULT}/users/ME/endpoints"]
POST_DB3 = [f"{DEFAULT}/users/ME/endpoints", f"{DB3}/users/ME/endpoints"]

#: Our outcome where it differs from the reference's.
OURS: dict[str, dict[str, Any]] = {
    # Parameter names are case-insensitive: "Expires=" is accepted.
    "expires-capitalised": _ok("registrationToken=AAAA", EP, DEFAULT, POST_DEFAULT),
    # Reference crashes: a clear protocol error instead.
    "expires-missing": _err(RemoteProtocolError, POST_DEFAULT),
    "token-missing-in-header": _err(RemoteProtocolError, POST_DEFAULT),
    "token-empty-value": _err(RemoteProtocolError, POST_DEFAULT),
    "expires-huge": _err(RemoteProtocolError, POST_DEFAULT),
    # Endpoint ids with upper-case hex or without braces are accepted and normalised.
    "endpoint-uppercase-guid": _ok("registrationToken=AAAA", EP, DEFAULT, POST_DEFAULT),
    "endpoint-no-braces": _ok("registrationToken=AAAA", EP, DEFAULT, POST_DEFAULT),
    "location-uppercase-guid-same-host": _ok("registrationToken=AAAA", EP, DEFAULT, POST_DEFAULT),
    # The JSON fallback is best-effort once a token is in hand: odd bodies leave the id unknown.
    "json-fallback-200-empty-body": _ok("registrationToken=AAAA", None, DEFAULT, POST_DEFAULT),
    "json-fallback-200-object-body": _ok("registrationToken=AAAA", None, DEFAULT, POST_DEFAULT),
    # An endpoint id from a discarded redirecting answer is not carried over (§12.6).
    "redirect-with-endpoint-carried-over": _ok(
        "registrationToken=AAAA",
        None,
        "https://db5-client-s.gateway.messenger.live.com/v1",
        [
            f"{DEFAULT}/users/ME/endpoints",
            "https://db5-client-s.gateway.messenger.live.com/v1/users/ME/endpoints",
        ],
    ),
    # Host case and a default port are normalised away: no extra round trip.
    "redirect-host-case-differs": _ok(LONG_TOKEN, EP, DEFAULT, POST_DEFAULT),
    "redirect-explicit-port": _ok(LONG_TOKEN, EP, DEFAULT, POST_DEFAULT),
    # The base is derived by URL parsing, not by counting segments.
    "redirect-lowercase-percent-escapes": _ok(LONG_TOKEN, EP, DB3, POST_DB3),
    "redirect-trailing-slash": _ok(LONG_TOKEN, EP, DB3, POST_DB3),
    # Untrusted hosts (a foreign domain, plain http) are refused before anything is sent there.
    "redirect-foreign-host": _err(UntrustedHostError, POST_DEFAULT),
    "location-not-matching": _err(UntrustedHostError, POST_DEFAULT),
    "location-relative": _err(RemoteProtocolError, POST_DEFAULT),
    # Unbounded in the reference: bounded here.
    "no-token-no-location-loops": _err(RemoteProtocolError, POST_DEFAULT * 2, sleeps=1),
    "ping-pong-redirect-loops": _err(RemoteProtocolError, POST_DB3 * 2),
}


def _response(spec: dict[str, Any], url: str) -> HttpResponse:
    body = spec.get("body")
    if body is None:
        raw = b""
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = json.dumps(body).encode()
    return HttpResponse(spec["status"], tuple(spec["headers"].items()), raw, url)


def _drive(case: dict[str, Any]) -> tuple[list[HttpRequest], list[float], Any]:
    sent: list[HttpRequest] = []
    sleeps: list[float] = []
    result = _drive_capturing(case, sent, sleeps)
    return sent, sleeps, result


def test_every_case_is_classified() -> None:
    assert len(CASES) == 41
    assert MATCH_REFERENCE.isdisjoint(OURS)
    assert MATCH_REFERENCE | set(OURS) == set(CASES)


def _check_request(req: HttpRequest) -> None:
    example = VECTORS["example_request"]
    assert req.method == "POST"
    assert req.headers == (
        ("User-Agent", USER_AGENT),
        ("LockAndKey", example["LockAndKey"]),
        ("Authentication", example["Authentication"]),
        ("BehaviorOverride", example["BehaviorOverride"]),
        ("Content-Type", "application/json"),
    )
    assert req.body == example["body"].encode()


@pytest.mark.parametrize("name", sorted(MATCH_REFERENCE))
def test_matches_reference(name: str) -> None:
    expected = CASES[name]["expected"]
    if expected["error"] is not None:
        with pytest.raises(SkypeApiException) as info:
            _drive(CASES[name])
        error = info.value
        kind = expected["error"]["kind"]
        assert (
            type(error)
            is {
                "SkypeApiException": SkypeApiException,
                "SkypeRateLimitException": SkypeRateLimitException,
            }[kind]
        )
        assert error.message == expected["error"]["message"]
        assert error.status == expected["error"]["status"]
        return
    sent, sleeps, result = _drive(CASES[name])
    assert isinstance(result, Registration)
    assert result.token.token == expected["token"]
    assert int(result.token.expiry.timestamp()) == expected["expires_epoch"]
    assert result.token.expiry.tzinfo is dt.UTC
    assert result.endpoint_id == expected["endpoint_id"]
    assert result.messenger == expected["msgs_host"]
    assert [(r.method, r.url) for r in sent] == [
        (q["method"], q["url"]) for q in expected["requests"]
    ]
    assert len(sent) == expected["request_count"]
    assert sleeps == []
    for req in sent:
        _check_request(req)


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_outcome(name: str) -> None:
    ours = OURS[name]
    case = CASES[name]
    if "error" in ours:
        sent: list[HttpRequest] = []
        sleeps: list[float] = []
        with pytest.raises(ours["error"]) as info:
            _drive_capturing(case, sent, sleeps)
        error = info.value
        assert type(error) is ours["error"]
        for secret in ("SKYPETOKEN", "AAAA", "U2lnbmF0"):
            assert secret not in str(error)
            assert secret not in repr(error)
        assert [r.url for r in sent] == ours["urls"]
        assert sleeps == [NO_TOKEN_RETRY_DELAY] * ours["sleeps"]
        for req in sent:
            _check_request(req)
        return
    sent, sleeps, result = _drive(case)
    assert result == Registration(result.token, ours["host"], ours["endpoint"])
    assert result.token.token == ours["token"]
    assert int(result.token.expiry.timestamp()) == ours["expires"]
    assert [r.url for r in sent] == ours["urls"]
    assert sleeps == []
    for req in sent:
        _check_request(req)


def _drive_capturing(case: dict[str, Any], sent: list[HttpRequest], sleeps: list[float]) -> Any:
    """Run the handshake against the case's scripted answers (the last one repeats), recording
    the requests and sleeps in ``sent`` and ``sleeps``; return the result."""
    step = Stepper(register(SKYPE_TOKEN, hosts=Hosts()))
    answers = case["responses"]
    for _ in range(50):
        if step.done:
            return step.result
        pending = step.pending
        if isinstance(pending, Now):
            step.send(CLOCK)
        elif isinstance(pending, Sleep):
            sleeps.append(pending.seconds)
            step.send(None)
        else:
            assert isinstance(pending, HttpRequest)
            sent.append(pending)
            spec = answers[min(len(sent), len(answers)) - 1]
            step.receive(_response(spec, pending.url))
    raise AssertionError("the handshake did not finish within 50 effects")


def test_ping_pong_names_the_bound() -> None:
    with pytest.raises(RemoteProtocolError, match="more than 3 times"):
        _drive(CASES["ping-pong-redirect-loops"])


def test_foreign_host_never_receives_a_request() -> None:
    sent: list[HttpRequest] = []
    with pytest.raises(UntrustedHostError, match=r"attacker\.example"):
        _drive_capturing(CASES["redirect-foreign-host"], sent, [])
    assert all(r.host != "attacker.example" for r in sent)
