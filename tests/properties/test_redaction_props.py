"""No secret reaches a repr, a str, a traffic log line or an exception message.

Each secret is a random string (8 to 40 characters from nearly all of Unicode) placed, encoded as a
real client or server would encode it, in one of the places the protocol carries credentials:
auth headers, cookies, JSON fields, form fields, SOAP elements, HTML inputs, query strings and
``Location`` URLs. Two things are checked for every rendering: the secret (raw and encoded) does
not appear, and the rendering is the same as with a different secret in its place, so no part
of it depends on the secret at all.
"""

from __future__ import annotations

import html
import inspect
import json
import re
import urllib.parse
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from skyproto import HttpRequest, HttpResponse, errors
from skyproto._http import describe
from skyproto.calls import check_status
from skyproto.tokens import Credentials, RegistrationToken, SkypeToken

PLACEHOLDER = "PLACEHOLDER-SECRET-0123456789"
secrets = st.text(st.characters(blacklist_categories=("Cs",)), min_size=8, max_size=40)

Message = HttpRequest | HttpResponse
Builder = Callable[[str], Message]


def xml_text(secret: str) -> str:
    return secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def form(*pairs: tuple[str, str]) -> bytes:
    return urllib.parse.urlencode(pairs).encode()


def header_safe(secret: str) -> str:
    """What a client would put in a header: the token itself, percent-encoded if it must be."""
    return urllib.parse.quote(secret, safe="")


LOGIN = "https://login.skype.com/login/oauth/microsoft"
FORM = (("Content-Type", "application/x-www-form-urlencoded"),)
HTML = (("Content-Type", "text/html; charset=utf-8"),)
JSON = (("Content-Type", "application/json"),)

