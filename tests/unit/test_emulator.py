"""The pure emulator: every route with good and bad input, the scenario knobs, host mapping.

Requests are built by hand here (not with the client flows), so these tests pin the wire format
the emulator accepts. SkPy 0.11 is used only as an oracle for how its event parser classifies
what the emulator sends.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyproto import Hosts, HttpRequest, HttpResponse, LocalProtocolError
from skyproto.emulator import (
    DEFAULT_ACCOUNT,
    DEFAULT_MEETING_ID,
    Account,
    Emulator,
    EmulatorServer,
    Fault,
    Scenario,
    numbered_accounts,
)
from skyproto.emulator.event_stream import ACK_KINDS, DEFAULT_EVENTS, EVENT_KINDS, render_event
from skyproto.emulator.profile import (
    FOREIGN_BASE,
    FOREIGN_LOCATION,
    MAX_NUMBERED_ACCOUNTS,
    SERVED_HOSTS,
    numbered_account,
    profile,
)
from skyproto.emulator.scenario import ROUTES, parse_fault, parse_scenario, routes_named
from skyproto.ids import password_hash
from skyproto.mac256 import lock_and_key, mac256

NOW = dt.datetime(2024, 3, 5, 14, 0, 0, tzinfo=dt.UTC)
NOW_EPOCH = 1709647200
H = "https://client-s.gateway.messenger.live.com/v1"
DB3 = "https://db3-client-s.gateway.messenger.live.com/v1"
ACCOUNT = DEFAULT_ACCOUNT
BROWSER = (
    "Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/33.0.1750.117 Safari/537.36"
)
WREPLY_QUERY = (
    "wa=wsignin1.0&wp=MBI_SSL&wreply=https%3A%2F%2Flw.skype.com%2Flogin%2Foauth%2Fproxy"
    "%3Fclient_id%3D578134%26site_name%3Dlw.skype.com%26redirect_uri%3Dhttps%253A%252F%252F"
    "web.skype.com%252F"
)
SET_REG_TOKEN = re.compile(
    r"registrationToken=([A-Za-z0-9+/=]+); expires=([0-9]+); endpointId=(\{[a-z0-9-]+\})"
)
# The reference client's Location pattern (docs/protocol.md §3.3).
SKPY_LOCATION = re.compile(r"(https://[^/]+/v1)/users/ME/endpoints(/(%7B[a-z0-9\-]+%7D))?")
PPFT = re.compile(r'<input.*?name="PPFT".*?value="([^"]*)"')
OPID = re.compile(r"opid=([A-Za-z0-9]+)", re.IGNORECASE)
T_VALUE = re.compile(r'<input[^>]*id="t"[^>]*value="([^"]*)"')
SKYPETOKEN = re.compile(r'<input[^>]*name="skypetoken"[^>]*value="([^"]*)"')
EXPIRES_IN = re.compile(r'<input[^>]*name="expires_in"[^>]*value="([^"]*)"')
STRICT_ERR = re.compile(r"sErrTxt:'([^'\\]*(\\.[^'\\]*)+)'")
LOOSE_ERR = re.compile(r"sErrTxt:'([^'\\]*(\\.[^'\\]*)*)'")
TWO_FACTOR = re.compile(r"\bV:\s*\[\s*\{")


# -- helpers ------------------------------------------------------------------------------------


def make(scenario: Scenario | None = None, **kwargs: Any) -> Emulator:
    return Emulator(scenario=scenario, seed=7, **kwargs)


def req(
    method: str,
    url: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    json: Any = None,
    form: list[tuple[str, str]] | None = None,
    content: bytes | str | None = None,
    cookies: dict[str, str] | None = None,
) -> HttpRequest:
    extra = headers or []
    if not any(name.lower() == "user-agent" for name, _ in extra):
        extra = [("User-Agent", "SkPy"), *extra]
    return HttpRequest.build(
        method,
        url,
        headers=extra,
        json=json,
        form=form,
        content=content,
        cookies=cookies,
    )


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def soap_envelope(
    user: str, password: str, *, address: str = "wl.skype.com", policy: str = "MBI_SSL"
) -> str:
    return f"""<Envelope xmlns='http://schemas.xmlsoap.org/soap/envelope/'
   xmlns:wsse='http://schemas.xmlsoap.org/ws/2003/06/secext'
   xmlns:wsp='http://schemas.xmlsoap.org/ws/2002/12/policy'
   xmlns:wsa='http://schemas.xmlsoap.org/ws/2004/03/addressing'
   xmlns:wst='http://schemas.xmlsoap.org/ws/2004/04/trust'
   xmlns:ps='http://schemas.microsoft.com/Passport/SoapServices/PPCRL'>
  <Header>
    <wsse:Security>
      <wsse:UsernameToken Id='user'>
        <wsse:Username>{escape(user)}</wsse:Username>
        <wsse:Password>{escape(password)}</wsse:Password>
      </wsse:UsernameToken>
    </wsse:Security>
  </Header>
  <Body>
    <ps:RequestMultipleSecurityTokens Id='RSTS'>
      <wst:RequestSecurityToken Id='RST0'>
        <wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>
        <wsp:AppliesTo>
          <wsa:EndpointReference>
            <wsa:Address>{address}</wsa:Address>
          </wsa:EndpointReference>
        </wsp:AppliesTo>
        <wsse:PolicyReference URI='{policy}'></wsse:PolicyReference>
      </wst:RequestSecurityToken>
    </ps:RequestMultipleSecurityTokens>
  </Body>
