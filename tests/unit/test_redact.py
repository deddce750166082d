"""Redaction (skyproto._redact): headers, URLs and bodies as --verbose and the reprs show them.

Bodies are checked against what the login flows read: a page read by the page scan (entities
decoded, first duplicate attribute wins, ``id=="t"``), the PPFT scan, JSON in any of the
encodings ``_load_json`` detects, and the cut of a long body to the display limit.
"""

from __future__ import annotations

import json

import pytest

import skyproto._http
import skyproto._redact
from skyproto import HttpRequest, HttpResponse
from skyproto._redact import (
    READ_LIMIT,
    SECRET_FIELDS,
    SECRET_HEADERS,
    describe,
    redact_headers,
    redact_url,
)
from skyproto.auth._pages import scan_page
from skyproto.auth.live import find_ppft

HTML = (("Content-Type", "text/html; charset=utf-8"),)
JSON = (("Content-Type", "application/json"),)


def test_the_old_names_still_import_from_http() -> None:
    for name in ("SECRET_FIELDS", "SECRET_HEADERS", "describe", "redact_headers", "redact_url"):
        assert getattr(skyproto._http, name) is getattr(skyproto._redact, name)


# -- repr ----------------------------------------------------------------------------

SECRET = "Zq7-secret-Xy9"


@pytest.mark.parametrize("name", sorted(SECRET_HEADERS))
def test_repr_hides_every_secret_header(name: str) -> None:
    req = HttpRequest("GET", "https://x.skype.com/", ((name.title(), f"k={SECRET}"),))
    response = HttpResponse(200, ((name.upper(), SECRET),), url="https://x.skype.com/")
    for text in (repr(req), str(req), repr(response), str(response)):
        assert SECRET not in text
        assert "<redacted>" in text


def test_repr_shows_no_body_bytes_and_the_exact_layout() -> None:
    req = HttpRequest(
        "POST",
        "https://x.skype.com/p?t=abc&x=1",
        (("X-SkypeToken", SECRET), ("Accept", "*/*")),
        b"passwd=" + SECRET.encode(),
        timeout=3.0,
    )
    assert repr(req) == (
        "HttpRequest(method='POST', url='https://x.skype.com/p?t=%3Credacted%3E&x=1', "
        "headers=(('X-SkypeToken', '<redacted>'), ('Accept', '*/*')), body=<21 bytes>, "
        "timeout=3.0)"
    )
    response = HttpResponse(200, (("Set-Cookie", SECRET),), SECRET.encode(), "https://x/")
    assert repr(response) == (
        "HttpResponse(status=200, headers=(('Set-Cookie', '<redacted>'),), body=<14 bytes>, "
        "url='https://x/')"
    )


# -- describe ------------------------------------------------------------------------


def test_describe_redacts_json_fields_at_any_depth() -> None:
    req = HttpRequest.build(
        "POST",
        "https://api.skype.com/login/skypetoken",
        json={
            "username": "me",
            "passwordHash": SECRET,
            "scopes": "client",
            "nested": [{"Password": SECRET, "skypeToken": {"deep": SECRET}}, "plain"],
        },
    )
    assert describe(req) == (
        "POST https://api.skype.com/login/skypetoken\n"
        "  Content-Type: application/json\n"
        '  {"username": "me", "passwordHash": "<redacted>", "scopes": "client", '
        '"nested": [{"Password": "<redacted>", "skypeToken": "<redacted>"}, "plain"]}'
    )


@pytest.mark.parametrize("field", sorted(SECRET_FIELDS))
def test_describe_redacts_each_secret_field_name(field: str) -> None:
    as_json = HttpResponse.build(200, json={field: SECRET, "keep": "k"})
    as_form = HttpRequest.build("POST", "https://x.skype.com/", form={field: SECRET, "keep": "k"})
    as_query = HttpRequest.build("GET", "https://x.skype.com/", params={field: SECRET, "keep": "k"})
    for message in (as_json, as_form, as_query):
        text = describe(message)
        assert SECRET not in text
        assert "k" in text.rsplit("keep", 1)[1]