# Each builder puts the secret in one credential-bearing place of a realistic message.
PLACES: dict[str, Builder] = {
    "authorization": lambda s: HttpRequest(
        "GET", LOGIN, (("Authorization", f"skype_token {header_safe(s)}"),)
    ),
    "authentication": lambda s: HttpRequest(
        "POST",
        "https://client-s.gateway.messenger.live.com/v1/users/ME/endpoints",
        (("Authentication", f"skypetoken={header_safe(s)}"), ("LockAndKey", "appId=x")),
        b'{"endpointFeatures": "Agent"}',
    ),
    "x-skypetoken": lambda s: HttpRequest(
        "GET", "https://api.skype.com/x", (("X-SkypeToken", header_safe(s)),)
    ),
    "registration-token": lambda s: HttpRequest(
        "PUT",
        "https://client-s.gateway.messenger.live.com/v1/users/ME/presenceDocs/messagingService",
        (("RegistrationToken", f"registrationToken={header_safe(s)}"),),
    ),
    "set-registration-token": lambda s: HttpResponse(
        201,
        (
            ("Set-RegistrationToken", f"registrationToken={header_safe(s)}; expires=1; x=y"),
            ("Location", "https://db3-client-s.gateway.messenger.live.com/v1/users/ME/endpoints"),
        ),
    ),
    "cookie": lambda s: HttpRequest(
        "POST", LOGIN, (("Cookie", f"MSPOK=a; refresh-token={header_safe(s)}"),)
    ),
    "set-cookie": lambda s: HttpResponse(
        302, (("Set-Cookie", f"refresh-token={header_safe(s)}; Path=/; Secure"),)
    ),
    "csrf-header": lambda s: HttpRequest(
        "POST", "https://api.join.skype.com/v1/threads", (("csrf_token", header_safe(s)),)
    ),
    "json-password-hash": lambda s: HttpRequest.build(
        "POST",
        "https://api.skype.com/login/skypetoken",
        json={"username": "me", "passwordHash": s, "scopes": "client"},
    ),
    "json-skypetoken": lambda s: HttpResponse(
        200, JSON, json.dumps({"skypetoken": s, "expiresIn": 86400}).encode()
    ),
    "json-nested": lambda s: HttpResponse.build(
        200, json={"a": [{"token": s}, {"refresh_token": [s]}], "b": {"password": s}}
    ),
    "json-unlabelled": lambda s: HttpResponse(200, (), json.dumps({"access_token": s}).encode()),
    "form-password": lambda s: HttpRequest(
        "POST", LOGIN, FORM, form(("login", "me"), ("passwd", s), ("PPFT", s))
    ),
    "form-t": lambda s: HttpRequest("POST", LOGIN, FORM, form(("t", s), ("oauthPartner", "999"))),
    "form-unlabelled": lambda s: HttpRequest(
        "POST", LOGIN, (), form(("client_id", "578134"), ("t", s))
    ),
    "soap-password": lambda s: HttpRequest(
        "POST",
        "https://login.live.com/RST.srf",
        (),
        (
            '<Envelope xmlns:wsse="x"><Header><wsse:Security><wsse:UsernameToken Id="user">'
            f"<wsse:Username>me@example.com</wsse:Username><wsse:Password>{xml_text(s)}"
            "</wsse:Password></wsse:UsernameToken></wsse:Security></Header></Envelope>"
        ).encode(),
    ),
    "soap-security-token": lambda s: HttpResponse(
        200,
        (("Content-Type", "application/soap+xml"),),
        (
            '<S:Envelope><wst:RequestedSecurityToken><wsse:BinarySecurityToken Id="Compact0">'
            f"{xml_text(s)}</wsse:BinarySecurityToken></wst:RequestedSecurityToken></S:Envelope>"
        ).encode(),
    ),
    "html-skypetoken": lambda s: HttpResponse(
        200,
        HTML,
        (
            '<html><form><input type="hidden" name="skypetoken" '
            f'value="{html.escape(s)}"><input name="expires_in" value="86400"></form></html>'
        ).encode(),
    ),
    "html-t": lambda s: HttpResponse(
        200,
        HTML,
        f"<form><input type='hidden' name='t' id='t' value='{html.escape(s)}'></form>".encode(),
    ),
    "html-value-first": lambda s: HttpResponse(
        200, HTML, f'<div value="{html.escape(s)}" id="t"></div>'.encode()
    ),
    "html-ppft": lambda s: HttpResponse(
        200,
        HTML,
        (
            '<script>var ServerData={sFTTag:\'<input type="hidden" name="PPFT" id="i0327" '
            f"value=\"{html.escape(s)}\"/>',urlPost:'https://login.live.com/post.srf'}};</script>"
        ).encode(),
    ),
    "query": lambda s: HttpRequest.build(
        "GET",
        LOGIN,
        params={"client_id": "578134", "t": s, "redirect_uri": "https://web.skype.com"},
    ),
    "query-in-response-url": lambda s: HttpResponse(
        200, (), b"", f"{LOGIN}?access_token={urllib.parse.quote(s, safe='')}&x=1"
    ),
    "location": lambda s: HttpResponse(
        302, (("Location", f"https://web.skype.com/?skypetoken={urllib.parse.quote(s, safe='')}"),)
    ),
    "fragment": lambda s: HttpResponse(
        302,
        (("Location", f"https://web.skype.com/#access_token={urllib.parse.quote(s, safe='')}"),),
    ),
}

_LENGTHS = re.compile(r"<\d+ bytes>|\(\d+ bytes\)")


def renderings(message: Message) -> list[str]:
    return [repr(message), str(message), describe(message)]


def normalised(texts: list[str]) -> list[str]:
    return [_LENGTHS.sub("<n bytes>", text) for text in texts]


def forms_of(secret: str) -> set[str]:
    """The secret as it may appear: raw and in each encoding the builders use."""
    return {
        secret,
        header_safe(secret),
        urllib.parse.quote_plus(secret),
        html.escape(secret),
        xml_text(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def check_hidden(secret: str, texts: list[str], boilerplate: list[str]) -> None:
    joined = "\n".join(boilerplate)
    for form_ in forms_of(secret):
        assume(form_ not in joined)
    for text in texts:
        for form_ in forms_of(secret):
            assert form_ not in text


@pytest.mark.parametrize("place", sorted(PLACES))
@given(secret=secrets)
def test_secrets_never_reach_a_repr_or_a_log_line(place: str, secret: str) -> None:
    build = PLACES[place]
    message = build(secret)
    shown = renderings(message)
    boilerplate = renderings(build(PLACEHOLDER))
    check_hidden(secret, shown, boilerplate)
    assert normalised(shown) == normalised(boilerplate)


EXCEPTIONS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.SkypeException) and cls.__module__ == errors.__name__
]