</Envelope>"""


def soap_parts(response: HttpResponse) -> dict[str, str]:
    """Local name -> text of every element, as the reference client reads the answer."""
    out: dict[str, str] = {}
    for element in ET.fromstring(response.body).iter():
        out.setdefault(element.tag.rsplit("}", 1)[-1], element.text or "")
    return out


def soap_login(emu: Emulator, user: str = ACCOUNT.user, password: str = ACCOUNT.password) -> str:
    response = emu.handle(
        req("POST", "https://login.live.com/RST.srf", content=soap_envelope(user, password)), NOW
    )
    assert response.status == 200
    return soap_parts(response)["BinarySecurityToken"]


def edge(emu: Emulator, security_token: str, now: dt.datetime = NOW) -> HttpResponse:
    form = [("partner", "999"), ("access_token", security_token), ("scopes", "client")]
    return emu.handle(req("POST", "https://edge.skype.com/rps/v1/rps/skypetoken", form=form), now)


def skype_token(emu: Emulator, account: Account = ACCOUNT) -> str:
    token: str = edge(emu, soap_login(emu, account.user, account.password)).json()["skypetoken"]
    return token


def register(
    emu: Emulator,
    token: str,
    base: str = H,
    *,
    now: dt.datetime = NOW,
    lock: str | None = None,
    redirect_as_404: bool = True,
) -> HttpResponse:
    headers = [
        ("LockAndKey", lock if lock is not None else lock_and_key(now)),
        ("Authentication", f"skypetoken={token}"),
    ]
    if redirect_as_404:
        headers.append(("BehaviorOverride", "redirectAs404"))
    return emu.handle(
        req(
            "POST",
            f"{base}/users/ME/endpoints",
            headers=headers,
            json={"endpointFeatures": "Agent"},
        ),
        now,
    )


@attrs.frozen
class Session:
    token: str
    reg: str  # the whole registrationToken=... fragment
    endpoint: str  # {uuid}
    base: str

    @property
    def wire_endpoint(self) -> str:
        return self.endpoint.replace("{", "%7B").replace("}", "%7D")


def session(emu: Emulator, base: str = H, *, token: str | None = None) -> Session:
    """A registered endpoint, with ``token`` (default: a new one for the main account)."""
    token = token if token is not None else skype_token(emu)
    response = register(emu, token, base)
    assert response.status == 201, response.text
    match = SET_REG_TOKEN.fullmatch(response.header("set-registrationtoken") or "")
    assert match is not None
    return Session(token, f"registrationToken={match.group(1)}", match.group(3), base)


def call(
    emu: Emulator,
    s: Session,
    method: str,
    path: str,
    *,
    json: Any = None,
    now: dt.datetime = NOW,
    reg: str | None = None,
) -> HttpResponse:
    url = path if path.startswith("http") else f"{s.base}{path}"
    headers = [("RegistrationToken", reg if reg is not None else s.reg)]
    return emu.handle(req(method, url, headers=headers, json=json), now)


SUBSCRIPTION = {
    "interestedResources": [
        "/v1/users/ME/conversations/ALL/properties",
        "/v1/users/ME/conversations/ALL/messages",
        "/v1/threads/ALL",
    ],
    "channelType": "HttpLongPoll",
    "conversationType": 2047,
}
CONFIG = {
    "id": "messagingService",
    "type": "EndpointPresenceDoc",
    "selfLink": "uri",
    "privateInfo": {"epname": "skype"},
    "publicInfo": {
        "capabilities": "",
        "type": 1,
        "skypeNameVersion": "skype.com",
        "nodeInfo": "xx",
        "version": "908/1.30.0.128",
    },
}


def subscribe(emu: Emulator, s: Session, endpoint: str = "SELF") -> HttpResponse:
    return call(emu, s, "POST", f"/users/ME/endpoints/{endpoint}/subscriptions", json=SUBSCRIPTION)


def poll(emu: Emulator, s: Session, endpoint: str = "SELF") -> HttpResponse:
    return call(emu, s, "POST", f"/users/ME/endpoints/{endpoint}/subscriptions/0/poll")


def error_code(response: HttpResponse) -> Any:
    return response.json()["errorCode"]


def live_error(text: str, pattern: re.Pattern[str] = STRICT_ERR) -> str | None:
    """The sErrTxt message as the reference client extracts it, or None."""
    match = pattern.search(text)
    if match is None:
        return None
    body = re.sub(r"<.*?>", "", match.group(1))
    return body.replace("\\'", "'").replace("\\\\", "\\")


# -- SOAP and edge ------------------------------------------------------------------------------


@pytest.mark.parametrize("login", [ACCOUNT.user, ACCOUNT.skype_name, "FRED@Example.com"])
def test_soap_issues_a_compact_security_token(login: str) -> None:
    emu = make()
    response = emu.handle(
        req(
            "POST", "https://login.live.com/RST.srf", content=soap_envelope(login, ACCOUNT.password)
        ),
        NOW,
    )
    assert response.status == 200
    assert response.header("content-type") == "application/soap+xml; charset=utf-8"
    parts = soap_parts(response)
    assert "Fault" not in parts
    assert re.fullmatch(r"t=EwA[A-Za-z0-9+/]+&p=", parts["BinarySecurityToken"])
    assert parts["Created"] == "2024-03-05T14:00:00Z"
    assert parts["Expires"] == "2024-03-05T15:00:00Z"


def test_soap_reads_escaped_credentials() -> None:
    account = Account(password="p&ss<w>rd 'x\"")
    emu = make(account=account)
    token = soap_login(emu, account.user, account.password)
    assert token.startswith("t=EwA")


@pytest.mark.parametrize(
    ("scenario", "password"),
    [(Scenario(), "wrong"), (Scenario(wrong_password=True), ACCOUNT.password)],
)
def test_soap_refuses_bad_credentials_with_a_fault(scenario: Scenario, password: str) -> None:
    emu = make(scenario)
    body = soap_envelope(ACCOUNT.user, password)
    response = emu.handle(req("POST", "https://login.live.com/RST.srf", content=body), NOW)
    assert response.status == 200
    parts = soap_parts(response)
    assert (parts["faultcode"], parts["faultstring"]) == (
        "wsse:FailedAuthentication",
        "Authentication Failure",
    )
    assert "BinarySecurityToken" not in parts


def test_soap_unknown_user_gets_the_same_fault() -> None:
    emu = make()
    body = soap_envelope("nobody@example.com", ACCOUNT.password)
    parts = soap_parts(emu.handle(req("POST", "https://login.live.com/RST.srf", content=body), NOW))
    assert parts["faultcode"] == "wsse:FailedAuthentication"


@pytest.mark.parametrize(
    ("body", "status", "faultcode"),
    [
        ("not xml at all", 400, "S:Client"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><Envelope/>', 400, "S:Client"),
        ("<Envelope/>", 400, "S:Client"),
        (
            soap_envelope(ACCOUNT.user, ACCOUNT.password, address="example.com"),
            200,
            "wst:InvalidRequest",
        ),
        (soap_envelope(ACCOUNT.user, ACCOUNT.password, policy="OTHER"), 200, "wst:InvalidRequest"),
    ],
)
def test_soap_rejects_malformed_envelopes(body: str, status: int, faultcode: str) -> None:
    response = make().handle(req("POST", "https://login.live.com/RST.srf", content=body), NOW)
    assert response.status == status
    assert soap_parts(response)["faultcode"] == faultcode


def test_edge_exchanges_the_security_token() -> None:
    emu = make(Scenario(token_lifetime=90))
    body = edge(emu, soap_login(emu)).json()
    assert list(body) == ["skypetoken", "expiresIn", "skypeid", "signinname"]
    assert body["expiresIn"] == 90
    assert body["skypeid"] == "live:fred"
    assert re.fullmatch(r"eyJ[A-Za-z0-9_.-]+", body["skypetoken"])


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ([("partner", "999"), ("access_token", "t=bogus&p="), ("scopes", "client")], 40120),
        ([("partner", "1"), ("access_token", "t=bogus&p="), ("scopes", "client")], 40000),
        ([("partner", "999"), ("access_token", "t=bogus&p=")], 40000),
    ],
)
def test_edge_answers_a_status_object_for_bad_input(form: list[tuple[str, str]], code: int) -> None:
    response = make().handle(
        req("POST", "https://edge.skype.com/rps/v1/rps/skypetoken", form=form), NOW
    )
    assert response.status == 200
    assert response.json()["status"]["code"] == code
    assert "skypetoken" not in response.json()


def test_edge_refuses_an_expired_security_token() -> None:
    emu = make()
    token = soap_login(emu)
    assert edge(emu, token, NOW + dt.timedelta(minutes=59)).json().get("skypetoken")
    assert edge(emu, token, NOW + dt.timedelta(hours=1)).json()["status"]["code"] == 40120


def test_credential_type_reports_whether_the_account_exists() -> None:
    emu = make()
    url = "https://login.live.com/GetCredentialType.srf"
    known = emu.handle(req("POST", url, json={"username": ACCOUNT.user}), NOW).json()
    unknown = emu.handle(req("POST", url, json={"username": "x@example.com"}), NOW).json()
    assert (known["IfExistsResult"], unknown["IfExistsResult"]) == (0, 1)


# -- Live web form ------------------------------------------------------------------------------


def live_start(emu: Emulator) -> tuple[str, dict[str, str]]:
    """Stages up to the sign-in page: (PPFT, cookies to send)."""
    start = emu.handle(
        req(
            "GET",
            "https://login.skype.com/login/oauth/microsoft?client_id=578134"
            "&redirect_uri=https%3A%2F%2Fweb.skype.com",
        ),
        NOW,
    )
    assert start.status == 302
    location = start.header("location") or ""
    assert location.startswith("https://login.live.com/oauth20_authorize.srf?client_id=578134&")
    page = emu.handle(req("GET", location), NOW)
    assert page.status == 200
    cookies = page.set_cookies()
    assert set(cookies) == {"MSPRequ", "MSPOK", "uaid"}
    match = PPFT.search(page.text)
    assert match is not None
    assert "sFTTag:'<input" in page.text
    return match.group(1), cookies


def post_srf(
    emu: Emulator,
    form: list[tuple[str, str]],
    cookies: dict[str, str],
    *,
    cktst: str | None = None,
    now: dt.datetime = NOW,
) -> HttpResponse:
    jar = dict(cookies)
    jar["CkTst"] = cktst if cktst is not None else f"G{NOW_EPOCH * 1000 + 123}"
    url = f"https://login.live.com/ppsecure/post.srf?{WREPLY_QUERY}"
    return emu.handle(req("POST", url, form=form, cookies=jar), now)


def credentials(
    ppft: str, login: str = ACCOUNT.skype_name, password: str = ACCOUNT.password
) -> list[tuple[str, str]]:
    return [("login", login), ("passwd", password), ("PPFT", ppft), ("loginoptions", "3")]


def confirm(opid: str, ppft: str) -> list[tuple[str, str]]:
    return [
        ("opid", opid),
        ("PPFT", ppft),
        ("site_name", "lw.skype.com"),
        ("oauthPartner", "999"),
        ("client_id", "578134"),
        ("redirect_uri", "https://web.skype.com"),
        ("type", "28"),
    ]


def t_exchange(emu: Emulator, t_value: str) -> HttpResponse:
    form = [
        ("t", t_value),
        ("client_id", "578134"),
        ("oauthPartner", "999"),
        ("site_name", "lw.skype.com"),
        ("redirect_uri", "https://web.skype.com"),
    ]
    url = "https://login.skype.com/login/microsoft?client_id=578134&redirect_uri=https%3A%2F%2Fweb.skype.com"
    return emu.handle(req("POST", url, form=form), NOW)


def live_t(emu: Emulator, account: Account = ACCOUNT) -> str:
    ppft, cookies = live_start(emu)
    second = post_srf(emu, credentials(ppft, account.skype_name, account.password), cookies)
    opid = OPID.search(second.text)
    assert opid is not None
    third = post_srf(emu, confirm(opid.group(1), ppft), cookies)
    t_match = T_VALUE.search(third.text)
    assert t_match is not None
    return t_match.group(1)


def test_live_flow_ends_with_a_skype_token_for_the_account() -> None:
    emu = make()
    ppft, cookies = live_start(emu)
    assert re.fullmatch(r"DQSsAb[A-Za-z0-9!*$]+", ppft)
    second = post_srf(emu, credentials(ppft), cookies)
    assert second.status == 200
    assert live_error(second.text) is None
    assert 'id="t"' not in second.text
    opid = OPID.search(second.text)
    assert opid is not None
    assert len(opid.group(1)) == 16
    third = post_srf(emu, confirm(opid.group(1), ppft), cookies)
    t_match = T_VALUE.search(third.text)
    assert t_match is not None
    exchanged = t_exchange(emu, t_match.group(1))
    token, expires = SKYPETOKEN.search(exchanged.text), EXPIRES_IN.search(exchanged.text)
    assert token is not None
    assert expires is not None
    assert expires.group(1) == "86400"
    profile_response = emu.handle(
        req(
            "GET",
            "https://api.skype.com/users/self/profile",
            headers=[("X-SkypeToken", token.group(1))],
        ),
        NOW,
    )
    assert profile_response.json()["username"] == "live:fred"


def test_live_pages_never_trip_the_page_check_by_accident() -> None:
    emu = make()
    ppft, cookies = live_start(emu)
    sign_in = emu.handle(
        req("GET", "https://login.live.com/oauth20_authorize.srf?client_id=578134"), NOW
    )
    second = post_srf(emu, credentials(ppft), cookies)
    for text in (sign_in.text, second.text):
        assert live_error(text) is None
        assert TWO_FACTOR.search(text) is None
        assert 'name="fmHF"' not in text
        assert re.search(r"<form(?![^>]*\bname=)", text) is None


def test_live_pages_have_the_real_shape() -> None:
    """ServerData on one line with an empty sErrTxt on every stage, the PPFT in sFTTag, urlPost."""
    emu = make()
    ppft, cookies = live_start(emu)
    sign_in = emu.handle(
        req("GET", "https://login.live.com/oauth20_authorize.srf?client_id=578134"), NOW
    )
    assert sign_in.set_cookies()["uaid"]
    second = post_srf(emu, credentials(ppft), cookies)
    opid = OPID.search(second.text)
    assert opid is not None
    third = post_srf(emu, confirm(opid.group(1), ppft), cookies)
    for text in (sign_in.text, second.text, third.text):
        line = next(x for x in text.splitlines() if x.startswith("var ServerData = {"))
        assert "sErrTxt:''," in line
        assert "iLoginStage:" in line
    assert re.search(r"urlPost:'[^']*/ppsecure/post\.srf\?", sign_in.text)
    assert re.search(r"sFTTag:'<input type=\"hidden\" name=\"PPFT\" [^']*/>'", sign_in.text)
    assert f"opid={opid.group(1)}" in re.findall(r"urlPost:'([^']*)'", second.text)[0]
    assert T_VALUE.search(third.text)


def test_live_error_page_uses_the_escaped_form() -> None:
    emu = make()
    ppft, cookies = live_start(emu)
    response = post_srf(emu, credentials(ppft, password="nope"), cookies)
    raw = re.search(r"sErrTxt:'((?:[^'\\]|\\.)*)'", response.text)
    assert raw is not None
    assert "don\\'t" in raw.group(1)
    assert '<a href=\\"https://account.live.com/' in raw.group(1)
    assert "<\\/a>" in raw.group(1)


def test_live_wrong_password_answers_an_error_the_reference_recognises() -> None:
    emu = make()
    ppft, cookies = live_start(emu)
    response = post_srf(emu, credentials(ppft, password="nope"), cookies)
    assert live_error(response.text) == (
        "Your account or password is incorrect. If you don't remember your password, reset it now."
    )
    assert OPID.search(response.text) is None


def test_live_wrong_password_knob_refuses_the_right_password() -> None:
    emu = make(Scenario(wrong_password=True))
    ppft, cookies = live_start(emu)
    response = post_srf(emu, credentials(ppft), cookies)
    assert live_error(response.text) is not None


def test_live_two_factor_knob() -> None:
    emu = make(Scenario(two_factor=True))
    ppft, cookies = live_start(emu)
    response = post_srf(emu, credentials(ppft), cookies)
    assert TWO_FACTOR.search(response.text) is not None
    assert "fr*****@example.com" in response.text
    assert T_VALUE.search(response.text) is None


def test_live_consent_knob() -> None:
    emu = make(Scenario(consent=True))
    ppft, cookies = live_start(emu)
    response = post_srf(emu, credentials(ppft), cookies)
    form = re.search(r'<form name="fmHF" id="fmHF" action="([^"]*)"', response.text)
    assert form is not None
    assert form.group(1).split("?")[0] == "https://account.live.com/tou/accrue"


@pytest.mark.parametrize(
    "spoil",
    ["no-cookies", "wrong-mspok", "old-cktst", "bad-cktst", "unknown-ppft", "expired-ppft"],
)
def test_live_credentials_step_validates_session(spoil: str) -> None:
    emu = make()
    ppft, cookies = live_start(emu)
    cktst = None
    now = NOW
    if spoil == "no-cookies":
        cookies = {}
    elif spoil == "wrong-mspok":
        cookies["MSPOK"] = "$uuid-other"
    elif spoil == "old-cktst":
        cktst = f"G{(NOW_EPOCH - 301) * 1000}"
    elif spoil == "bad-cktst":
        cktst = "1709647200000"
    elif spoil == "unknown-ppft":
        ppft = "DQSsAbnotissued"
    elif spoil == "expired-ppft":
        now = NOW + dt.timedelta(minutes=15)
        cktst = f"G{(NOW_EPOCH + 900) * 1000}"
    response = post_srf(emu, credentials(ppft), cookies, cktst=cktst, now=now)
    assert response.status == 200
    assert live_error(response.text) is not None
    assert OPID.search(response.text) is None


def test_live_accepts_a_cookie_sent_twice() -> None:
    emu = make()
    ppft, cookies = live_start(emu)
    jar = f"MSPRequ=stale; MSPRequ={cookies['MSPRequ']}; MSPOK={cookies['MSPOK']}; CkTst=G{NOW_EPOCH}000"
    url = f"https://login.live.com/ppsecure/post.srf?{WREPLY_QUERY}"
    response = emu.handle(req("POST", url, form=credentials(ppft), headers=[("Cookie", jar)]), NOW)
    assert OPID.search(response.text) is not None


def test_live_post_srf_checks_its_query() -> None:
    emu = make()
    ppft, cookies = live_start(emu)
    url = "https://login.live.com/ppsecure/post.srf?wa=wsignin1.0&wp=MBI_SSL"
    jar = {**cookies, "CkTst": f"G{NOW_EPOCH}000"}
    response = emu.handle(req("POST", url, form=credentials(ppft), cookies=jar), NOW)
    assert response.status == 400


def test_live_confirm_needs_the_issued_opid_once() -> None:
    emu = make()
    ppft, cookies = live_start(emu)
    opid = OPID.search(post_srf(emu, credentials(ppft), cookies).text)
    assert opid is not None
    wrong = post_srf(emu, confirm("WRONGOPID", ppft), cookies)
    assert live_error(wrong.text) is not None
    assert T_VALUE.search(wrong.text) is None
    assert T_VALUE.search(post_srf(emu, confirm(opid.group(1), ppft), cookies).text)
    again = post_srf(emu, confirm(opid.group(1), ppft), cookies)
    assert T_VALUE.search(again.text) is None


def test_live_confirm_checks_its_fields() -> None:
    emu = make()
    ppft, cookies = live_start(emu)
    opid = OPID.search(post_srf(emu, credentials(ppft), cookies).text)
    assert opid is not None
    form = [(k, "29" if k == "type" else v) for k, v in confirm(opid.group(1), ppft)]
    assert post_srf(emu, form, cookies).status == 400


def test_t_value_is_good_for_one_exchange() -> None:
    emu = make()
    t_value = live_t(emu)
    assert SKYPETOKEN.search(t_exchange(emu, t_value).text)
    second = t_exchange(emu, t_value)
    assert second.status == 200
    assert SKYPETOKEN.search(second.text) is None


def test_refresh_gives_a_fresh_t_for_a_valid_token() -> None:
    emu = make()
    token = skype_token(emu)
    url = "https://login.skype.com/login/login?client_id=578134&redirect_uri=https%3A%2F%2Fweb.skype.com"
    page = emu.handle(req("GET", url, cookies={"refresh-token": token}), NOW)
    t_match = T_VALUE.search(page.text)
    assert t_match is not None
    assert SKYPETOKEN.search(t_exchange(emu, t_match.group(1)).text)
    bad = emu.handle(req("GET", url, cookies={"refresh-token": "nope"}), NOW)
    assert T_VALUE.search(bad.text) is None
    assert live_error(bad.text, LOOSE_ERR) == "Your session has expired. Please sign in again."


# -- Skype API login and profile ----------------------------------------------------------------


@pytest.mark.parametrize("login", [ACCOUNT.skype_name, ACCOUNT.user])
def test_api_login_checks_the_password_hash(login: str) -> None:
    emu = make()
    url = "https://api.skype.com/login/skypetoken"
    good = {
        "username": login,
        "passwordHash": password_hash(login, ACCOUNT.password),
        "scopes": "client",
    }
    body = emu.handle(req("POST", url, json=good), NOW).json()
    assert list(body) == ["skypetoken", "expiresIn"]
    assert body["expiresIn"] == 86400
    refused = {
        "status": {"code": 40120, "text": "Authentication failed. Bad username or password."}
    }
    bad = dict(good, passwordHash=password_hash(login, "other"))
    assert emu.handle(req("POST", url, json=bad), NOW).json() == refused
    stranger = {**good, "username": "x@example.com"}
    stranger["passwordHash"] = password_hash("x@example.com", ACCOUNT.password)
    assert emu.handle(req("POST", url, json=stranger), NOW).json() == refused
    knob = make(Scenario(wrong_password=True))
    assert knob.handle(req("POST", url, json=good), NOW).json() == refused


@pytest.mark.parametrize("header", ["X-SkypeToken", "Authorization"])
def test_profile_accepts_both_token_headers(header: str) -> None:
    emu = make()
    token = skype_token(emu)
    value = token if header == "X-SkypeToken" else f"skype_token {token}"
    url = "https://api.skype.com/users/self/profile"
    body = emu.handle(req("GET", url, headers=[(header, value)]), NOW).json()
    assert (body["username"], body["firstname"], body["lastname"]) == (
        "live:fred",
        "Fred",
        "Bloggs",
    )


def test_profile_refuses_missing_unknown_and_expired_tokens() -> None:
    emu = make(Scenario(token_lifetime=60))
    token = skype_token(emu)
    url = "https://api.skype.com/users/self/profile"
    assert emu.handle(req("GET", url), NOW).status == 401
    assert emu.handle(req("GET", url, headers=[("X-SkypeToken", "x")]), NOW).status == 401
    later = NOW + dt.timedelta(seconds=59)
    assert emu.handle(req("GET", url, headers=[("X-SkypeToken", token)]), later).status == 200
    expired = NOW + dt.timedelta(seconds=60)
    assert emu.handle(req("GET", url, headers=[("X-SkypeToken", token)]), expired).status == 401


# -- guests -------------------------------------------------------------------------------------


def test_guest_join_flow() -> None:
    emu = make()
    page = emu.handle(
        req(
            "GET", f"https://join.skype.com/{DEFAULT_MEETING_ID}", headers=[("User-Agent", BROWSER)]
        ),
        NOW,
    )
    cookies = page.set_cookies()
    assert set(cookies) == {"csrf_token", "launcher_session_id"}
    meeting = emu.handle(
        req("GET", f"https://api.join.skype.com/v1/meetings/{DEFAULT_MEETING_ID}"), NOW
    )
    thread = meeting.json()["threadId"]
    assert thread == "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype"
    joined = emu.handle(
        req(
            "POST",
            f"https://api.join.skype.com/v1/threads/{thread}/members",
            headers=[
                ("csrf_token", cookies["csrf_token"]),
                ("X-Skype-Request-Id", cookies["launcher_session_id"]),
            ],
            json={"displayName": "Guest Person"},
        ),
        NOW,
    )
    assert joined.status == 200
    token = joined.json()["skypetoken"]
    profile_body = emu.handle(
        req("GET", "https://api.skype.com/users/self/profile", headers=[("X-SkypeToken", token)]),
        NOW,
    ).json()
    assert re.fullmatch(r"guest:guestperson_[0-9a-f]{8}", profile_body["username"])
    assert emu.guests() == (profile_body["username"],)
    assert register(emu, token).status == 201


def test_guest_join_validates_its_input() -> None:
    emu = make()
    url = f"https://join.skype.com/{DEFAULT_MEETING_ID}"
    plain = emu.handle(req("GET", url), NOW)
    assert plain.status == 200
    assert plain.set_cookies() == {}
    assert (
        emu.handle(
            req("GET", "https://join.skype.com/nope", headers=[("User-Agent", BROWSER)]), NOW
        ).status
        == 404
    )
    assert emu.handle(req("GET", "https://api.join.skype.com/v1/meetings/nope"), NOW).status == 404
    cookies = emu.handle(req("GET", url, headers=[("User-Agent", BROWSER)]), NOW).set_cookies()
    thread = "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype"

    def join(headers: list[tuple[str, str]], thread_id: str = thread, name: Any = "G") -> int:
        url = f"https://api.join.skype.com/v1/threads/{thread_id}/members"
        return emu.handle(req("POST", url, headers=headers, json={"displayName": name}), NOW).status

    assert join([]) == 403
    assert join([("csrf_token", "0" * 32)]) == 403
    good = [("csrf_token", cookies["csrf_token"])]
    assert join([*good, ("X-Skype-Request-Id", "other")]) == 403
    assert join(good, thread_id="None") == 404
    assert join(good, name="") == 400
    assert join(good) == 200


# -- registration -------------------------------------------------------------------------------


def test_registration_answers_201_with_location_and_token() -> None:
    emu = make(Scenario(registration_lifetime=3600))
    response = register(emu, skype_token(emu))
    assert response.status == 201
    match = SET_REG_TOKEN.fullmatch(response.header("set-registrationtoken") or "")
    assert match is not None
    assert int(match.group(2)) == NOW_EPOCH + 3600
    endpoint = match.group(3)
    wire = endpoint.replace("{", "%7B").replace("}", "%7D")
    assert response.header("location") == f"{H}/users/ME/endpoints/{wire}"
    skpy_match = SKPY_LOCATION.search(response.header("location") or "")
    assert skpy_match is not None
    assert skpy_match.group(1) == H
    assert emu.endpoint_ids() == (endpoint,)


@pytest.mark.parametrize(
    "lock",
    [
        "",
        f"appId=msmsgs@msnmsgr.com; time={NOW_EPOCH}; lockAndKeyResponse={'0' * 32}",
        f"appId=other@example.com; time={NOW_EPOCH}; lockAndKeyResponse={mac256(str(NOW_EPOCH))}",
        lock_and_key(NOW - dt.timedelta(seconds=301)),
        lock_and_key(NOW + dt.timedelta(seconds=301)),
    ],
)
def test_registration_checks_lock_and_key(lock: str) -> None:
    emu = make()
    response = register(emu, skype_token(emu), lock=lock)
    assert response.status == 401
    assert error_code(response) == 401
    assert response.header("set-registrationtoken") is None


@pytest.mark.parametrize("seconds", [-300, -1, 0, 299, 300])
def test_registration_accepts_lock_and_key_within_five_minutes(seconds: int) -> None:
    emu = make()
    lock = lock_and_key(NOW + dt.timedelta(seconds=seconds))
    assert register(emu, skype_token(emu), lock=lock).status == 201


def test_registration_checks_the_skype_token() -> None:
    emu = make(Scenario(token_lifetime=100))
    token = skype_token(emu)
    assert register(emu, "bogus").status == 401
    later = NOW + dt.timedelta(seconds=100)
    assert register(emu, token, now=later).status == 401
    assert register(emu, token, now=NOW + dt.timedelta(seconds=99)).status == 201


def test_registration_checks_the_body() -> None:
    emu = make()
    token = skype_token(emu)
    headers = [("LockAndKey", lock_and_key(NOW)), ("Authentication", f"skypetoken={token}")]
    for body in ({"other": 1}, [1]):
        response = emu.handle(
            req("POST", f"{H}/users/ME/endpoints", headers=headers, json=body), NOW
        )
        assert response.status == 400
    raw = emu.handle(req("POST", f"{H}/users/ME/endpoints", headers=headers, content=b"{"), NOW)
    assert raw.status == 400


def test_host_redirect_knob_moves_registration_to_db3() -> None:
    emu = make(Scenario(host_redirect=True))
    token = skype_token(emu)
    first = register(emu, token)
    assert first.status == 404
    assert first.header("location") == f"{DB3}/users/ME/endpoints"
    assert first.header("set-registrationtoken") is None
    assert register(emu, token, redirect_as_404=False).status == 301
    second = register(emu, token, DB3)
    assert second.status == 201
    assert (second.header("location") or "").startswith(f"{DB3}/users/ME/endpoints/%7B")


def test_endless_redirect_knob_ping_pongs() -> None:
    emu = make(Scenario(endless_redirect=True))
    token = skype_token(emu)
    assert register(emu, token, H).header("location") == f"{DB3}/users/ME/endpoints"
    assert register(emu, token, DB3).header("location") == f"{H}/users/ME/endpoints"
    assert register(emu, token, H).status == 404


def test_foreign_location_knob() -> None:
    emu = make(Scenario(foreign_location=True))
    response = register(emu, skype_token(emu))
    assert (response.status, response.header("location")) == (404, FOREIGN_LOCATION)


def test_foreign_sync_state_knob_points_listing_links_elsewhere() -> None:
    emu = make(Scenario(foreign_sync_state=True))
    s = session(emu)
    response = call(emu, s, "GET", f"{H}/users/ME/conversations")
    link = response.json()["_metadata"]["syncState"]
    assert link.startswith(f"{FOREIGN_BASE}/users/ME/conversations?")
    assert parse_scenario(["foreign_sync_state=true"]) == Scenario(foreign_sync_state=True)


def test_malformed_registration_breaks_the_token_header() -> None:
    emu = make(Scenario(malformed=("register",)))
    response = register(emu, skype_token(emu))
    assert response.status == 201
    assert response.header("set-registrationtoken") == "registrationToken=; expires=soon"


def test_same_seed_gives_the_same_tokens() -> None:
    first, second = make(), make()
    assert session(first) == session(second)
    assert session(Emulator(seed=8)) != session(make())


# -- endpoint operations ------------------------------------------------------------------------


def test_config_accepts_self_braced_and_encoded_ids() -> None:
    emu = make()
    s = session(emu)
    for endpoint in ("SELF", s.endpoint, s.wire_endpoint):
        response = call(
            emu,
            s,
            "PUT",
            f"/users/ME/endpoints/{endpoint}/presenceDocs/messagingService",
            json=CONFIG,
        )
        assert response.status == 200
        assert response.json()["privateInfo"] == {"epname": "skype"}


def test_endpoint_calls_validate_token_and_endpoint() -> None:
    emu = make(Scenario(registration_lifetime=60))
    s = session(emu)
    path = f"/users/ME/endpoints/{s.wire_endpoint}/active"
    assert call(emu, s, "POST", path, json={"timeout": 12}).status == 201
    unknown = "/users/ME/endpoints/%7B3f2504e0-4f89-41d3-9a0c-0305e82c3301%7D/active"
    gone = call(emu, s, "POST", unknown, json={"timeout": 12})
    assert (gone.status, gone.json()) == (
        404,
        {
            "errorCode": 729,
            "message": "You must create an endpoint before performing this operation.",
        },
    )
    assert (
        call(emu, s, "POST", path, json={"timeout": 12}, reg="registrationToken=AAAA").status == 401
    )
    no_header = emu.handle(req("POST", f"{H}{path}", json={"timeout": 12}), NOW)
    assert no_header.status == 401
    later = NOW + dt.timedelta(seconds=60)
    assert call(emu, s, "POST", path, json={"timeout": 12}, now=later).status == 401


def test_endpoints_of_another_user_are_gone() -> None:
    emu = make()
    mine = session(emu)
    other = session(emu)
    assert (
        call(
            emu,
            mine,
            "POST",
            f"/users/ME/endpoints/{other.wire_endpoint}/active",
            json={"timeout": 1},
        ).status
        == 201
    )
    emu.forget_endpoints()
    response = call(emu, mine, "POST", "/users/ME/endpoints/SELF/active", json={"timeout": 1})
    assert error_code(response) == 729


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("presenceDocs/messagingService", {"id": "messagingService"}),
        ("presenceDocs/messagingService", dict(CONFIG, type="Other")),
        ("active", {"timeout": 0}),
        ("active", {"timeout": "12"}),
        ("subscriptions", dict(SUBSCRIPTION, channelType="WebSocket")),
        ("subscriptions", dict(SUBSCRIPTION, interestedResources=[])),
    ],
)
def test_endpoint_calls_reject_bad_bodies(route: str, body: dict[str, Any]) -> None:
    emu = make()
    s = session(emu)
    method = "PUT" if route.startswith("presence") else "POST"
    response = call(emu, s, method, f"/users/ME/endpoints/SELF/{route}", json=body)
    assert (response.status, error_code(response)) == (400, 400)


def test_subscribe_then_poll_delivers_the_default_events() -> None:
    emu = make()
    s = session(emu)
    before = poll(emu, s)
    assert (before.status, error_code(before)) == (404, 404)
    subscribed = subscribe(emu, s)
    assert subscribed.status == 201
    assert (
        subscribed.header("location") == f"{H}/users/ME/endpoints/{s.wire_endpoint}/subscriptions/0"
    )
    assert emu.subscribed(s.endpoint)
    events = poll(emu, s).json()["eventMessages"]
    assert [e["resourceType"] for e in events] == [
        "NewMessage",
        "NewMessage",
        "UserPresence",
        "ConversationUpdate",
    ]
    assert [e["id"] for e in events] == [1000, 1001, 1002, 1003]
    assert all(e["time"] == "2024-03-05T14:00:00Z" for e in events)
    acks = [e["resource"].get("ackrequired") for e in events]
    ids = [e["resource"]["id"] for e in events[:2]]
    assert acks == [f"{H}/users/ME/conversations/ALL/messages/{i}/ack" for i in ids] + [None, None]
    assert ids == [str(NOW_EPOCH * 1000), str(NOW_EPOCH * 1000 + 1)]
    empty = poll(emu, s)
    assert (empty.status, empty.json()) == (200, {"eventMessages": []})


def test_only_the_first_subscription_queues_the_script() -> None:
    emu = make(Scenario(events=("text",)))
    s = session(emu)
    subscribe(emu, s)
    assert len(poll(emu, s).json()["eventMessages"]) == 1
    assert subscribe(emu, s).status == 201
    assert poll(emu, s).json() == {"eventMessages": []}


def test_poll_would_wait_only_for_a_valid_idle_poll() -> None:
    emu = make(Scenario(events=()))
    s = session(emu)
    request = req(
        "POST",
        f"{H}/users/ME/endpoints/SELF/subscriptions/0/poll",
        headers=[("RegistrationToken", s.reg)],
    )
    assert not emu.poll_would_wait(request, NOW)  # not subscribed: answers 404 at once
    subscribe(emu, s)
    assert emu.poll_would_wait(request, NOW)
    assert not emu.poll_would_wait(attrs.evolve(request, headers=()), NOW)
    assert not emu.poll_would_wait(req("GET", "https://api.skype.com/users/self/profile"), NOW)
    assert emu.queue_event("text", NOW + dt.timedelta(seconds=5)) == 1
    assert not emu.poll_would_wait(request, NOW)
    event = poll(emu, s).json()["eventMessages"][0]
    assert event["time"] == "2024-03-05T14:00:05Z"
    emu.set_scenario(Scenario(faults=(Fault("poll", 503),)))
    assert not emu.poll_would_wait(request, NOW)


def test_ack_accepts_only_messages_that_asked_for_it() -> None:
    emu = make()
    s = session(emu)
    subscribe(emu, s)
    events = poll(emu, s).json()["eventMessages"]
    url = events[0]["resource"]["ackrequired"]
    assert call(emu, s, "POST", url).status == 201
    assert call(emu, s, "POST", url).status == 201
    assert emu.acknowledged == (events[0]["resource"]["id"],) * 2
    unknown = call(emu, s, "POST", f"{H}/users/ME/conversations/ALL/messages/123/ack")
    assert (unknown.status, error_code(unknown)) == (404, 404)
    assert call(emu, s, "POST", url, reg="registrationToken=x").status == 401


def test_the_acknowledged_log_keeps_only_the_latest_entries() -> None:
    emu = make(log_size=3)
    s = session(emu)
    subscribe(emu, s)
    events = poll(emu, s).json()["eventMessages"]
    url = events[0]["resource"]["ackrequired"]
    for _ in range(5):
        assert call(emu, s, "POST", url).status == 201
    assert emu.acknowledged == (events[0]["resource"]["id"],) * 3


@pytest.mark.parametrize("size", [0, -1, 1.5, True, None])
def test_log_size_must_be_a_positive_whole_number(size: Any) -> None:
    with pytest.raises(LocalProtocolError, match="log_size"):
        make(log_size=size)


def test_events_queued_before_subscription_wait_for_it() -> None:
    emu = make(Scenario(events=("presence",)))
    assert emu.queue_event("call", NOW) == 0
    raw = {
        "resourceType": "Custom",
        "resource": {"ackrequired": f"{H}/users/ME/conversations/ALL/messages/77/ack"},
    }
    assert emu.queue_event(raw, NOW) == 0
    s = session(emu)
    subscribe(emu, s)
    events = poll(emu, s).json()["eventMessages"]
    assert [e["resourceType"] for e in events] == ["NewMessage", "Custom", "UserPresence"]
    assert events[1] == {**raw, "id": 1001, "time": "2024-03-05T14:00:00Z"}
    assert call(emu, s, "POST", f"{H}/users/ME/conversations/ALL/messages/77/ack").status == 201
    with pytest.raises(LocalProtocolError):
        emu.queue_event("nope", NOW)


def test_queued_events_reach_every_subscribed_endpoint() -> None:
    emu = make(Scenario(events=()))
    first, second = session(emu), session(emu)
    subscribe(emu, first)
    subscribe(emu, second)
    assert emu.queue_event("typing", NOW) == 2
    assert len(poll(emu, first).json()["eventMessages"]) == 1
    assert len(poll(emu, second).json()["eventMessages"]) == 1


def test_generated_stream_cycles_through_every_kind_in_batches() -> None:
    emu = make(Scenario(events=(), event_count=30, events_per_poll=10))
    s = session(emu)
    subscribe(emu, s)
    batches = [poll(emu, s).json()["eventMessages"] for _ in range(4)]
    assert [len(b) for b in batches] == [10, 10, 10, 0]
    events = [e for batch in batches for e in batch]
    assert [e["id"] for e in events] == list(range(1000, 1030))
    assert {e["resourceType"] for e in events} == {
        "NewMessage",
        "UserPresence",
        "EndpointPresence",
        "ConversationUpdate",
        "ThreadUpdate",
        "CustomUserProperties",
    }
    message_ids = [int(e["resource"]["id"]) for e in events if e["resourceType"] == "NewMessage"]
    assert message_ids == sorted(set(message_ids))


def test_events_follow_the_endpoint_base() -> None:
    emu = make(Scenario(events=("text",)))
    s = session(emu, DB3)
    subscribe(emu, s)
    event = poll(emu, s).json()["eventMessages"][0]
    assert event["resource"]["ackrequired"].startswith(
        f"{DB3}/users/ME/conversations/ALL/messages/"
    )
    assert event["resource"]["conversationLink"] == f"{DB3}/users/ME/conversations/8:alice.smith"


EXPECTED_SKPY_CLASSES = {
    "text": "SkypeNewMessageEvent",
    "typing": "SkypeTypingEvent",
    "presence": "SkypePresenceEvent",
    "endpoint_presence": "SkypeEndpointEvent",
    "group_text": "SkypeNewMessageEvent",
    "edit": "SkypeEditMessageEvent",
    "clear_typing": "SkypeTypingEvent",
    "call": "SkypeCallEvent",
    "thread_activity": "SkypeMessageEvent",
    "conversation_update": "SkypeChatUpdateEvent",
    "thread_update": "SkypeChatMemberEvent",
    "custom": "SkypeEvent",
}


@pytest.mark.skpy
@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_event_kind_is_classified_by_the_reference(kind: str) -> None:
    skpy = pytest.importorskip("skpy")
    raw = render_event(
        kind, base=H, event_id=1000, message_id="1709648582123", when=NOW, seq=3, user="live:fred"
    )
    event = skpy.SkypeEvent.fromRaw(None, raw)
    assert type(event).__name__ == EXPECTED_SKPY_CLASSES[kind]
    assert event.id == 1000
    assert set(EXPECTED_SKPY_CLASSES) == set(EVENT_KINDS)


def test_ackrequired_is_on_exactly_the_new_message_kinds() -> None:
    acked = []
    for kind in EVENT_KINDS:
        raw = render_event(
            kind, base=H, event_id=1, message_id="1709648582123", when=NOW, seq=0, user="live:fred"
        )
        if "ackrequired" in raw["resource"]:
            assert raw["resourceType"] == "NewMessage"
            assert raw["resource"]["ackrequired"] == (
                f"{H}/users/ME/conversations/ALL/messages/1709648582123/ack"
            )
            acked.append(kind)
    expected = ["text", "typing", "group_text", "edit", "clear_typing", "call", "thread_activity"]
    assert acked == expected
    assert set(expected) == ACK_KINDS
    assert [kind for kind in DEFAULT_EVENTS if kind in ACK_KINDS] == ["text", "typing"]


def test_presence_subscription() -> None:
    emu = make()
    s = session(emu)
    path = "/users/ME/endpoints/SELF/subscriptions/0?name=interestedResources"
    body = {
        "interestedResources": [
            *SUBSCRIPTION["interestedResources"],
            "/v1/users/ME/contacts/8:live:bob_1",
        ]
    }
    assert error_code(call(emu, s, "PUT", path, json=body)) == 404
    subscribe(emu, s)
    assert call(emu, s, "PUT", path, json=body).status == 200
    no_name = call(emu, s, "PUT", "/users/ME/endpoints/SELF/subscriptions/0", json=body)
    assert no_name.status == 400
    assert call(emu, s, "PUT", path, json={"interestedResources": ["contacts"]}).status == 400


def test_set_presence() -> None:
    emu = make()
    s = session(emu)
    path = "/users/ME/presenceDocs/messagingService"
    assert call(emu, s, "PUT", path, json={"status": "Busy"}).status == 200
    assert emu.presence() == "Busy"
    assert call(emu, s, "PUT", path, json={"status": "DoNotDisturb"}).status == 400
    assert emu.presence() == "Busy"


def test_endpoint_listing_links_name_the_endpoints() -> None:
    emu = make()
    first, second = session(emu), session(emu)
    call(emu, first, "PUT", "/users/ME/endpoints/SELF/presenceDocs/messagingService", json=CONFIG)
    body = call(emu, first, "GET", "/users/ME/presenceDocs/messagingService?view=expanded").json()
    docs = body["endpointPresenceDocs"]
    # The reference takes component 7 of the link split on "/".
    assert [d["link"].split("/")[7] for d in docs] == [first.wire_endpoint, second.wire_endpoint]
    assert docs[0]["link"].startswith(f"{H}/users/8:live:fred/endpoints/")
    assert docs[0]["privateInfo"] == {"epname": "skype"}
    plain = call(emu, first, "GET", "/users/ME/presenceDocs/messagingService").json()
    assert "endpointPresenceDocs" not in plain
    assert plain["status"] == "Online"


def test_consumption_horizon() -> None:
    emu = make()
    s = session(emu)
    path = "/users/ME/conversations/8:alice.smith/properties?name=consumptionhorizon"
    horizon = "1709648582123;1709648583000;4417934025553866001"
    assert call(emu, s, "PUT", path, json={"consumptionhorizon": horizon}).status == 200
    assert emu.horizon("8:alice.smith") == horizon
    missing = "/users/ME/conversations/8:nobody/properties?name=consumptionhorizon"
    assert call(emu, s, "PUT", missing, json={"consumptionhorizon": horizon}).status == 404
    wrong = "/users/ME/conversations/8:alice.smith/properties?name=other"
    assert call(emu, s, "PUT", wrong, json={"consumptionhorizon": horizon}).status == 400


def test_a_sent_message_is_answered_201_with_its_arrival_time_and_listed_first() -> None:
    emu = make()
    s = session(emu)
    path = "/users/ME/conversations/8%3Aalice.smith/messages"
    body = {"content": "hi", "messagetype": "RichText", "contenttype": "text"}
    sent = call(emu, s, "POST", path, json={**body, "clientmessageid": "123"})
    assert sent.status == 201
    arrival = sent.json()["OriginalArrivalTime"]
    # After the newest seeded message, though the clock is earlier; a number, as the service's.
    assert arrival == 1709648700501
    again = call(emu, s, "POST", path, json={**body, "clientmessageid": "123"})
    assert again.json() == {"OriginalArrivalTime": arrival}  # recognised, not posted twice
    [newest, *_] = call(emu, s, "GET", path).json()["messages"]
    assert (newest["id"], newest["content"], newest["clientmessageid"]) == (
        str(arrival),
        "hi",
        "123",
    )
    assert newest["from"].endswith(f"/users/ME/contacts/8:{ACCOUNT.skype_name}")
    assert call(emu, s, "POST", path, json=body).status == 400
    assert call(emu, s, "POST", path.replace("alice.smith", "nobody"), json=body).status == 404
    assert call(emu, s, "POST", path, json={**body, "clientmessageid": "1"}, reg="x").status == 401


# -- listings -----------------------------------------------------------------------------------


def test_conversation_pages_follow_sync_state_to_an_empty_page() -> None:
    emu = make()
    s = session(emu)
    url = (
        f"{H}/users/ME/conversations?startTime=0&view=supportsExtendedHistory%7Cmsnp24Equivalent"
        "&targetType=Passport%7CSkype%7CLync%7CThread%7CAgent%7CShortCircuit%7CPSTN%7CFlxt"
        "%7CNotificationStream%7CModernBots%7CsecureThreads%7CInviteFree"
    )
    ids: list[list[str]] = []
    links: list[str] = []
    for _ in range(5):
        body = call(emu, s, "GET", url).json()
        ids.append([c["id"] for c in body["conversations"]])
        link = body["_metadata"]["syncState"]
        assert link.startswith(f"{H}/users/ME/conversations?startTime=0&syncState=")
        assert body["_metadata"]["totalCount"] == 5
        links.append(link)
        url = link
    assert ids == [
        ["8:alice.smith", "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype"],
        ["8:live:bob_1", "28:concierge"],
        ["19:5e2b8c1d9a7f4e3b6c0d1a2f3e4b5c6d@thread.skype"],
        [],
        [],
    ]
    assert links[3] == links[2] == links[4]  # the empty page brings no new link
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(links[0]).query))
    assert query["pageSize"] == "2"
    assert query["view"] == "msnp24Equivalent"


def test_listing_rejects_unknown_sync_state_and_bad_page_size() -> None:
    emu = make()
    s = session(emu)
    assert call(emu, s, "GET", "/users/ME/conversations?syncState=nope").status == 400
    assert call(emu, s, "GET", "/users/ME/conversations?pageSize=0").status == 400
    # A digit int() refuses ("²") is a bad size too, not an emulator error.
    assert call(emu, s, "GET", "/users/ME/conversations?pageSize=%C2%B2").status == 400
    other = session(Emulator(seed=99))
    body = call(emu, s, "GET", "/users/ME/conversations").json()
    assert call(emu, other, "GET", body["_metadata"]["syncState"]).status == 401


def test_messages_listing() -> None:
    emu = make()
    s = session(emu)
    path = (
        "/users/ME/conversations/8:alice.smith/messages?startTime=0"
        "&view=supportsExtendedHistory%7Cmsnp24Equivalent%7CsupportsMessageProperties&pageSize=30"
    )
    first = call(emu, s, "GET", path).json()
    assert [m["content"] for m in first["messages"]] == [
        "Lunch tomorrow?",
        "Hi Alice!",
        "Hello <b>there</b>",
    ]
    assert first["messages"][0]["conversationLink"] == f"{H}/users/ME/conversations/8:alice.smith"
    second = call(emu, s, "GET", first["_metadata"]["syncState"]).json()
    assert second["messages"] == []
    missing = call(emu, s, "GET", "/users/ME/conversations/8:nobody/messages")
    assert missing.status == 404


def test_thread_properties() -> None:
    emu = make()
    s = session(emu)
    body = call(
        emu,
        s,
        "GET",
        "/threads/19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype?view=msnp24Equivalent",
    ).json()
    assert body["properties"]["topic"] == "Project X"
    assert [m["id"] for m in body["members"]] == [
        "8:alice.smith",
        "8:live:bob_1",
        "28:concierge",
        "8:live:fred",
    ]
    assert call(emu, s, "GET", "/threads/19:none@thread.skype").status == 404


# -- several accounts ---------------------------------------------------------------------------

LOGINS = ("soap", "live", "api")


def login_token(emu: Emulator, account: Account, how: str, password: str | None = None) -> str:
    """A Skype token for ``account`` through the ``how`` login, or "" when it is refused."""
    password = account.password if password is None else password
    if how == "soap":
        body = soap_envelope(account.user, password)
        response = emu.handle(req("POST", "https://login.live.com/RST.srf", content=body), NOW)
        security = soap_parts(response).get("BinarySecurityToken")
        return str(edge(emu, security).json()["skypetoken"]) if security else ""
    if how == "live":
        ppft, cookies = live_start(emu)
        second = post_srf(emu, credentials(ppft, account.skype_name, password), cookies)
        opid = OPID.search(second.text)
        if opid is None:
            assert live_error(second.text) is not None
            return ""
        third = post_srf(emu, confirm(opid.group(1), ppft), cookies)
        t_match = T_VALUE.search(third.text)
        assert t_match is not None
        found = SKYPETOKEN.search(t_exchange(emu, t_match.group(1)).text)
        assert found is not None
        return found.group(1)
    body = {
        "username": account.user,
        "passwordHash": password_hash(account.user, password),
        "scopes": "client",
    }
    answer = emu.handle(req("POST", "https://api.skype.com/login/skypetoken", json=body), NOW)
    return str(answer.json().get("skypetoken", ""))


def listed(emu: Emulator, s: Session) -> list[str]:
    """The endpoints (wire ids) the expanded presence listing names for ``s``'s user."""
    url = "/users/ME/presenceDocs/messagingService?view=expanded"
    docs = call(emu, s, "GET", url).json()["endpointPresenceDocs"]
    return [d["link"].split("/")[7] for d in docs]


