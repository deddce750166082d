"""Properties of the registration header and Location parsers."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

from hypothesis import given
from hypothesis import strategies as st

from skyproto import RemoteProtocolError
from skyproto.registration import parse_location, parse_registration_token

BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


def spellings(word: str) -> st.SearchStrategy[str]:
    """``word`` with each letter's case chosen freely."""
    return st.tuples(*(st.sampled_from(sorted({c.lower(), c.upper()})) for c in word)).map("".join)


@given(st.text())
def test_arbitrary_text_parses_or_raises_remote_protocol_error(text: str) -> None:
    try:
        parsed = parse_registration_token(text)
    except RemoteProtocolError:
        pass
    else:
        assert parsed.token.lower().startswith("registrationtoken=")
        assert parsed.expiry.tzinfo is dt.UTC


@given(
    st.lists(
        st.sampled_from(["registrationToken=", "expires=", "endpointId=", ";", " ", "{", "}", "."])
        | st.text(alphabet="aZ09+/=-_.{}; \t", max_size=6),
        max_size=12,
    ).map("".join)
)
def test_header_like_text_parses_or_raises_remote_protocol_error(text: str) -> None:
    with contextlib.suppress(RemoteProtocolError):
        parse_registration_token(text)


@st.composite
def headers(draw: st.DrawFn) -> tuple[str, str, int, str | None]:
    name = draw(spellings("registrationToken"))
    value = draw(st.text(alphabet=BASE64, min_size=1, max_size=40))
    expires = draw(st.integers(min_value=0, max_value=MAX_EPOCH))
    fraction = draw(st.sampled_from(["", ".", ".5", ".999"]))
    endpoint = draw(st.none() | st.uuids().map(str))
    params = [
        f"{name}={value}",
        f"{draw(spellings('expires'))}={expires}{fraction}",
    ]
    if endpoint is not None:
        text = endpoint.upper() if draw(st.booleans()) else endpoint
        braced = draw(st.booleans())
        params.append(f"{draw(spellings('endpointId'))}={'{' + text + '}' if braced else text}")
    params += draw(st.lists(st.sampled_from(["Version=6", "foo=bar", "x"]), max_size=2))
    params = draw(st.permutations(params))
    separators = draw(
        st.lists(
            st.sampled_from([";", "; ", " ;", ";  "]), min_size=len(params), max_size=len(params)
        )
    )
    header = "".join(p + s for p, s in zip(params, separators, strict=True))[: -len(separators[-1])]
    return header, f"{name}={value}", expires, None if endpoint is None else "{" + endpoint + "}"


@given(headers())
def test_well_formed_headers_round_trip(case: tuple[str, str, int, str | None]) -> None:
    header, token, expires, endpoint = case
    parsed = parse_registration_token(header)
    assert parsed.token == token
    assert parsed.expiry == dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=expires)
    assert parsed.endpoint_id == endpoint


@given(st.text())
def test_arbitrary_location_parses_or_raises_remote_protocol_error(text: str) -> None:
    with contextlib.suppress(RemoteProtocolError):
        parse_location(text)


@given(
    st.sampled_from(["http", "https", "HTTPS"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True),
    st.none() | st.integers(min_value=1, max_value=65535),
    st.lists(st.from_regex(r"[A-Za-z0-9._~-]{1,12}", fullmatch=True), max_size=3),
    st.none() | st.uuids(),
    st.sampled_from(["", "/", "?cv=1", "/?a=b#c"]),
)
def test_built_locations_round_trip(
    scheme: str,
    host: str,
    port: int | None,
    prefix: list[str],
    endpoint: uuid.UUID | None,
    tail: str,
) -> None:
    authority = host if port is None else f"{host}:{port}"
    path = "".join(f"/{p}" for p in prefix)
    location = f"{scheme}://{authority}{path}/users/ME/endpoints"
    if endpoint is not None:
        location += f"/%7B{str(endpoint).upper()}%7D"
    location += tail
    default_port = 443 if scheme.lower() == "https" else 80
    shown = host if port in (None, default_port) else f"{host}:{port}"
    expected_id = None if endpoint is None else "{" + str(endpoint) + "}"
    assert parse_location(location) == (f"{scheme.lower()}://{shown}{path}", expected_id)
