"""HttpRequest / HttpResponse: building, reading and h11 framing (skyproto._http).

The h11 tests put requests on the wire through a real ``h11.Connection`` pair, client and server,
so what is checked is what a peer actually parses.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import h11
import pytest
from h11_server import answer, serve, wire_bytes

from skyproto import HttpRequest, HttpResponse, LocalProtocolError, RemoteProtocolError
from skyproto._http import (
    cookie_header,
    dump_json,
    encode_form,
    encode_query,
)

MSGS = "https://client-s.gateway.messenger.live.com/v1"


# -- build: bodies ------------------------------------------------------------------------------


def test_json_body_exact_bytes_and_content_type() -> None:
    req = HttpRequest.build("POST", "https://api.skype.com/x", json={"a": 1, "b": "\u00e9"})
    assert req.body == b'{"a": 1, "b": "\\u00e9"}'
    assert req.headers == (("Content-Type", "application/json"),)
    assert req.method == "POST"
    assert req.url == "https://api.skype.com/x"


def test_json_body_keeps_key_order_and_nesting() -> None:
    body = {"z": [1, {"y": None, "x": True}], "a": "\u2603\U0001f600"}
    req = HttpRequest.build("PUT", "https://api.skype.com/x", json=body)
    assert req.body == (b'{"z": [1, {"y": null, "x": true}], "a": "\\u2603\\ud83d\\ude00"}')
    assert req.json() == body


def test_json_body_matches_the_reference_serialisation() -> None:
    body = {"endpointFeatures": "Agent", "n": [1.5, -2], "s": "a\u00e9\n"}
    assert dump_json(body) == json.dumps(body).encode("ascii")


def test_json_body_with_a_given_content_type_is_not_duplicated() -> None:
    req = HttpRequest.build(
        "POST",
        "https://api.skype.com/x",
        headers={"content-type": "application/json; charset=utf-8"},
        json=[],
    )
    assert req.headers == (("content-type", "application/json; charset=utf-8"),)
    assert req.body == b"[]"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object(), {1j: 1}])
def test_json_body_that_json_cannot_carry_is_refused(value: Any) -> None:
    with pytest.raises(LocalProtocolError, match="cannot encode the JSON body"):
        HttpRequest.build("POST", "https://api.skype.com/x", json={"v": value})


def test_json_body_that_holds_itself_is_refused_and_the_encoder_still_works() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(LocalProtocolError, match="cannot encode the JSON body"):
        dump_json({"v": loop})
    # The encoder is built once and shared: a failure part-way leaves nothing behind.
    assert dump_json({"v": [1, 2.5, None, True, "é"]}) == b'{"v": [1, 2.5, null, true, "\\u00e9"]}'


def test_requests_and_responses_built_on_the_fast_path_equal_constructed_ones() -> None:
    """``build`` and ``from_h11`` skip the converters; what they give must be what the
    constructor gives, every field set."""
    built = HttpRequest.build(
        "post", "https://x.skype.com/a", headers={"A": "1"}, json={}, timeout=3.0, long_poll=True
    )
    made = HttpRequest(
        "POST",
        "https://x.skype.com/a",
        (("A", "1"), ("Content-Type", "application/json")),
        b"{}",
        3.0,
        long_poll=True,
    )
    assert built == made
    assert [getattr(built, a.name) for a in attrs.fields(HttpRequest)] == [
        getattr(made, a.name) for a in attrs.fields(HttpRequest)
    ]
    event = h11.Response(status_code=201, headers=[(b"X-A", b"1"), (b"Content-Length", b"2")])
    got = HttpResponse.from_h11(event, b"{}", url="https://x.skype.com/a")
    want = HttpResponse(
        201, (("X-A", "1"), ("Content-Length", "2")), b"{}", "https://x.skype.com/a"
    )
    assert got == want
    assert [getattr(got, a.name) for a in attrs.fields(HttpResponse)] == [
        getattr(want, a.name) for a in attrs.fields(HttpResponse)
    ]


def test_form_body_order_kept_none_dropped_values_encoded() -> None:
    req = HttpRequest.build(
        "POST",
        "https://login.live.com/ppsecure/post.srf",
        form={"login": "me@example.com", "skip": None, "t": "t=a&p=", "q": "a b/ü"},
    )
    assert req.body == b"login=me%40example.com&t=t%3Da%26p%3D&q=a+b%2F%C3%BC"
    assert req.headers == (("Content-Type", "application/x-www-form-urlencoded"),)
    assert req.form() == [("login", "me@example.com"), ("t", "t=a&p="), ("q", "a b/ü")]


def test_form_body_from_pairs_keeps_repeats() -> None:
    assert encode_form([("a", "1"), ("b", None), ("a", "2")]) == b"a=1&a=2"


def test_content_str_is_utf8_with_no_content_type() -> None:
    req = HttpRequest.build("POST", "https://login.live.com/RST.srf", content="<a>é</a>")
    assert req.body == "<a>é</a>".encode()
    assert req.headers == ()


def test_content_bytes_kept_as_is() -> None:
    req = HttpRequest.build("POST", "https://x.skype.com/", content=b"\x00\xff")
    assert req.body == b"\x00\xff"
    assert req.header("content-type") is None


def test_at_most_one_body_kind() -> None:
    with pytest.raises(LocalProtocolError, match="at most one"):
        HttpRequest.build("POST", "https://x.skype.com/", json={}, form={})
    with pytest.raises(LocalProtocolError, match="at most one"):
        HttpRequest.build("POST", "https://x.skype.com/", form={}, content="")


def test_bytes_like_bodies_become_bytes_and_others_are_refused() -> None:
    assert HttpRequest("POST", "https://x/", (), bytearray(b"ab")).body == b"ab"
    assert HttpResponse(200, (), memoryview(b"cd")).body == b"cd"
    with pytest.raises(LocalProtocolError, match="bytes, not str"):
        HttpRequest("POST", "https://x/", (), "text")  # type: ignore[arg-type]


# -- build: URL and query -----------------------------------------------------------------------


def test_params_are_percent_encoded() -> None:
    req = HttpRequest.build(
        "GET", f"{MSGS}/users/ME/endpoints", params={"a": "x|y", "b": "1:2/3", "c": None}
    )
    assert req.url == f"{MSGS}/users/ME/endpoints?a=x%7Cy&b=1%3A2%2F3"
    assert req.query() == [("a", "x|y"), ("b", "1:2/3")]


def test_params_appended_after_an_existing_query() -> None:
    req = HttpRequest.build("GET", "https://x.skype.com/p?view=msnp24Equivalent", params={"n": "1"})
    assert req.url == "https://x.skype.com/p?view=msnp24Equivalent&n=1"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.skype.com/p?", "https://x.skype.com/p?n=1"),
        ("https://x.skype.com/p?a=1&", "https://x.skype.com/p?a=1&n=1"),
        ("https://x.skype.com/p#frag", "https://x.skype.com/p?n=1#frag"),
        ("https://x.skype.com/p?a=1#f?g", "https://x.skype.com/p?a=1&n=1#f?g"),
    ],
)
def test_params_placement_edge_cases(url: str, expected: str) -> None:
    assert HttpRequest.build("GET", url, params=[("n", "1")]).url == expected


def test_empty_or_all_none_params_leave_the_url_alone() -> None:
    assert (
        HttpRequest.build("GET", "https://x.skype.com/p", params={}).url == "https://x.skype.com/p"
    )
    assert HttpRequest.build("GET", "https://x.skype.com/p", params={"a": None}).url == (
        "https://x.skype.com/p"
    )


def test_encode_query_matches_the_reference_library() -> None:
    requests = pytest.importorskip("requests")
    params = [("a", "x|y z"), ("b", "1:2/3@4"), ("c", "é~*'()!")]
    prepared = requests.Request("GET", "https://x.skype.com/p", params=params).prepare()
    assert f"https://x.skype.com/p?{encode_query(params)}" == prepared.url


@pytest.mark.parametrize(
    "url",
    ["/relative", "ftp://x.skype.com/", "https://", "mailto:a@b", "https://u:p@x.skype.com/"],
)
def test_build_refuses_what_cannot_be_sent(url: str) -> None:
    with pytest.raises(LocalProtocolError):
        HttpRequest.build("GET", url)


def test_build_upper_cases_the_method_and_keeps_timeout() -> None:
    req = HttpRequest.build("delete", "https://x.skype.com/", timeout=2.5)
    assert (req.method, req.timeout) == ("DELETE", 2.5)


def test_host_and_path_properties() -> None:
    req = HttpRequest("GET", "https://API.Skype.com:8443/users/self/profile?x=1")
    assert (req.host, req.path) == ("api.skype.com", "/users/self/profile")
    with pytest.raises(LocalProtocolError, match="not a valid URL"):
        _ = HttpRequest("GET", "http://[::1/").host


# -- headers ------------------------------------------------------------------------------------


def test_header_lookup_is_case_insensitive_and_ordered() -> None:
    req = HttpRequest(
        "GET",
        "https://x.skype.com/",
        (("X-A", "1"), ("x-b", "2"), ("x-a", "3"), ("X-A", "4")),
    )
    assert req.header("x-a") == "1"
    assert req.header("X-B") == "2"
    assert req.header_all("X-a") == ["1", "3", "4"]
    assert req.header("missing") is None
    assert req.header_all("missing") == []
    response = HttpResponse(200, (("Set-Cookie", "a=1"), ("set-cookie", "b=2")))
    assert response.header_all("SET-COOKIE") == ["a=1", "b=2"]
    assert response.header("Set-cookie") == "a=1"


def test_none_header_values_are_dropped() -> None:
    from_map = HttpRequest.build("GET", "https://x.skype.com/", headers={"A": "1", "B": None})
    from_pairs = HttpRequest("GET", "https://x.skype.com/", [("A", None), ("B", "2")])
    assert from_map.headers == (("A", "1"),)
    assert from_pairs.headers == (("B", "2"),)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Token", "abc\r\nInjected: 1"),
        ("X-Token", "abc\ndef"),
        ("X-Token", "abc\rdef"),
        ("X-Token", "abc\x00def"),
        ("X-Bad\r\nName", "v"),
    ],
)
def test_line_breaks_in_headers_are_refused_without_echoing_the_value(
    name: str, value: str
) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        HttpRequest("GET", "https://x.skype.com/", ((name, value),))
    assert "abc" not in str(caught.value)
    with pytest.raises(LocalProtocolError):
        HttpResponse(200, ((name, value),))
    with pytest.raises(LocalProtocolError):
        HttpRequest("GET", "https://x.skype.com/").with_headers({name: value})


@pytest.mark.parametrize(
    "headers", [((1, "v"),), (("n", 2),), (("", "v"),), (("only-one",),), ("ab",)]
)
def test_malformed_header_entries_are_refused(headers: Any) -> None:
    with pytest.raises(LocalProtocolError):
        HttpRequest("GET", "https://x.skype.com/", headers)


def test_with_headers_appends_in_order() -> None:
    req = HttpRequest("GET", "https://x.skype.com/", (("A", "1"),)).with_headers(
        [("B", "2"), ("A", "3")]
    )
    assert req.headers == (("A", "1"), ("B", "2"), ("A", "3"))


# -- cookies ------------------------------------------------------------------------------------


def test_cookies_build_one_cookie_header() -> None:
    req = HttpRequest.build(
        "GET", "https://login.skype.com/", cookies={"MSPRequ": "a|b", "skip": None, "MSPOK": "$c"}
    )
    assert req.headers == (("Cookie", "MSPRequ=a|b; MSPOK=$c"),)
    assert req.cookies() == {"MSPRequ": "a|b", "MSPOK": "$c"}


def test_cookies_join_an_explicit_cookie_header() -> None:
    req = HttpRequest.build(
        "GET",
        "https://login.skype.com/",
        headers=[("User-Agent", "ua"), ("Cookie", "a=1")],
        cookies={"b": "2"},
    )
    assert req.headers == (("User-Agent", "ua"), ("Cookie", "a=1; b=2"))


def test_all_none_cookies_add_no_header() -> None:
    assert HttpRequest.build("GET", "https://x.skype.com/", cookies={"a": None}).headers == ()
    assert cookie_header({}) is None


@pytest.mark.parametrize(
    "cookies", [{"": "v"}, {"a b": "v"}, {"a=b": "v"}, {"a;b": "v"}, {"a": "x;y"}, {"a": "v\n"}]
)
def test_cookies_that_cannot_be_written_are_refused(cookies: dict[str, str]) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        cookie_header(cookies)
    for value in cookies.values():
        if len(value) > 1:
            assert value not in str(caught.value)


def test_request_cookies_reads_every_cookie_header_first_wins() -> None:
    req = HttpRequest(
        "GET",
        "https://x.skype.com/",
        (("Cookie", " a = 1 ;b=2=3; junk ;=x; c="), ("cookie", "a=9; d=4")),
    )
    assert req.cookies() == {"a": "1", "b": "2=3", "c": "", "d": "4"}


def test_set_cookies_with_attributes_repeats_and_malformed_headers() -> None:
    response = HttpResponse(
        200,
        (
            ("Set-Cookie", "MSPRequ=id=N&lt=1700000000&co=1; path=/;version=1"),
            ("Set-Cookie", "MSPOK=$uuid-1; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Secure"),
            ("set-cookie", 'quoted="a b"; HttpOnly'),
            ("Set-Cookie", "no-equals-sign; Path=/"),
            ("Set-Cookie", "=no-name"),
            ("Set-Cookie", " spaced = v ; Max-Age=0"),
            ("Set-Cookie", "MSPOK=$uuid-2; b=not-a-cookie"),
            ("Set-Cookie", "empty="),
            ("X-Other", "x=1"),
        ),
    )
    assert response.set_cookies() == {
        "MSPRequ": "id=N&lt=1700000000&co=1",
        "MSPOK": "$uuid-2",
        "quoted": '"a b"',
        "spaced": "v",
        "empty": "",
    }


def test_set_cookies_agrees_with_the_reference_clients_cookie_jar() -> None:
    requests = pytest.importorskip("requests")
    import urllib3
    from requests.cookies import RequestsCookieJar, extract_cookies_to_jar

    headers = [
        ("Set-Cookie", 'a="q"; Path=/'),
        ("Set-Cookie", "b=x y; b2=ignored; Path=/"),
        ("Set-Cookie", " c = v ; Domain=example.com"),
        ("Set-Cookie", "d=1=2"),
    ]
    raw = urllib3.HTTPResponse(body=b"", headers=headers, status=200, preload_content=False)
    raw._original_response = type("Original", (), {"msg": raw.headers})()  # type: ignore[attr-defined]
    jar = RequestsCookieJar()
    extract_cookies_to_jar(jar, requests.Request("GET", "https://example.com/").prepare(), raw)
    assert HttpResponse(200, tuple(headers)).set_cookies() == dict(jar)


# -- reading bodies -----------------------------------------------------------------------------


def test_response_json_and_text() -> None:
    response = HttpResponse.build(201, json={"id": "x"}, url="https://x/")
    assert response.json() == {"id": "x"}
    assert response.headers == (("Content-Type", "application/json"),)
    assert HttpResponse(200, (), b"caf\xc3\xa9 \xff").text == "café \ufffd"


@pytest.mark.parametrize(
    "body", [b"", b"{", b"<html>", b"\xff\xfe\x00", b"[" * 100_000, b'{"a": 1} trailing', b"NaNx"]
)
def test_json_on_bad_json_raises_remote_protocol_error(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="response body is not valid JSON"):
        HttpResponse(200, (), body).json()
    with pytest.raises(RemoteProtocolError, match="request body is not valid JSON"):
        HttpRequest("POST", "https://x/", (), body).json()


def test_form_of_a_non_ascii_body_is_a_remote_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError, match="not ASCII"):
        HttpRequest("POST", "https://x/", (), "é=1".encode()).form()


def test_response_build_content_and_content_type() -> None:
    response = HttpResponse.build(
        302, headers=[("Location", "/next")], content="<p>é</p>", content_type="text/html"
    )
    assert response.headers == (("Location", "/next"), ("Content-Type", "text/html"))
    assert response.body == "<p>é</p>".encode()
    assert HttpResponse.build(204).headers == ()


# -- h11 ----------------------------------------------------------------------------------------


def test_request_on_the_wire_exact_bytes() -> None:
    req = HttpRequest.build(
        "POST",
        f"{MSGS}/users/ME/endpoints/{{3f2504e0-4f89-11d3-9a0c-0305e82c3301}}/presenceDocs/x",
        params={"a": "1"},
        headers=[("User-Agent", "ua"), ("X-Many", "1"), ("x-many", "2")],
        json={"k": "v"},
    )
    assert wire_bytes(req) == (
        b"POST /v1/users/ME/endpoints/%7B3f2504e0-4f89-11d3-9a0c-0305e82c3301%7D/presenceDocs/x?a=1"
        b" HTTP/1.1\r\n"
        b"Host: client-s.gateway.messenger.live.com\r\n"
        b"User-Agent: ua\r\n"
        b"X-Many: 1\r\n"
        b"x-many: 2\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: 10\r\n"
        b"\r\n"
        b'{"k": "v"}'
    )


def test_request_round_trip_through_an_h11_server() -> None:
    req = HttpRequest.build(
        "PUT",
        "https://127.0.0.1:8443/v1/users/ME/endpoints/{abc}/x?y=1|2",
        headers=[("X-A", "1"), ("Set-Thing", "a"), ("set-thing", "b")],
        form={"f": "é"},
    )
    got = serve(wire_bytes(req), scheme="https")
    assert got.method == "PUT"
    assert got.url == "https://127.0.0.1:8443/v1/users/ME/endpoints/%7Babc%7D/x?y=1%7C2"
    assert got.headers == (
        ("Host", "127.0.0.1:8443"),
        ("X-A", "1"),
        ("Set-Thing", "a"),
        ("set-thing", "b"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", "8"),
    )
    assert got.body == b"f=%C3%A9"
    assert got.form() == [("f", "é")]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://API.Skype.COM/x", "api.skype.com"),
        ("https://api.skype.com:443/x", "api.skype.com"),
        ("http://127.0.0.1:80/x", "127.0.0.1"),
        ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
        ("https://127.0.0.1:80/x", "127.0.0.1:80"),
        ("http://[::1]:8080/x", "[::1]:8080"),
    ],
)
def test_host_header_is_derived_from_the_url(url: str, host: str) -> None:
    head, _ = HttpRequest("GET", url, (("Host", "spoofed"),)).to_h11()
    assert next(iter(head.headers.raw_items())) == (b"Host", host.encode())
    assert [name for name, _ in head.headers.raw_items()].count(b"Host") == 1


@pytest.mark.parametrize(
    ("method", "body", "length"),
    [("GET", b"", None), ("DELETE", b"", None), ("POST", b"", b"0"), ("PUT", b"", b"0"),
     ("PATCH", b"", b"0"), ("GET", b"abc", b"3"), ("POST", b"abcd", b"4")],
)  # fmt: skip
def test_content_length_framing(method: str, body: bytes, length: bytes | None) -> None:
    req = HttpRequest(
        method,
        "https://x.skype.com/",
        (("Content-Length", "999"), ("Transfer-Encoding", "chunked")),
        body,
    )
    head, data = req.to_h11()
    lengths = [v for k, v in head.headers.raw_items() if k.lower() == b"content-length"]
    assert lengths == ([] if length is None else [length])
    assert not [k for k, _ in head.headers.raw_items() if k.lower() == b"transfer-encoding"]
    assert (data.data if data is not None else b"") == body
    assert serve(wire_bytes(req)).body == body


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("https://x.skype.com/a/{b}/c", b"/a/%7Bb%7D/c"),
        (
            "https://x.skype.com/8:live:me@x/19:abc@thread.skype",
            b"/8:live:me@x/19:abc@thread.skype",
        ),
        ("https://x.skype.com/a%7bb%2F", b"/a%7bb%2F"),
        ("https://x.skype.com/caf\u00e9 x|y", b"/caf%C3%A9%20x%7Cy"),
        ("https://x.skype.com", b"/"),
        ("https://x.skype.com/p?q=a b#frag", b"/p?q=a%20b"),
    ],
)
def test_request_target_on_the_wire(url: str, target: bytes) -> None:
    head, _ = HttpRequest("GET", url).to_h11()
    assert head.target == target


def test_absolute_form_target_is_kept_by_from_h11() -> None:
    raw = b"GET http://other.example/p?q=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n"
    assert serve(raw).url == "http://other.example/p?q=1"


def test_to_h11_refusals_are_local_and_never_quote_the_value() -> None:
    secret = "s3cr3t-value"
    cases = [
        HttpRequest("GET", "https://x.skype.com/", (("X-Token", f" {secret}"),)),
        HttpRequest("GET", "https://x.skype.com/", (("X-Token", f"{secret}\u2603"),)),
        HttpRequest("GET", "https://x.skype.com/", (("Bad Name", secret),)),
        HttpRequest("GET", f"https://u:{secret}@x.skype.com/"),
        HttpRequest("GET", "ftp://x.skype.com/"),
        HttpRequest("G\u00c9T", f"https://x.skype.com/{secret}"),
        HttpRequest("GET", f"https://x.skype.com/{secret}\udc80"),
    ]
    for req in cases:
        with pytest.raises(LocalProtocolError) as caught:
            req.to_h11()
        assert secret not in str(caught.value)
        assert caught.value.__cause__ is None
    with pytest.raises(LocalProtocolError):
        HttpResponse(99).to_h11()


def test_response_round_trip_through_an_h11_client() -> None:
    response = HttpResponse(
        201,
        (
            ("Location", f"{MSGS}/users/ME/endpoints/%7Babc%7D"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Content-Length", "999"),
            ("Latin", "caf\u00e9"),
        ),
        b'{"x": 1}',
        f"{MSGS}/users/ME/endpoints",
    )
    got = answer(response)
    assert got.status == 201
    assert got.headers == (
        ("Location", f"{MSGS}/users/ME/endpoints/%7Babc%7D"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Latin", "caf\u00e9"),
        ("Content-Length", "8"),
    )
    assert got.body == b'{"x": 1}'
    assert got.url == f"{MSGS}/users/ME/endpoints"
    assert got.set_cookies() == {"a": "1", "b": "2"}


def test_empty_response_is_framed_with_zero_length() -> None:
    head, data = HttpResponse(200).to_h11()
    assert list(head.headers.raw_items()) == [(b"Content-Length", b"0")]
    assert data is None
    assert answer(HttpResponse(200)).body == b""


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_carry_no_length_and_no_body(status: int) -> None:
    head, data = HttpResponse(status, (("Content-Length", "0"), ("X", "1"))).to_h11()
    assert list(head.headers.raw_items()) == [(b"X", b"1")]
    assert data is None
    assert answer(HttpResponse(status)).headers == ()
    with pytest.raises(LocalProtocolError, match=f"a {status} response carries no body"):
        HttpResponse(status, (), b"x").to_h11()


@pytest.mark.parametrize("shape", [tuple, list, dict])
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("X-A", "one\r\nInjected: yes", "contains a line break or NUL"),
        ("X-A", "nul\x00", "contains a line break or NUL"),
        ("X-A\n", "v", "contains a line break or NUL"),
        ("", "v", "cannot be empty"),
        ("X-A", 5, "must be str"),
    ],
)
def test_bad_header_lines_are_refused_in_every_shape(
    shape: type, name: str, value: Any, message: str
) -> None:
    headers = shape([("X-Ok", "fine"), (name, value)])
    with pytest.raises(LocalProtocolError, match=message) as caught:
        HttpRequest("GET", "https://example.com/", headers)
    assert "Injected" not in str(caught.value)
    assert "nul" not in str(caught.value)


@pytest.mark.parametrize("shape", [tuple, list])
def test_header_lines_keep_their_order_and_repeats_and_drop_missing_values(shape: type) -> None:
    lines = [("Set-Cookie", "a=1"), ("X-Gone", None), ("set-cookie", "b=2"), ("X-A", "")]
    response = HttpResponse(200, shape(lines))
    assert response.headers == (("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-A", ""))
    assert response.header_all("SET-COOKIE") == ["a=1", "b=2"]


def test_a_header_pair_must_be_a_pair() -> None:
    for bad in ["ab", ("a", "b", "c"), ("a",), 7]:
        with pytest.raises(LocalProtocolError, match="pairs"):
            HttpRequest("GET", "https://example.com/", (bad,))  # type: ignore[arg-type]


def test_a_bad_url_is_refused_every_time_not_only_the_first() -> None:
    for _ in range(2):
        with pytest.raises(LocalProtocolError, match="not an absolute"):
            HttpRequest("GET", "ftp://example.com/x").to_h11()