def self_profile(emu: Emulator, token: str) -> Any:
    url = "https://api.skype.com/users/self/profile"
    return emu.handle(req("GET", url, headers=[("X-SkypeToken", token)]), NOW).json()


@pytest.mark.parametrize("how", LOGINS)
def test_accounts_side_by_side_see_only_their_own_endpoints_and_profile(how: str) -> None:
    others = numbered_accounts(2)
    emu = make(accounts=others)
    assert emu.account == ACCOUNT
    assert emu.accounts == (ACCOUNT, *others)
    fred_token, bot_token = login_token(emu, ACCOUNT, how), login_token(emu, others[1], how)
    fred = session(emu, token=fred_token)
    bot = session(emu, token=bot_token)
    again = session(emu, token=login_token(emu, others[1], how))
    assert listed(emu, fred) == [fred.wire_endpoint]
    assert listed(emu, bot) == listed(emu, again) == [bot.wire_endpoint, again.wire_endpoint]
    assert emu.endpoint_ids() == (fred.endpoint,)
    assert emu.endpoint_ids("live:user1") == (bot.endpoint, again.endpoint)
    assert emu.endpoint_ids("live:user0") == ()
    link = call(emu, bot, "GET", "/users/ME/presenceDocs/messagingService").json()["selfLink"]
    assert link == f"{H}/users/8:live:user1/presenceDocs/messagingService"
    # An endpoint of another account is as unknown as a lapsed one.
    path = f"/users/ME/endpoints/{bot.wire_endpoint}/active"
    assert error_code(call(emu, fred, "POST", path, json={"timeout": 1})) == 729
    mine, theirs = self_profile(emu, fred_token), self_profile(emu, bot_token)
    assert (mine["username"], mine["emails"]) == ("live:fred", ["fred@example.com"])
    assert (theirs["username"], theirs["emails"]) == ("live:user1", ["user1@example.com"])
    assert (theirs["firstname"], theirs["lastname"]) == ("User", "1")
    call(emu, bot, "PUT", "/users/ME/presenceDocs/messagingService", json={"status": "Busy"})
    assert (emu.presence(), emu.presence("live:user1")) == ("Online", "Busy")
    emu.forget_endpoints()
    assert emu.endpoint_ids("live:user1") == ()
    fresh = session(emu, token=bot_token)
    assert listed(emu, fresh) == [fresh.wire_endpoint]