def test_every_exception_class_is_covered() -> None:
    public = {cls.__name__ for cls in EXCEPTIONS if not cls.__name__.startswith("_")}
    assert public == set(errors.__all__)


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: cls.__name__)
@given(secret=secrets)
def test_exceptions_built_with_a_secret_bearing_response_hide_it(
    cls: type[errors.SkypeException], secret: str
) -> None:
    def build(value: str) -> errors.SkypeException:
        response = PLACES["json-skypetoken"](value)
        assert isinstance(response, HttpResponse)
        response = HttpResponse(
            401,
            (*response.headers, ("Set-Cookie", f"t={header_safe(value)}")),
            response.body,
            f"https://api.skype.com/x?skypetoken={header_safe(value)}",
        )
        if issubclass(cls, errors.SkypeRateLimitException):
            return cls("Rate limit exceeded", response, 3.0)
        if "response" in inspect.signature(cls).parameters:
            return cls("401 response from GET https://api.skype.com/x", response)  # type: ignore[call-arg]
        return cls("transport failed")

    error = build(secret)
    shown = [repr(error), str(error), *map(str, error.args)]
    reference = build(PLACEHOLDER)
    check_hidden(secret, shown, [repr(reference), str(reference), *map(str, reference.args)])
    assert normalised(shown) == normalised(
        [repr(reference), str(reference), *map(str, reference.args)]
    )


@given(secret=secrets)
def test_errors_raised_by_the_core_never_quote_the_secret(secret: str) -> None:
    raised: list[BaseException] = []
    attempts: list[Callable[[], object]] = [
        lambda: HttpResponse(200, (), b"not json " + secret.encode()).json(),
        lambda: HttpRequest("POST", "https://x/", (), b"<" + secret.encode()).json(),
        lambda: check_status(
            HttpResponse(500, (("X-SkypeToken", header_safe(secret)),), secret.encode()),
            {200},
            method="GET",
            url=f"https://api.skype.com/x?skypetoken={header_safe(secret)}",
        ),
        lambda: HttpRequest("GET", "https://x/", (("X-SkypeToken", f"{secret}\r\n"),)),
        lambda: HttpRequest("GET", "https://x/", (("X-SkypeToken", f" {secret} "),)).to_h11(),
        lambda: HttpRequest.build("GET", "https://x/", cookies={"c": f"{secret};"}),
    ]
    for attempt in attempts:
        try:
            attempt()
        except errors.SkypeException as exc:
            raised.append(exc)
    assert len(raised) == len(attempts)
    for exc in raised:
        text = f"{exc!s} {exc!r}"
        check_hidden(
            secret,
            [text],
            [PLACEHOLDER, "X-SkypeToken", "cookie 'c'", "GET https://api.skype.com/x"],
        )
        assert exc.__cause__ is None or secret not in str(exc.__cause__)


@given(secret=secrets)
def test_token_and_credential_reprs_hide_the_secret(secret: str) -> None:
    import datetime as dt

    expiry = dt.datetime(2024, 5, 6, tzinfo=dt.UTC)
    values = [
        SkypeToken(secret, expiry),
        RegistrationToken(secret, expiry),
        Credentials("me", secret),
    ]
    references = [
        SkypeToken(PLACEHOLDER, expiry),
        RegistrationToken(PLACEHOLDER, expiry),
        Credentials("me", PLACEHOLDER),
    ]
    shown = [text for value in values for text in (repr(value), str(value))]
    boilerplate = [text for value in references for text in (repr(value), str(value))]
    check_hidden(secret, shown, boilerplate)
    assert shown == boilerplate
