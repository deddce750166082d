"""Hypothesis strategies for what a hostile or broken server sends, shared by the fuzz tests.

Each strategy mixes near-valid input (the right markers, members and grammar, with garbage,
wrong types, huge numbers, NaN and deep nesting in between) with raw random text and bytes, so
that a parser is exercised both past its first check and at it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

# -- building blocks ----------------------------------------------------------------------------

#: Header values as the transports hand them over: latin-1 text without CR, LF or NUL.
header_text = st.text(
    st.characters(max_codepoint=0xFF, blacklist_characters="\r\n\x00"), max_size=60
)
raw_text = st.text(max_size=200)
raw_bytes = st.binary(max_size=200)
#: Bytes that are not UTF-8 (a lone continuation byte, an overlong form, a surrogate's encoding).
non_utf8 = st.tuples(
    raw_bytes, st.sampled_from([b"\x80", b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80"])
)
non_utf8_bytes = non_utf8.map(lambda pair: pair[0] + pair[1])
#: Numbers a careless parser chokes on: huge, negative, fractional, exponent-only.
huge_digits = st.integers(1, 6000).map(lambda n: "9" * n)
odd_numbers = st.one_of(
    st.sampled_from(["0", "-1", "1e309", "-0", "1.5", ".5", "5.", "0x10", "1_000", "٣", "NaN"]),
    huge_digits,
    st.integers().map(str),
)


def pieces(markers: Sequence[str], *, max_size: int = 30) -> st.SearchStrategy[str]:
    """Text made of ``markers`` (the tokens a parser looks for) and random text, in any order."""
    return st.lists(
        st.one_of(st.sampled_from(list(markers)), st.text(max_size=6)), max_size=max_size
    ).map("".join)


def deep(open_: str, close: str = "") -> st.SearchStrategy[str]:
    """``open_`` repeated up to a few thousand times (and closed again when ``close`` is given)."""
    return st.integers(1, 5000).map(lambda n: open_ * n + close * n)


# -- JSON ---------------------------------------------------------------------------------------

JSON_KEYS = [
    "skypetoken",
    "expiresIn",
    "expires_in",
    "status",
    "code",
    "text",
    "username",
    "threadId",
    "eventMessages",
    "_metadata",
    "syncState",
    "errorCode",
    "standardizedError",
    "endpointPresenceDocs",
    "link",
    "id",
    "resourceType",
    "resource",
    "time",
    "conversations",
    "items",
]
json_keys = st.one_of(st.sampled_from(JSON_KEYS), st.text(max_size=8))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(1, 400).map(lambda n: 10**n),
    st.floats(),  # NaN and the infinities included: json.dumps writes them, json.loads reads them
    st.text(max_size=20),
    odd_numbers,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(json_keys, inner, max_size=5)
    ),
    max_leaves=15,
)


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes (NaN and infinities written as JavaScript does)."""
    return json.dumps(value).encode("utf-8")