def test_another_account_signs_in_with_either_name_and_the_edge_names_it() -> None:
    other = numbered_account(4)
    emu = make(accounts=[other])
    for login in (other.user, other.skype_name, other.user.upper()):
        answer = edge(emu, soap_login(emu, login, other.password)).json()
        assert (answer["skypeid"], answer["signinname"]) == ("live:user4", "user4@example.com")
    url = "https://login.live.com/GetCredentialType.srf"
    for login, exists in ((other.skype_name, 0), (other.user, 0), ("user5@example.com", 1)):
        body = emu.handle(req("POST", url, json={"username": login}), NOW).json()
        assert body["IfExistsResult"] == exists
    masked = make(Scenario(two_factor=True), accounts=[other])
    ppft, cookies = live_start(masked)
    page = post_srf(masked, credentials(ppft, other.skype_name, other.password), cookies)
    assert "us*****@example.com" in page.text


@pytest.mark.parametrize("how", LOGINS)
def test_each_account_needs_its_own_password(how: str) -> None:
    other = numbered_account(0)
    emu = make(accounts=[other])
    assert login_token(emu, other, how, password=ACCOUNT.password) == ""
    assert login_token(emu, ACCOUNT, how, password=other.password) == ""
    assert login_token(emu, other, how) != ""
    knob = make(Scenario(wrong_password=True), accounts=[other])
    assert login_token(knob, other, how) == ""


