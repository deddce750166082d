"""Round-trip properties of the HTTP values, with h11 as the real peer (skyproto._http)."""

from __future__ import annotations

import contextlib
import json
import string
import urllib.parse
from typing import Any

from h11_server import answer, serve, wire_bytes
from hypothesis import given
from hypothesis import strategies as st

from skyproto import HttpRequest, HttpResponse, RemoteProtocolError
from skyproto._http import cookie_header, dump_json, encode_form

TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# Header names that change h11's framing or connection handling, or that to_h11 decides.
RESERVED_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "expect",
}
header_names = st.text(TOKEN_CHARS, min_size=1, max_size=20).filter(
    lambda name: name.lower() not in RESERVED_HEADERS
)
# RFC 9110 field-content: visible ASCII or obs-text, inner spaces and tabs, no edge whitespace.
field_chars = st.sampled_from(
    [chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in range(0x80, 0x100)]
)
header_values = st.text(st.one_of(field_chars, st.sampled_from(" \t")), max_size=30).map(
    lambda value: value.strip(" \t")
)
header_lists = st.lists(st.tuples(header_names, header_values), max_size=12)

# RFC 6265 cookie-name (a token) and cookie-value (cookie-octets).
cookie_names = st.text(TOKEN_CHARS, min_size=1, max_size=12)
cookie_octets = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')
cookie_values = st.text(cookie_octets, max_size=20)
path_chars = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="?#")


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    headers=header_lists,
    body=st.binary(max_size=64),
)
def test_request_headers_survive_the_wire(
    method: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    request = HttpRequest(method, "https://API.skype.com:8443/v1/x?y=1", tuple(headers), body)
    got = serve(wire_bytes(request), scheme="https")
    framing = (
        [("Content-Length", str(len(body)))] if body or method in {"POST", "PUT", "PATCH"} else []
    )
    assert got.headers == (("Host", "api.skype.com:8443"), *headers, *framing)
    assert (got.method, got.body) == (method, body)
    assert got.url == "https://api.skype.com:8443/v1/x?y=1"


@given(
    status=st.integers(200, 599) | st.sampled_from([204, 304]),
    headers=header_lists,
    body=st.binary(max_size=64),
)
def test_response_headers_survive_the_wire(
    status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    framing: list[tuple[str, str]] = [("Content-Length", str(len(body)))]
    if status in (204, 304):
        body, framing = b"", []  # these carry no body and no length
    got = answer(HttpResponse(status, tuple(headers), body, "https://x/"))
    assert got.headers == (*headers, *framing)
    assert (got.status, got.body, got.url) == (status, body, "https://x/")


@given(path=st.text(path_chars, max_size=30))
def test_any_path_reaches_the_server_as_the_same_text(path: str) -> None:
    url = f"https://api.skype.com/{path}"
    got = serve(wire_bytes(HttpRequest("GET", url)), scheme="https")
    sent_path = urllib.parse.urlsplit(url).path or "/"
    assert urllib.parse.unquote(got.path) == urllib.parse.unquote(sent_path)


@given(cookies=st.dictionaries(cookie_names, st.one_of(st.none(), cookie_values), max_size=8))
def test_cookie_dicts_survive_the_cookie_header(cookies: dict[str, str | None]) -> None:
    present = {name: value for name, value in cookies.items() if value is not None}
    request = HttpRequest.build("GET", "https://login.skype.com/", cookies=cookies)
    assert request.header("cookie") == cookie_header(cookies)
    assert len(request.header_all("cookie")) == (1 if present else 0)
    assert request.cookies() == present
    assert serve(wire_bytes(request), scheme="https").cookies() == present


@given(
    cookies=st.lists(
        st.tuples(
            cookie_names,
            cookie_values,
            st.sampled_from(
                [
                    "",
                    "; Path=/",
                    "; Secure; HttpOnly",
                    "; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
                    "; Domain=.live.com; Max-Age=0",
                    ";x=y;z",
                ]
            ),
        ),
        max_size=8,
    )
)
def test_set_cookie_pairs_survive_set_cookies(cookies: list[tuple[str, str, str]]) -> None:
    response = HttpResponse(
        200,
        tuple(("Set-Cookie", f"{name}={value}{attributes}") for name, value, attributes in cookies),
    )
    expected = {name: value for name, value, _ in cookies}  # a later header wins
    assert response.set_cookies() == expected
    assert answer(response).set_cookies() == expected


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(value=json_values)
def test_json_bodies_round_trip(value: Any) -> None:
    body = dump_json(value)
    assert body.isascii()
    assert body == json.dumps(value).encode()
    assert HttpResponse(200, (), body).json() == value
    if value is not None:  # json=None means "no JSON body"
        assert HttpRequest.build("POST", "https://x.skype.com/", json=value).json() == value


@given(
    fields=st.lists(
        st.tuples(st.text(max_size=10), st.one_of(st.none(), st.text(max_size=20))), max_size=8
    )
)
def test_form_bodies_round_trip_in_order(fields: list[tuple[str, str | None]]) -> None:
    request = HttpRequest.build("POST", "https://x.skype.com/", form=fields)
    assert request.body == encode_form(fields)
    assert request.form() == [(name, value) for name, value in fields if value is not None]


@given(
    params=st.lists(st.tuples(st.text(min_size=1, max_size=10), st.text(max_size=20)), max_size=8)
)
def test_query_params_round_trip_in_order(params: list[tuple[str, str]]) -> None:
    request = HttpRequest.build("GET", "https://x.skype.com/p?first=1", params=params)
    assert request.query() == [("first", "1"), *params]
    assert serve(wire_bytes(request), scheme="https").query() == [("first", "1"), *params]


@given(body=st.binary(max_size=200) | st.text(max_size=50).map(str.encode))
def test_json_parses_or_raises_remote_protocol_error(body: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        HttpResponse(200, (), body).json()