def json_object_with(
    fields: dict[str, st.SearchStrategy[Any]],
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that may hold each of ``fields`` (near-valid or any JSON value), and other keys."""
    optional = {key: st.one_of(strategy, json_values) for key, strategy in fields.items()}
    return st.tuples(
        st.fixed_dictionaries({}, optional=optional),
        st.dictionaries(json_keys, json_values, max_size=2),
    ).map(lambda pair: {**pair[1], **pair[0]})


#: A JSON body broken in every way that is not about its members.
broken_json = st.one_of(
    raw_bytes,
    non_utf8_bytes,
    deep("[", "]").map(str.encode),
    deep("[").map(str.encode),
    deep('{"a":').map(str.encode),
    huge_digits.map(str.encode),
    st.sampled_from([b"", b" ", b"null", b"NaN", b"-Infinity", b"\xef\xbb\xbf{}", b"[]", b'""']),
    json_values.map(lambda v: json.dumps(v).encode("utf-16")),
)


def json_bodies(near_valid: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[bytes]:
    """Response bodies for a parser that wants JSON, mostly ``near_valid`` values."""
    options = [json_values.map(dumps), broken_json]
    if near_valid is not None:
        options = [near_valid.map(dumps), near_valid.map(dumps), *options]
    return st.one_of(*options)


# -- URLs and headers ---------------------------------------------------------------------------

URL_PIECES = [
    "https://",
    "http://",
    "//",
    "client-s.gateway.messenger.live.com",
    "login.live.com",
    "login.skype.com",
    "evil.example",
    ".skype.com.evil.example",
    "127.0.0.1",
    "[",
    "]",
    "::1",
    ":",
    "443",
    "99999",
    "/v1",
    "/users/ME/endpoints",
    "/users/ME/conversations",
    "%7B",
    "%7d",
    "{",
    "}",
    "12345678-1234-1234-1234-123456789abc",
    "?",
    "#",
    "@",
    "\\",
    " ",
    "\t",
    "%2F",
    "/..",
    "/.",
    "é",
]
urls = st.one_of(pieces(URL_PIECES, max_size=12), header_text).map(
    lambda url: url.replace("\r", "").replace("\n", "").replace("\x00", "")
)

REGISTRATION_PIECES = [
    "registrationToken=",
    "RegistrationToken=",
    "expires=",
    "Expires=",
    "endpointId=",
    "EndpointId=",
    ";",
    "; ",
    " ",
    "=",
    "{",
    "}",
    "U2t5cGU+/=",
    "1700000000",
    "1.5",
    "99999999999999999999999",
    "-1",
    "{12345678-1234-1234-1234-123456789abc}",
    "\t",
    "é",
]
registration_headers = st.one_of(
    pieces(REGISTRATION_PIECES, max_size=16).map(lambda text: header_safe(text)),
    header_text,
)

retry_after_values = st.one_of(
    odd_numbers,
    pieces(
        [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Mon, 01 Jan 99999 00:00:00 GMT",
            " ",
            ",",
            "GMT",
            "+0000",
            "-9999",
            "31",
            "Feb",
            "1.",
            ".",
            "0",
        ],
        max_size=8,
    ),
    header_text,
)

COOKIE_PIECES = [
    "MSPRequ=",
    "MSPOK=",
    "csrf_token=",
    "launcher_session_id=",
    "a=b",
    ";",
    "; ",
    "=",
    "Domain=",
    ".skype.com",
    "live.com",
    "com",
    "Path=/",
    "Path=",
    "Secure",
    "Max-Age=",
    "-1",
    "0",
    "Expires=",
    "Thu, 01-Jan-1970 00:00:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    '"',
    " ",
]
set_cookie_values = st.one_of(
    pieces(COOKIE_PIECES, max_size=12).map(lambda text: header_safe(text)),
    header_text,
)

HEADER_NAMES = [
    "Location",
    "Set-RegistrationToken",
    "Retry-After",
    "Set-Cookie",
    "Content-Type",
    "location",
    "SET-COOKIE",
]


def header_safe(value: str) -> str:
    """``value`` as a transport hands a header value over: latin-1, no CR, LF or NUL."""
    text = value.encode("utf-8").decode("latin-1")
    return text.replace("\r", "").replace("\n", "").replace("\x00", "")


def header_value_for(name: str) -> st.SearchStrategy[str]:
    """A value for header ``name``: near-valid for the headers the core reads, else any text."""
    key = name.lower()
    if key == "location":
        return urls
    if key == "set-registrationtoken":
        return registration_headers
    if key == "retry-after":
        return retry_after_values.map(header_safe)
    if key == "set-cookie":
        return set_cookie_values
    return header_text


headers = st.lists(
    st.one_of(st.sampled_from(HEADER_NAMES), st.text("abcXYZ-", min_size=1, max_size=8)).flatmap(
        lambda name: st.tuples(st.just(name), header_value_for(name))
    ),
    max_size=6,
)

# -- pages --------------------------------------------------------------------------------------

PAGE_PIECES = [
    '<input type="hidden" name="PPFT" id="i0327" value="',
    '<input name="PPFT" value="',
    '<input id="t" value="',
    '<input type="hidden" name="t" id="t" value="',
    '<input id="t">',
    '<input type="hidden" name="skypetoken" value="',
    '<input type="hidden" name="expires_in" value="',
    '<form name="fmHF" action="https://login.live.com/consent?x=1">',
    '<form id="fmHF">',
    "<form>",
    "</form>",
    '"/>',
    '">',
    "sErrTxt:'",
    "'",
    "\\'",
    "\\\\",
    "<",
    ">",
    "\n",
    "opid=",
    "OPID=",
    "abc123",
    "V: [ {",
    "<script>",
    "</script>",
    "<!--",
    "-->",
    "&amp;",
    "&#",
    "&#x110000;",
    "<![CDATA[",
    '"',
    "=",
    " ",
    "86400",
    "9" * 30,
]
pages = st.one_of(
    pieces(PAGE_PIECES, max_size=40),
    raw_text,
    deep("<a"),
    deep("<\n").map(lambda text: "sErrTxt:'" + text),
    deep('"'),
)
page_bodies = st.one_of(
    pages.map(lambda text: text.encode("utf-8")),
    st.tuples(pages, non_utf8_bytes).map(lambda pair: pair[0].encode("utf-8") + pair[1]),
    raw_bytes,
)

# -- XML ----------------------------------------------------------------------------------------

XML_TAGS = [
    "Envelope",
    "S:Envelope",
    "Body",
    "Fault",
    "S:Fault",
    "faultcode",
    "faultstring",
    "Code",
    "Value",
    "Subcode",
    "Reason",
    "Text",
    "BinarySecurityToken",
    "wsse:BinarySecurityToken",
]
_XML_NS = ' xmlns:S="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="urn:x"'


def _element(tag: str, children: list[str], root: bool = False) -> str:
    return f"<{tag}{_XML_NS if root else ''}>{''.join(children)}</{tag}>"


_xml_text = st.text(
    st.characters(blacklist_characters="<&\x00", blacklist_categories=("Cs",)), max_size=10
)
_xml_trees = st.recursive(
    _xml_text,
    lambda inner: st.builds(_element, st.sampled_from(XML_TAGS), st.lists(inner, max_size=3)),
    max_leaves=12,
)
well_formed_xml = st.builds(
    lambda tag, children: _element(tag, children, root=True),
    st.sampled_from(XML_TAGS),
    st.lists(_xml_trees, max_size=3),
)
XML_PIECES = [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<?xml version="1.0" encoding="utf-16"?>',
    '<!DOCTYPE x [<!ENTITY a "b">]>',
    '<!DOCTYPE x SYSTEM "file:///etc/passwd">',
    "&a;",
    "&lt;",
    "<![CDATA[",
    "]]>",
    *(f"<{tag}>" for tag in XML_TAGS),
    *(f"</{tag}>" for tag in XML_TAGS),
    _XML_NS,
]
xml_bodies = st.one_of(
    well_formed_xml.map(lambda text: text.encode("utf-8")),
    well_formed_xml.map(
        lambda text: ('<?xml version="1.0" encoding="latin-1"?>' + text).encode(
            "latin-1", "replace"
        )
    ),
    pieces(XML_PIECES, max_size=30).map(lambda text: text.encode("utf-8")),
    deep("<a>", "</a>").map(str.encode),
    deep("<S:Fault><S:Code><S:Subcode>").map(str.encode),
    raw_bytes,
    non_utf8_bytes,
)


def share_of_profile(fraction: float) -> settings:
    """Settings running ``fraction`` of the profile's examples, unless the profile is a long one.

    The registries here hold dozens of properties; under the short ``ci`` profile each gets a
    share of its examples, so the whole stays cheap, while ``fuzz`` and ``thorough`` keep theirs.
    """
    examples = settings.default.max_examples
    if examples >= LONG_PROFILE:
        return settings()
    return settings(max_examples=max(10, int(examples * fraction)))


#: A profile with at least this many examples per test is a long run and keeps them all.
LONG_PROFILE = 1000