@pytest.mark.parametrize(
    "others",
    [
        [ACCOUNT],
        [Account(user="FRED@Example.com", skype_name="live:other")],
        [Account(user="other@example.com", skype_name="live:fred")],
        [numbered_account(0), numbered_account(0)],
        [numbered_account(1), Account(user="x@example.com", skype_name="live:user1")],
        # A Skype name may not be another account's e-mail: a login would name both.
        [Account(user="a@example.com", skype_name="b@example.com"), Account(user="B@example.com")],
    ],
)
def test_accounts_sharing_a_login_name_are_refused(others: list[Account]) -> None:
    with pytest.raises(LocalProtocolError, match="share the login name") as raised:
        Emulator(accounts=others)
    assert "pass" not in str(raised.value)
    with pytest.raises(ValueError, match="share the login name"):
        EmulatorServer(accounts=others)


def test_accounts_must_be_accounts() -> None:
    with pytest.raises(LocalProtocolError, match="expected an Account"):
        Emulator(accounts=["user0@example.com"])  # type: ignore[list-item]


def test_numbered_accounts_are_the_same_in_every_process() -> None:
    three = numbered_accounts(3)
    assert three == numbered_accounts(3)
    assert numbered_accounts(0) == ()
    assert three[2] == numbered_account(2)
    assert [(a.user, a.skype_name) for a in three] == [
        ("user0@example.com", "live:user0"),
        ("user1@example.com", "live:user1"),
        ("user2@example.com", "live:user2"),
    ]
    assert len({a.password for a in three}) == 3
    assert all(a.password not in repr(a) for a in three)
    for bad in (-1, True, "3", 1.5, MAX_NUMBERED_ACCOUNTS + 1):
        with pytest.raises(LocalProtocolError):
            numbered_accounts(bad)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        numbered_account(-1)