def test_describe_redacts_form_fields_in_place() -> None:
    req = HttpRequest.build(
        "POST",
        "https://login.live.com/ppsecure/post.srf",
        form={"login": "me@example.com", "passwd": SECRET, "PPFT": SECRET, "type": "11"},
    )
    assert describe(req).splitlines()[-1] == (
        "  login=me%40example.com&passwd=<redacted>&PPFT=<redacted>&type=11"
    )
    unlabelled = HttpRequest("POST", "https://x.skype.com/", (), f"t={SECRET}".encode())
    assert describe(unlabelled).splitlines()[-1] == "  t=<redacted>"


def test_describe_redacts_soap_password_and_security_tokens() -> None:
    envelope = (
        '<Envelope xmlns:wsse="x"><wsse:UsernameToken Id="user">'
        f"<wsse:Username>me@example.com</wsse:Username><wsse:Password>{SECRET}</wsse:Password>"
        '</wsse:UsernameToken><wsse:BinarySecurityToken Id="Compact0">'
        f"t={SECRET}</wsse:BinarySecurityToken><wst:BinarySecret>{SECRET}</wst:BinarySecret>"
        "</Envelope>"
    )
    text = describe(HttpRequest("POST", "https://login.live.com/RST.srf", (), envelope.encode()))
    assert SECRET not in text
    assert "<wsse:Username>me@example.com</wsse:Username>" in text
    assert "<wsse:Password><redacted></wsse:Password>" in text
    assert '<wsse:BinarySecurityToken Id="Compact0"><redacted></wsse:BinarySecurityToken>' in text


@pytest.mark.parametrize(
    "page",
    [
        f'<input type="hidden" name="skypetoken" value="{SECRET}">',
        f"<input value='{SECRET}' name='skypetoken'/>",
        f"<input name=t id=t value={SECRET}>",
        f'<div id="t" value="{SECRET}"></div>',
        f'<input type="hidden" name="PPFT" id="i0327" value="{SECRET}"/>',
        f'sFTTag:\'<input type="hidden" name="PPFT" id="i0327" value="{SECRET}"/>\'',
        f"var ServerData={{sFT:'{SECRET}',urlPost:'https://login.live.com/post.srf'}};",
        f'<input name="t" value="a>{SECRET}">',
    ],
)
def test_describe_redacts_secrets_in_pages(page: str) -> None:
    response = HttpResponse.build(200, content=f"<html>{page}</html>", content_type="text/html")
    text = describe(response)
    assert SECRET not in text
    assert "<redacted>" in text


def test_describe_keeps_non_secret_markup_exactly() -> None:
    page = '<form name="fmHF" action="https://x/"><input name="opid" value="a1B2c3"></form>'
    response = HttpResponse.build(200, content=page, content_type="text/html")
    assert describe(response) == f"HTTP 200\n  Content-Type: text/html\n  {page}"


