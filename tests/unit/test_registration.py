"""Registration handshake: header and Location parsing, and the flow beyond the recorded vectors."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest

from skyproto import (
    Hosts,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    Now,
    RemoteProtocolError,
    SkypeApiException,
    SkypeRateLimitException,
    Sleep,
    Stepper,
    UntrustedHostError,
)
from skyproto.calls import USER_AGENT
from skyproto.mac256 import lock_and_key
from skyproto.registration import (
    NO_TOKEN_RETRY_DELAY,
    ParsedRegistrationToken,
    Registration,
    normalise_base,
    normalise_endpoint_id,
    parse_location,
    parse_registration_token,
    register,
    registration_request,
)
from skyproto.tokens import RegistrationToken, SkypeToken

T0 = dt.datetime.fromtimestamp(1700000000, dt.UTC)
SECRET = "S3CRET-SKYPE-TOKEN"
SKYPE_TOKEN = SkypeToken(SECRET, T0 + dt.timedelta(days=1))
DEFAULT = "https://client-s.gateway.messenger.live.com/v1"
DB3 = "https://db3-client-s.gateway.messenger.live.com/v1"
EP = "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}"
GOOD_HEADER = f"registrationToken=Zm9vYmFy; expires=1700086400; endpointId={EP}"
LOOPBACK = Hosts(
    overrides={
        "client-s.gateway.messenger.live.com": "http://127.0.0.1:8080/client-s.gateway.messenger.live.com",
        "db3-client-s.gateway.messenger.live.com": "http://127.0.0.1:8080/db3-client-s.gateway.messenger.live.com",
    }
)


def epoch(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


# -- parse_registration_token ---------------------------------------------------------------------


def test_parse_typical_header() -> None:
    parsed = parse_registration_token(GOOD_HEADER)
    assert parsed == ParsedRegistrationToken("registrationToken=Zm9vYmFy", epoch(1700086400), EP)
    assert parsed.registration_token() == RegistrationToken(
        "registrationToken=Zm9vYmFy", epoch(1700086400)
    )


def test_parsed_token_repr_hides_token() -> None:
    parsed = parse_registration_token(GOOD_HEADER)
    assert "Zm9vYmFy" not in repr(parsed)
    assert "Zm9vYmFy" not in repr(parsed.registration_token())


@pytest.mark.parametrize(
    ("header", "token", "expires", "endpoint"),
    [
        ("registrationToken=abc; Expires=5", "registrationToken=abc", 5, None),
        (
            "REGISTRATIONTOKEN=abc;EXPIRES=5;ENDPOINTID={AB-CD}",
            "REGISTRATIONTOKEN=abc",
            5,
            "{ab-cd}",
        ),
        (" expires = 7 ;  registrationToken = x+/= ", "registrationToken=x+/=", 7, None),
        (
            "registrationToken=; registrationToken=second; expires=1",
            "registrationToken=second",
            1,
            None,
        ),
        ("registrationToken=a;b=c; expires=1.5", "registrationToken=a", 1, None),
        (
            "registrationToken=a; expires=1; endpointId=3F2504E0-4F89-41D3-9A0C-0305E82C3301",
            "registrationToken=a",
            1,
            EP,
        ),
        ("registrationToken=a; expires=1; endpointId={not valid!}", "registrationToken=a", 1, None),
        ("registrationToken=a; expires=1; endpointId=SELF", "registrationToken=a", 1, None),
        ("registrationToken=a; expires=253402300799", "registrationToken=a", 253402300799, None),
    ],
)
def test_parse_variants(header: str, token: str, expires: int, endpoint: str | None) -> None:
    parsed = parse_registration_token(header)
    assert parsed.token == token
    assert parsed.expiry == epoch(expires)
    assert parsed.endpoint_id == endpoint


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "no registrationToken"),
        ("expires=5", "no registrationToken"),
        ("registrationToken=-abc; expires=5", "no registrationToken"),
        ("xregistrationToken=abc; expires=5", "no registrationToken"),
        ("registrationToken=SECRETVALUE", "no expires"),
        ("registrationToken=SECRETVALUE; expires=soon", "malformed expires"),
        ("registrationToken=SECRETVALUE; expires=-5", "malformed expires"),
        ("registrationToken=SECRETVALUE; expires=", "malformed expires"),
        ("registrationToken=SECRETVALUE; expires=253402300800", "out-of-range"),
        ("registrationToken=SECRETVALUE; expires=" + "9" * 20, "out-of-range"),
        ("registrationToken=SECRETVALUE; expires=" + "9" * 5000, "out-of-range"),
    ],
)
def test_parse_errors(header: str, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message) as info:
        parse_registration_token(header)
    assert type(info.value) is RemoteProtocolError
    assert "SECRETVALUE" not in str(info.value)


def test_parse_refuses_non_text() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_registration_token(b"registrationToken=a; expires=1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (EP, EP),
        (EP.upper(), EP),
        (EP[1:-1], EP),
        ("{abc-1}", "{abc-1}"),
        ("SELF", None),
        ("{}", None),
        ("{a b}", None),
        ("3f2504e0", None),
    ],
)
def test_normalise_endpoint_id(text: str, expected: str | None) -> None:
    assert normalise_endpoint_id(text) == expected


# -- parse_location -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "base", "endpoint"),
    [
        (f"{DEFAULT}/users/ME/endpoints", DEFAULT, None),
        (f"{DEFAULT}/users/ME/endpoints/", DEFAULT, None),
        (f"{DEFAULT}/users/ME/endpoints?cv=abc", DEFAULT, None),
        (f"{DEFAULT}/users/ME/endpoints#frag", DEFAULT, None),
        (f"{DEFAULT}/users/ME/endpoints/%7B3f2504e0-4f89-41d3-9a0c-0305e82c3301%7D", DEFAULT, EP),
        (f"{DEFAULT}/users/ME/endpoints/%7b3F2504E0-4F89-41D3-9A0C-0305E82C3301%7d/", DEFAULT, EP),
        (f"{DEFAULT}/users/ME/endpoints/{EP}", DEFAULT, EP),
        (f"{DEFAULT}/users/ME/endpoints/3f2504e0-4f89-41d3-9a0c-0305e82c3301", DEFAULT, EP),
        ("HTTPS://Client-S.Gateway.Messenger.Live.COM:443/v1/users/ME/endpoints", DEFAULT, None),
        (
            "https://client-s.gateway.messenger.live.com:8443/v1/users/me/Endpoints",
            "https://client-s.gateway.messenger.live.com:8443/v1",
            None,
        ),
        (
            "http://127.0.0.1:8080/client-s.gateway.messenger.live.com/v1/users/ME/endpoints",
            "http://127.0.0.1:8080/client-s.gateway.messenger.live.com/v1",
            None,
        ),
        ("http://127.0.0.1:80/x/users/ME/endpoints", "http://127.0.0.1/x", None),
        ("https://[::1]:9000/v1/users/ME/endpoints", "https://[::1]:9000/v1", None),
        ("https://host.example/users/ME/endpoints", "https://host.example", None),
        ("  https://host.example/v1/users/ME/endpoints  ", "https://host.example/v1", None),
    ],
)
def test_parse_location(location: str, base: str, endpoint: str | None) -> None:
    assert parse_location(location) == (base, endpoint)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("/v1/users/ME/endpoints", "absolute"),
        ("ftp://host/v1/users/ME/endpoints", "absolute"),
        ("https:///v1/users/ME/endpoints", "absolute"),
        ("https://host:99999/v1/users/ME/endpoints", "not a valid URL"),
        ("https://[::1/v1/users/ME/endpoints", "not a valid URL"),
        ("https://user:pw@host/v1/users/ME/endpoints", "user information"),
        ("https://host/v1/users/ME", "does not point"),
        ("https://host/v1/users/ME/endpoints/a/b", "does not point"),
        ("https://host/v1/users/ME/endpoints/%7Bbad id%7D", "malformed endpoint id"),
        ("https://host/v1/users/ME/endpoints/SELF", "malformed endpoint id"),
    ],
)
def test_parse_location_errors(location: str, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        parse_location(location)


def test_normalise_base() -> None:
    assert normalise_base("HTTPS://Client-S.gateway.messenger.live.com:443/v1/") == DEFAULT
    assert normalise_base("http://127.0.0.1:8080/p/v1") == "http://127.0.0.1:8080/p/v1"
    with pytest.raises(RemoteProtocolError):
        normalise_base(f"{DEFAULT}?x=1")


# -- the flow -------------------------------------------------------------------------------------


class Server:
    """Answers the handshake from a function of the request; records requests and sleeps."""

    def __init__(self, answer: Callable[[HttpRequest], HttpResponse]) -> None:
        self.answer = answer
        self.sent: list[HttpRequest] = []
        self.sleeps: list[float] = []
        self.clock = T0

    def run(self, flow: Any) -> Any:
        step = Stepper(flow)
        for _ in range(100):
            if step.done:
                return step.result
            pending = step.pending
            if isinstance(pending, Now):
                step.send(self.clock)
                self.clock += dt.timedelta(seconds=7)
            elif isinstance(pending, Sleep):
                self.sleeps.append(pending.seconds)
                step.send(None)
            else:
                assert isinstance(pending, HttpRequest)
                self.sent.append(pending)
                step.receive(self.answer(pending))
        raise AssertionError("flow did not finish")


def answer(status: int, **headers: str) -> Callable[[HttpRequest], HttpResponse]:
    names = {"location": "Location", "srt": "Set-RegistrationToken", "retry": "Retry-After"}
    return lambda req: HttpResponse(
        status, [(names[k], v) for k, v in headers.items()], b"", req.url
    )


def test_request_headers_are_exact_and_recomputed_each_iteration() -> None:
    replies = iter(
        [
            HttpResponse(404, [("Location", f"{DB3}/users/ME/endpoints")]),
            HttpResponse(201, [("Set-RegistrationToken", GOOD_HEADER)]),
        ]
    )
    server = Server(lambda req: next(replies))
    reg = server.run(register(SKYPE_TOKEN, hosts=Hosts()))
    assert reg == Registration(
        RegistrationToken("registrationToken=Zm9vYmFy", epoch(1700086400)), DB3, EP
    )
    assert [r.url for r in server.sent] == [
        f"{DEFAULT}/users/ME/endpoints",
        f"{DB3}/users/ME/endpoints",
    ]
    for index, req in enumerate(server.sent):
        when = T0 + dt.timedelta(seconds=7 * index)
        assert req.headers == (
            ("User-Agent", USER_AGENT),
            ("LockAndKey", lock_and_key(when)),
            ("Authentication", f"skypetoken={SECRET}"),
            ("BehaviorOverride", "redirectAs404"),
            ("Content-Type", "application/json"),
        )
        assert req.body == b'{"endpointFeatures": "Agent"}'
    assert f"time={1700000007}" in server.sent[1].header("LockAndKey")  # type: ignore[operator]
    assert SECRET not in repr(server.sent[0])


def test_registration_request_builder() -> None:
    req = registration_request(SKYPE_TOKEN, DB3, T0)
    assert (req.method, req.url) == ("POST", f"{DB3}/users/ME/endpoints")
    assert req.header("LockAndKey") == (
        "appId=msmsgs@msnmsgr.com; time=1700000000; lockAndKeyResponse=abe5fadd8fa2021a9041e263584ea4ab"
    )


def test_starts_from_learnt_messenger() -> None:
    server = Server(answer(201, srt=GOOD_HEADER))
    reg = server.run(register(SKYPE_TOKEN, hosts=Hosts(), messenger=DB3 + "/"))
    assert reg.messenger == DB3
    assert [r.url for r in server.sent] == [f"{DB3}/users/ME/endpoints"]


def test_untrusted_start_is_refused_before_sending() -> None:
    server = Server(answer(201, srt=GOOD_HEADER))
    with pytest.raises(UntrustedHostError):
        server.run(register(SKYPE_TOKEN, hosts=Hosts(), messenger="https://evil.example/v1"))
    assert server.sent == []


def test_malformed_start_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        Server(answer(201)).run(register(SKYPE_TOKEN, hosts=Hosts(), messenger="not a url"))
    with pytest.raises(LocalProtocolError):
        Server(answer(201)).run(register(SKYPE_TOKEN, hosts=Hosts(), max_redirects=-1))


def test_redirect_loop_is_bounded() -> None:
    hosts = [DEFAULT, DB3, "https://db4-client-s.gateway.messenger.live.com/v1"]
    server = Server(
        lambda req: HttpResponse(
            404, [("Location", f"{hosts[len(server.sent) % 3]}/users/ME/endpoints")]
        )
    )
    with pytest.raises(RemoteProtocolError, match="more than 2 times") as info:
        server.run(register(SKYPE_TOKEN, hosts=Hosts(), max_redirects=2))
    assert len(server.sent) == 3
    assert info.value.status == 404
    assert SECRET not in str(info.value)


def test_zero_redirects_allowed() -> None:
    server = Server(answer(404, location=f"{DB3}/users/ME/endpoints"))
    with pytest.raises(RemoteProtocolError, match="more than 0 times"):
        server.run(register(SKYPE_TOKEN, hosts=Hosts(), max_redirects=0))
    assert len(server.sent) == 1


def test_404_without_location_retries_once_then_fails() -> None:
    server = Server(answer(404))
    with pytest.raises(RemoteProtocolError, match="neither a registration token nor a redirect"):
        server.run(register(SKYPE_TOKEN, hosts=Hosts()))
    assert len(server.sent) == 2
    assert server.sleeps == [NO_TOKEN_RETRY_DELAY]


def test_answer_without_token_then_success() -> None:
    replies = iter([HttpResponse(404), HttpResponse(201, [("Set-RegistrationToken", GOOD_HEADER)])])
    server = Server(lambda req: next(replies))
    reg = server.run(register(SKYPE_TOKEN, hosts=Hosts()))
    assert reg.messenger == DEFAULT
    assert reg.endpoint_id == EP
    assert server.sleeps == [NO_TOKEN_RETRY_DELAY]


def test_same_host_location_without_token_does_not_carry_endpoint() -> None:
    replies = iter(
        [
            HttpResponse(201, [("Location", f"{DEFAULT}/users/ME/endpoints/%7B{EP[1:-1]}%7D")]),
            HttpResponse(201, [("Set-RegistrationToken", "registrationToken=a; expires=9")]),
        ]
    )
    server = Server(lambda req: next(replies))
    reg = server.run(register(SKYPE_TOKEN, hosts=Hosts()))
    assert reg.endpoint_id is None


def test_blank_headers_count_as_absent() -> None:
    replies = iter(
        [
            HttpResponse(404, [("Location", "  "), ("Set-RegistrationToken", "")]),
            HttpResponse(201, [("Set-RegistrationToken", GOOD_HEADER)]),
        ]
    )
    server = Server(lambda req: next(replies))
    assert server.run(register(SKYPE_TOKEN, hosts=Hosts())).endpoint_id == EP
    assert len(server.sent) == 2


def test_rate_limit_carries_retry_after() -> None:
    with pytest.raises(SkypeRateLimitException) as info:
        Server(answer(429, retry="30")).run(register(SKYPE_TOKEN, hosts=Hosts()))
    assert info.value.retry_after == 30.0


def test_status_error_message_has_no_token() -> None:
    with pytest.raises(SkypeApiException) as info:
        Server(answer(403, srt=GOOD_HEADER)).run(register(SKYPE_TOKEN, hosts=Hosts()))
    assert str(info.value) == f"403 response from POST {DEFAULT}/users/ME/endpoints"


@pytest.mark.parametrize(
    ("body", "endpoint"),
    [
        (b'[{"id": "{3F2504E0-4F89-41D3-9A0C-0305E82C3301}"}]', EP),
        (b'[{"id": 5}]', None),
        (b'[{"id": "nonsense"}]', None),
        (b'["x"]', None),
        (b"{}", None),
        (b"not json", None),
    ],
)
def test_json_fallback_shapes(
    body: bytes, endpoint: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    server = Server(
        lambda req: HttpResponse(
            200, [("Set-RegistrationToken", "registrationToken=TOK; expires=9")], body
        )
    )
    with caplog.at_level(logging.WARNING, logger="skyproto"):
        reg = server.run(register(SKYPE_TOKEN, hosts=Hosts()))
    assert reg.endpoint_id == endpoint
    assert reg.token.token == "registrationToken=TOK"
    assert bool(caplog.records) == (endpoint is None)
    assert all("TOK" not in r.getMessage() for r in caplog.records)


def test_loopback_profile_with_path_prefixed_bases() -> None:
    base = "http://127.0.0.1:8080/client-s.gateway.messenger.live.com/v1"
    db3 = "http://127.0.0.1:8080/db3-client-s.gateway.messenger.live.com/v1"
    replies = iter(
        [
            HttpResponse(404, [("Location", f"{db3}/users/ME/endpoints")]),
            HttpResponse(
                201,
                [
                    ("Location", f"{db3}/users/ME/endpoints/%7B{EP[1:-1]}%7D"),
                    ("Set-RegistrationToken", "registrationToken=TOK; expires=1700086400"),
                ],
            ),
        ]
    )
    server = Server(lambda req: next(replies))
    reg = server.run(register(SKYPE_TOKEN, hosts=LOOPBACK))
    assert reg == Registration(
        RegistrationToken("registrationToken=TOK", epoch(1700086400)), db3, EP
    )
    assert [r.url for r in server.sent] == [
        f"{base}/users/ME/endpoints",
        f"{db3}/users/ME/endpoints",
    ]


def test_loopback_profile_refuses_the_real_host() -> None:
    # Under an override profile only the configured bases are trusted for the overridden hosts.
    server = Server(answer(404, location=f"{DB3}/users/ME/endpoints"))
    with pytest.raises(UntrustedHostError):
        server.run(register(SKYPE_TOKEN, hosts=LOOPBACK))
    assert len(server.sent) == 1


def test_same_base_with_query_and_trailing_slash_is_not_a_redirect() -> None:
    server = Server(answer(201, location=f"{DEFAULT}/users/ME/endpoints/?x=1", srt=GOOD_HEADER))
    assert server.run(register(SKYPE_TOKEN, hosts=Hosts())).messenger == DEFAULT
    assert len(server.sent) == 1


def test_bad_token_header_on_redirect_is_ignored() -> None:
    replies = iter(
        [
            HttpResponse(
                404, [("Location", f"{DB3}/users/ME/endpoints"), ("Set-RegistrationToken", "junk")]
            ),
            HttpResponse(201, [("Set-RegistrationToken", GOOD_HEADER)]),
        ]
    )
    server = Server(lambda req: next(replies))
    assert server.run(register(SKYPE_TOKEN, hosts=Hosts())).messenger == DB3


def test_transport_error_propagates() -> None:
    from skyproto import TransportError

    step = Stepper(register(SKYPE_TOKEN, hosts=Hosts()))
    step.send(T0)
    with pytest.raises(TransportError):
        step.throw(TransportError("connection refused"))