def test_the_profile_counts_the_numbered_accounts() -> None:
    def counted(accounts: tuple[Account, ...]) -> int:
        count: int = profile(PLAIN_HOSTS, None, ACCOUNT, accounts)["accounts"]
        return count

    assert counted(numbered_accounts(3)) == 3
    assert counted(()) == 0
    # Only accounts 0.. in order can be rebuilt from a count.
    assert counted((numbered_account(1),)) == 0
    assert counted((*numbered_accounts(2), Account(user="z@example.com", skype_name="z"))) == 2
    server = EmulatorServer(accounts=numbered_accounts(2))
    assert (server.account, server.accounts) == (ACCOUNT, numbered_accounts(2))


# -- faults and malformed bodies ----------------------------------------------------------------


def test_fault_answers_a_chosen_route_n_times() -> None:
    emu = make(Scenario(faults=(Fault("poll", 729, times=2),)))
    s = session(emu)
    subscribe(emu, s)
    assert [error_code(poll(emu, s)) for _ in range(2)] == [729, 729]
    assert poll(emu, s).status == 200


def test_rate_limit_fault_carries_retry_after() -> None:
    emu = make(Scenario(faults=(Fault("register", 429, times=1, retry_after=7),)))
    token = skype_token(emu)
    limited = register(emu, token)
    assert (limited.status, limited.header("retry-after"), error_code(limited)) == (429, "7", 429)
    assert register(emu, token).status == 201