def test_describe_redacts_urls_headers_and_the_location() -> None:
    response = HttpResponse(
        302,
        (
            ("Location", f"https://web.skype.com/?access_token={SECRET}&state=1"),
            ("Set-RegistrationToken", f"registrationToken={SECRET}; expires=1"),
        ),
        url=f"https://login.skype.com/login?client_id=578134&t={SECRET}#token={SECRET}",
    )
    assert describe(response) == (
        "HTTP 302 (https://login.skype.com/login?client_id=578134&t=%3Credacted%3E"
        "#token=%3Credacted%3E)\n"
        "  Location: https://web.skype.com/?access_token=%3Credacted%3E&state=1\n"
        "  Set-RegistrationToken: <redacted>"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x/p", "https://x/p"),
        ("https://x/p?a=1&b=2", "https://x/p?a=1&b=2"),
        ("https://x/p?T=1&b=%7C", "https://x/p?T=%3Credacted%3E&b=%7C"),
        ("https://x/p?pass%77d=1", "https://x/p?pass%77d=%3Credacted%3E"),
        ("https://x/p?a=1;token=2", "https://x/p?a=1;token=%3Credacted%3E"),
        ("https://me:pw@x/p", "https://me:%3Credacted%3E@x/p"),
        ("http://[bad/?t=1", "http://[bad/?t=%3Credacted%3E"),
        ("not a url ?skypetoken=1", "not a url ?skypetoken=%3Credacted%3E"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_headers_keeps_order_and_names() -> None:
    headers = (("Authorization", "skype_token x"), ("Accept", "*/*"), ("cookie", "a=b"))
    assert redact_headers(headers) == (
        ("Authorization", "<redacted>"),
        ("Accept", "*/*"),
        ("cookie", "<redacted>"),
    )


def test_describe_json_edge_cases_and_truncation() -> None:
    bad = HttpResponse(200, (("Content-Type", "application/json"),), b'{"password": "x')
    assert describe(bad).splitlines()[-1] == "  <unparsable JSON body>"
    unlabelled = HttpResponse(200, (("Content-Type", "text/plain"),), b'{"skypetoken": "abc"}')
    assert describe(unlabelled).splitlines()[-1] == '  {"skypetoken": "<redacted>"}'
    long_body = HttpResponse(200, (), b"a" * 50)
    assert describe(long_body, body_limit=10).splitlines()[-1] == "  aaaaaaaaaa... (50 bytes)"
    assert describe(HttpResponse(204)) == "HTTP 204"


# -- pages, read as the page scan reads them ----------------------------------------------------


@pytest.mark.parametrize(
    ("page", "read"),
    [
        # The flows take the first of two ids; a regex that keeps the last one missed it.
        (f'<input id="t" id="x" value="{SECRET}">', "t"),
        # Entities in attribute values are decoded: this is id="t".
        (f'<input type="hidden" id="&#116;" value="{SECRET}">', "t"),
        (f'<input name="&#115;kypetoken" value="{SECRET}">', "skypetoken"),
        # The first of two names is the one the flows read.
        (f'<input name="skypetoken" name="other" value="{SECRET}">', "skypetoken"),
        (f'<input id=="t" value="{SECRET}">', "t"),
    ],
)
def test_pages_are_read_as_the_flows_read_them(page: str, read: str) -> None:
    scan = scan_page(page)
    assert SECRET in (scan.t_value, scan.inputs.get(read))  # the flow does use the secret
    text = describe(HttpResponse(200, HTML, page.encode()))
    assert SECRET not in text
    assert 'value="<redacted>"' in text


def test_a_ppft_the_line_scan_finds_is_hidden_wherever_it_stands() -> None:
    page = f'<input name="PPFT"><span class="x" value="{SECRET}"></span>\n<p>{SECRET}</p>'
    assert find_ppft(page) == SECRET
    text = describe(HttpResponse(200, HTML, page.encode()))
    assert SECRET not in text
    assert text.endswith(
        '<input name="PPFT"><span class="x" value="<redacted>"></span>\n<p><redacted></p>'
    )


def test_a_secret_tag_keeps_its_names_and_hides_every_other_value() -> None:
    page = f'<p>a</p><input type=hidden name=t data-x="{SECRET}" value="{SECRET}" disabled><p>b</p>'
    text = describe(HttpResponse(200, HTML, page.encode()))
    assert text.splitlines()[-1] == (
        '  <p>a</p><input type="hidden" name="t" data-x="<redacted>" value="<redacted>" '
        "disabled><p>b</p>"
    )


def test_an_input_written_inside_a_script_is_still_hidden() -> None:
    page = f'<script>var a = \'<input name="skypetoken" value="{SECRET}">\';</script>'
    assert SECRET not in describe(HttpResponse(200, HTML, page.encode()))


def test_markup_the_parser_cannot_read_hides_the_rest_of_the_page() -> None:
    page = f'<p>ok</p><![x <input name="t" value="{SECRET}">'
    assert describe(HttpResponse(200, HTML, page.encode())).endswith("  <p>ok</p><redacted>")


# -- encodings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_json_is_decoded_as_the_core_decodes_it(encoding: str) -> None:
    body = json.dumps({"skypetoken": SECRET, "echo": f"token {SECRET}", "n": 1}).encode(encoding)
    response = HttpResponse(200, JSON, body)
    assert response.json()["skypetoken"] == SECRET
    text = describe(response)
    assert SECRET not in text
    assert "\x00" not in text
    assert (
        text.splitlines()[-1]
        == '  {"skypetoken": "<redacted>", "echo": "token <redacted>", "n": 1}'
    )


def test_utf16_json_without_a_content_type_is_read_as_json() -> None:
    body = json.dumps({"refresh_token": SECRET}).encode("utf-16-le")
    assert (
        describe(HttpResponse(200, (), body)).splitlines()[-1]
        == '  {"refresh_token": "<redacted>"}'
    )


# -- the cut to the display limit ---------------------------------------------------------------

LONG = "Kx" + "vQ3m" * 40  # 162 characters; no run of 6 of them occurs elsewhere


def shown_part(text: str) -> bool:
    """Whether any 6 consecutive characters of LONG are in ``text``."""
    return any(LONG[i : i + 6] in text for i in range(len(LONG) - 5))


@pytest.mark.parametrize(
    "page",
    [
        # Found by the page scan, hidden where it stands.
        f'<html>{"." * 80}<input name="PPFT" value="{LONG}"></html>',
        # Found only by the PPFT line scan, inside a script: hidden by value.
        f'<script>{"." * 80}sFTTag:\'<input name="PPFT" x="{LONG}" value="{LONG}"/>\'</script>',
        # An assignment in a script.
        f"<script>{'.' * 80}var ServerData = {{sFT: '{LONG}'}};</script>",
    ],
)
def test_a_secret_cut_in_half_by_the_limit_shows_no_part(page: str) -> None:
    text = describe(HttpResponse(200, HTML, page.encode()), body_limit=120)
    assert not shown_part(text)
    assert text.endswith(f"... ({len(page.encode())} bytes)")


def test_json_cut_in_half_shows_no_part() -> None:
    body = json.dumps({"padding": "." * 80, "skypetoken": LONG}).encode("utf-16")
    text = describe(HttpResponse(200, JSON, body), body_limit=110)
    assert not shown_part(text)


def test_a_body_longer_than_the_read_limit_is_redacted_by_place() -> None:
    body = f'{{"padding": "{"." * 80}", "skypetoken": "{LONG}", "more": "{"x" * READ_LIMIT}"}}'
    text = describe(HttpResponse(200, JSON, body.encode()), body_limit=120)
    assert not shown_part(text)
    assert "<unparsable JSON body>" not in text
    assert text.endswith(f"... ({len(body)} bytes)")


HUGE = "vQ3m" * (READ_LIMIT // 2)  # longer than the prefix of a body that is read


@pytest.mark.parametrize(
    "tail",
    [
        f'<input name="t" value="{HUGE}">',  # a tag the read prefix leaves unterminated
        f"<wsse:Password>{HUGE}</wsse:Password>",
        f"var a = {{token: '{HUGE}'}};",
        f"&t={HUGE}&x=1",
    ],
)
def test_a_value_running_past_the_read_prefix_is_hidden_to_its_end(tail: str) -> None:
    body = ("." * 1950 + tail).encode()
    text = describe(HttpResponse(200, (), body))
    assert "vQ3m" not in text
    assert text.endswith(f"... ({len(body)} bytes)")


# -- headers and URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Authentication", f"skypetoken={SECRET}"),
        ("X-SkypeToken", SECRET),
        ("RegistrationToken", f"registrationToken={SECRET}; expires=1; endpointId={{e}}"),
        ("Set-RegistrationToken", f"registrationToken={SECRET}; expires=1"),
        ("Authorization", f"Bearer {SECRET}"),
        ("Authorization", f"skype_token {SECRET}"),
        ("Cookie", f"MSPOK=abc; refresh-token={SECRET}"),
        ("Set-Cookie", f"MSPRequ={SECRET}; Path=/; Secure; HttpOnly"),
    ],
)
def test_credential_headers_are_hidden_and_so_are_their_echoes(name: str, value: str) -> None:
    request = HttpRequest("POST", "https://api.skype.com/x", ((name, value), ("Accept", "*/*")))
    response = HttpResponse(
        200, ((name, value),), f'{{"echo": "{SECRET}"}}'.encode(), "https://api.skype.com/x"
    )
    assert describe(request).splitlines()[1:] == [f"  {name}: <redacted>", "  Accept: */*"]
    text = describe(response)
    assert SECRET not in text
    assert text.splitlines()[-1] == '  {"echo": "<redacted>"}'


@pytest.mark.parametrize("field", ["t", "skypetoken", "access_token", "refresh_token", "PPFT"])
def test_url_secrets_are_hidden_in_the_url_the_location_and_their_echoes(field: str) -> None:
    response = HttpResponse(
        302,
        (("Location", f"https://web.skype.com/?{field}={SECRET}&state=1"),),
        f"<a href='https://web.skype.com/'>{SECRET}</a>".encode(),
        f"https://login.skype.com/login?client_id=578134&{field}={SECRET}",
    )
    text = describe(response)
    assert SECRET not in text
    assert f"?{field}=%3Credacted%3E&state=1" in text
    assert text.endswith("<a href='https://web.skype.com/'><redacted></a>")


def test_a_password_in_user_info_is_hidden_whatever_the_colons() -> None:
    assert redact_url("https://me:pw:x@host/p") == "https://me:%3Credacted%3E@host/p"
    assert redact_url("https://" + ":" * 5000) == "https://" + ":" * 5000


def test_a_password_in_user_info_is_hidden_whatever_the_at_signs() -> None:
    # URL parsers split user info from the host at its last "@", and the user from the password
    # at its first ":"; an "@" on either side of that colon must not leave a piece shown.
    assert redact_url("https://me:p@ss-word@host/p") == "https://me:%3Credacted%3E@host/p"
    assert redact_url("https://me@x:pass-word@host/p") == "https://me@x:%3Credacted%3E@host/p"
    assert redact_url("https://me@host:8080/p") == "https://me@host:8080/p"
    assert redact_url("https://host/a:b@c") == "https://host/a:b@c"
    assert redact_url("https://" + ":@" * 5000) == "https://:%3Credacted%3E@"


def test_a_token_holding_a_lone_surrogate_is_hidden_without_a_crash() -> None:
    # JSON can escape a lone surrogate; the core's reader accepts it.
    body = b'{"skypetoken": "\\ud800Zq7-secret", "echo": "\\ud800Zq7-secret"}'
    assert HttpResponse(200, JSON, body).json()["skypetoken"] == "\ud800Zq7-secret"
    text = describe(HttpResponse(200, JSON, body))
    assert text.splitlines()[-1] == '  {"skypetoken": "<redacted>", "echo": "<redacted>"}'


def test_many_cookies_do_not_crowd_out_the_body_secrets() -> None:
    cookies = "; ".join(f"c{i}=cookie-value-{i:04d}" for i in range(40))
    request = HttpRequest.build(
        "POST",
        "https://api.skype.com/login/skypetoken",
        headers={"Cookie": cookies},
        json={"passwordHash": SECRET, "echo": SECRET},
    )
    assert SECRET not in describe(request)


def test_a_comparison_in_a_script_is_shown_but_a_tag_cut_inside_one_is_not() -> None:
    page = "<script>if (a<b) go();</script><p>after</p>"
    assert describe(HttpResponse(200, HTML, page.encode())).endswith(f"  {page}")
    cut = f'<script>var s = \'<input name="PPFT" value="{LONG}'
    assert describe(HttpResponse(200, HTML, cut.encode())).endswith("  <script>var s = '<redacted>")