@pytest.mark.parametrize("status", [401, 404, 500, 503])
def test_fault_statuses(status: int) -> None:
    emu = make(Scenario(faults=(Fault("profile", status, times=0),)))
    url = "https://api.skype.com/users/self/profile"
    responses = [emu.handle(req("GET", url), NOW) for _ in range(3)]
    assert [r.status for r in responses] == [status] * 3
    assert error_code(responses[0]) == status


def test_fault_on_a_group_and_reset_by_a_new_scenario() -> None:
    scenario = Scenario(faults=(Fault("live", 503, times=1),))
    emu = make(scenario)
    url = "https://login.skype.com/login/oauth/microsoft?client_id=578134&redirect_uri=https%3A%2F%2Fweb.skype.com"
    assert emu.handle(req("GET", url), NOW).status == 503
    assert emu.handle(req("GET", url), NOW).status == 302
    emu.scenario = scenario
    assert emu.handle(req("GET", url), NOW).status == 503


def test_malformed_bodies() -> None:
    emu = make(Scenario(malformed=("live_page", "soap")))
    with pytest.raises(ET.ParseError):
        ET.fromstring(
            emu.handle(
                req(
                    "POST",
                    "https://login.live.com/RST.srf",
                    content=soap_envelope(ACCOUNT.user, ACCOUNT.password),
                ),
                NOW,
            ).body
        )
    page = emu.handle(
        req("GET", "https://login.live.com/oauth20_authorize.srf?client_id=578134"), NOW
    )
    assert page.status == 200
    assert PPFT.search(page.text) is None
    emu2 = Emulator(seed=7, scenario=Scenario(malformed=("poll", "ping")))
    s = session(emu2)
    subscribe(emu2, s)
    for response in (
        poll(emu2, s),
        call(emu2, s, "POST", "/users/ME/endpoints/SELF/active", json={"timeout": 5}),
    ):
        with pytest.raises(ValueError):
            json.loads(response.body)


# -- host mapping and routing -------------------------------------------------------------------


PREFIX = "http://127.0.0.1:8080"
PLAIN_HOSTS = Hosts(overrides={h: f"{PREFIX}/{h}" for h in SERVED_HOSTS})


def test_plain_prefix_profile_maps_requests_and_emitted_urls() -> None:
    emu = make(hosts=PLAIN_HOSTS)
    base = f"{PREFIX}/client-s.gateway.messenger.live.com/v1"
    assert emu.messenger_base() == base
    response = register(emu, skype_token_at(emu), base)
    assert (response.header("location") or "").startswith(f"{base}/users/ME/endpoints/%7B")
    start = emu.handle(
        req(
            "GET",
            f"{PREFIX}/login.skype.com/login/oauth/microsoft?client_id=578134&redirect_uri=https%3A%2F%2Fweb.skype.com",
        ),
        NOW,
    )
    assert (start.header("location") or "").startswith(
        f"{PREFIX}/login.live.com/oauth20_authorize.srf?"
    )
    # the real URL is not served by a prefixed emulator
    assert emu.handle(req("GET", "https://api.skype.com/users/self/profile"), NOW).status == 404


def test_redirect_host_under_a_plain_prefix() -> None:
    emu = make(Scenario(host_redirect=True), hosts=PLAIN_HOSTS)
    base = f"{PREFIX}/client-s.gateway.messenger.live.com/v1"
    assert register(emu, skype_token_at(emu), base).header("location") == (
        f"{PREFIX}/db3-client-s.gateway.messenger.live.com/v1/users/ME/endpoints"
    )


def skype_token_at(emu: Emulator) -> str:
    """SOAP login and edge exchange through the PREFIX bases."""
    soap = emu.handle(
        req(
            "POST",
            f"{PREFIX}/login.live.com/RST.srf",
            content=soap_envelope(ACCOUNT.user, ACCOUNT.password),
        ),
        NOW,
    )
    form = [
        ("partner", "999"),
        ("access_token", soap_parts(soap)["BinarySecurityToken"]),
        ("scopes", "client"),
    ]
    url = f"{PREFIX}/edge.skype.com/rps/v1/rps/skypetoken"
    token: str = emu.handle(req("POST", url, form=form), NOW).json()["skypetoken"]
    return token


@pytest.mark.parametrize(
    ("method", "url", "route"),
    [
        ("POST", "https://login.live.com/RST.srf", "soap"),
        ("GET", "https://login.live.com/oauth20_authorize.srf?x=1", "live_page"),
        ("GET", "https://login.skype.com/login/oauth/microsoft", "live_start"),
        ("POST", "https://login.skype.com/login/microsoft", "t_exchange"),
        ("GET", "https://login.skype.com/login/login", "refresh"),
        ("POST", "https://edge.skype.com/rps/v1/rps/skypetoken", "edge"),
        ("POST", "https://api.skype.com/login/skypetoken", "api_login"),
        ("GET", "https://api.skype.com/users/self/profile", "profile"),
        ("GET", "https://join.skype.com/abc", "join_page"),
        ("GET", "https://api.join.skype.com/v1/meetings/abc", "meeting"),
        ("POST", "https://api.join.skype.com/v1/threads/19:a@thread.skype/members", "join_thread"),
        ("POST", f"{H}/users/ME/endpoints", "register"),
        ("POST", f"{DB3}/users/ME/endpoints", "register"),
        ("PUT", f"{H}/users/ME/endpoints/%7Ba%7D/presenceDocs/messagingService", "config"),
        ("POST", f"{H}/users/ME/endpoints/SELF/active", "ping"),
        ("POST", f"{H}/users/ME/endpoints/SELF/subscriptions", "subscribe"),
        (
            "PUT",
            f"{H}/users/ME/endpoints/SELF/subscriptions/0?name=interestedResources",
            "presence_subscribe",
        ),
        ("POST", f"{H}/users/ME/endpoints/SELF/subscriptions/0/poll", "poll"),
        ("POST", f"{H}/users/ME/conversations/ALL/messages/1/ack", "ack"),
        ("PUT", f"{H}/users/ME/presenceDocs/messagingService", "set_presence"),
        ("GET", f"{H}/users/ME/presenceDocs/messagingService?view=expanded", "endpoints"),
        (
            "PUT",
            f"{H}/users/ME/conversations/8:a/properties?name=consumptionhorizon",
            "consumption",
        ),
        ("GET", f"{H}/users/ME/conversations", "conversations"),
        ("GET", f"{H}/users/ME/conversations/8:a/messages", "messages"),
        ("GET", f"{H}/threads/19:a@thread.skype", "thread"),
        ("GET", f"{H}/users/ME/endpoints", None),
        ("POST", f"{H}/users/ME/endpoints/", None),
        ("GET", "https://example.com/", None),
    ],
)
def test_route_names(method: str, url: str, route: str | None) -> None:
    assert make().route(HttpRequest(method, url)) == route


def test_post_srf_route_depends_on_the_form() -> None:
    emu = make()
    url = "https://login.live.com/ppsecure/post.srf"
    assert emu.route(HttpRequest.build("POST", url, form={"login": "x"})) == "live_credentials"
    assert emu.route(HttpRequest.build("POST", url, form={"opid": "x"})) == "live_confirm"
    assert emu.route(HttpRequest("POST", url, body=b"\xff")) == "live_credentials"


def test_unknown_paths_and_methods() -> None:
    emu = make()
    wrong_method = emu.handle(HttpRequest("DELETE", f"{H}/users/ME/endpoints"), NOW)
    assert (wrong_method.status, wrong_method.header("allow")) == (405, "POST")
    assert error_code(emu.handle(HttpRequest("GET", f"{H}/nothing"), NOW)) == 404
    assert emu.handle(HttpRequest("GET", "https://login.live.com/nothing"), NOW).status == 404
    assert emu.handle(HttpRequest("GET", "https://example.com/"), NOW).status == 404


def test_handle_requires_an_aware_time() -> None:
    with pytest.raises(LocalProtocolError):
        make().handle(
            HttpRequest("GET", "https://api.skype.com/users/self/profile"), dt.datetime(2024, 1, 1)
        )


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    host=st.sampled_from(SERVED_HOSTS),
    path=st.lists(
        st.sampled_from(
            [
                "v1",
                "users",
                "ME",
                "endpoints",
                "SELF",
                "%7Bx%7D",
                "login",
                "RST.srf",
                "subscriptions",
                "0",
                "poll",
                "",
            ]
        ),
        max_size=8,
    ),
    body=st.binary(max_size=64)
    | st.sampled_from([b"{}", b"[]", b'{"timeout": 1}', b"<Envelope/>"]),
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "RegistrationToken",
                    "Cookie",
                    "LockAndKey",
                    "Authentication",
                    "X-SkypeToken",
                    "Content-Type",
                ]
            ),
            st.text(alphabet="abc=;{} %7B", max_size=20),
        ),
        max_size=4,
    ),
)
def test_handle_answers_anything_without_raising(
    method: str, host: str, path: list[str], body: bytes, headers: list[tuple[str, str]]
) -> None:
    emu = make()
    request = HttpRequest(method, f"https://{host}/{'/'.join(path)}", tuple(headers), body)
    response = emu.handle(request, NOW)
    assert 200 <= response.status < 600
    assert response.url == request.url


# -- scenario values and parsing ----------------------------------------------------------------


def test_parse_scenario_reads_every_kind_of_knob() -> None:
    scenario = parse_scenario(
        [
            "host_redirect=true",
            "wrong-password=yes",
            "fault=poll:729:2",
            "fault=register:429:1:5",
            "malformed=poll,edge",
            "delay=0.5",
            "delay_routes=live",
            "events=text,call",
            "event_count=40",
            "hold=1.5",
            "token_lifetime=60",
        ]
    )
    assert scenario == Scenario(
        host_redirect=True,
        wrong_password=True,
        faults=(Fault("poll", 729, 2), Fault("register", 429, 1, 5)),
        malformed=("poll", "edge"),
        delay=0.5,
        delay_routes=("live",),
        events=("text", "call"),
        event_count=40,
        hold=1.5,
        token_lifetime=60,
    )
    assert parse_scenario(["events=all"]).events == EVENT_KINDS
    assert parse_scenario(["events="]).events == ()
    assert parse_scenario(["faults="], Scenario(faults=(Fault("poll", 404),))).faults == ()


@pytest.mark.parametrize(
    "item",
    [
        "nonsense",
        "unknown=1",
        "host_redirect=maybe",
        "event_count=-1",
        "event_count=x",
        "hold=-1",
        "hold=nan",
        "fault=poll",
        "fault=nowhere:404",
        "fault=poll:418",
        "malformed=nowhere",
        "events=text,nope",
        "events_per_poll=0",
    ],
)
def test_parse_scenario_rejects_bad_items(item: str) -> None:
    with pytest.raises(LocalProtocolError):
        parse_scenario([item])


def test_scenario_helpers() -> None:
    assert routes_named("guest") == ("join_page", "meeting", "join_thread")
    assert set(routes_named("all")) == set(ROUTES)
    assert parse_fault("ping:401") == Fault("ping", 401, 1, 2)
    assert Scenario(delay=2).delays("poll") == 2.0
    assert Scenario(delay=2, delay_routes=("messenger",)).delays("poll") == 2.0
    assert Scenario(delay=2, delay_routes=("messenger",)).delays("soap") == 0.0
    assert Scenario(delay=2, delay_routes=("soap",)).delays(None) == 0.0
    assert Scenario(malformed=("live",)).is_malformed("live_confirm")
    with pytest.raises(LocalProtocolError):
        Scenario(malformed="poll")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        make().set_scenario("x")  # type: ignore[arg-type]


def test_account_hides_its_password() -> None:
    assert ACCOUNT.password not in repr(ACCOUNT)
    assert ACCOUNT.knows("FRED@example.com")
    assert ACCOUNT.knows("live:fred")
    assert not ACCOUNT.knows("LIVE:FRED")


def test_profile_object() -> None:
    assert profile(PLAIN_HOSTS, None, ACCOUNT) == {
        "hosts": {h: f"{PREFIX}/{h}" for h in SERVED_HOSTS},
        "ca_bundle": None,
        "account": {"user": "fred@example.com", "password": "skype-emulator-pass"},
        "accounts": 0,
    }
    assert Hosts.from_json(profile(PLAIN_HOSTS, None, ACCOUNT)) == PLAIN_HOSTS
    assert Hosts.from_json(profile(PLAIN_HOSTS, None, ACCOUNT, numbered_accounts(2))) == (
        PLAIN_HOSTS
    )
