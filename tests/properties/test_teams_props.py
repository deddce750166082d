"""Properties of the Teams Free parsers: every answer gives a result, or a skyproto error."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from skyproto import Hosts, HttpResponse, SkypeException
from skyproto.auth.teams import (
    OAuthVersion,
    parse_authz,
    parse_device_code,
    parse_oauth_tokens,
    skype_id_from_token,
)
from skyproto.chat import AFD_BASE, parse_chat_page, parse_sent, summarise_message

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOSTS = Hosts.teams()

KEYS = [
    "device_code",
    "user_code",
    "verification_url",
    "verification_uri",
    "expires_in",
    "interval",
    "message",
    "access_token",
    "refresh_token",
    "scope",
    "skypeToken",
    "skypetoken",
    "expiresIn",
    "skypeid",
    "regionGtms",
    "chatService",
    "chatServiceAfd",
    "middleTier",
    "tokens",
    "status",
    "errorCode",
    "code",
    "text",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["900", "5", " 7 ", "-1", "https://msgapi.teams.live.com", "live:.cid.1"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=6)
    ),
    max_leaves=25,
)


def response(body: Any) -> HttpResponse:
    try:
        return HttpResponse.build(200, json=body)
    except (ValueError, SkypeException):
        return HttpResponse.build(200, content=repr(body).encode())


@given(JSON, st.sampled_from(list(OAuthVersion)))
def test_device_code_answer(body: Any, version: OAuthVersion) -> None:
    try:
        code = parse_device_code(response(body), version)
    except SkypeException:
        return
    assert code.device_code
    assert code.user_code
    assert code.verification_url
    assert code.interval >= 1
    assert code.expires_in > 0


@given(JSON)
def test_token_answer(body: Any) -> None:
    try:
        tokens = parse_oauth_tokens(response(body), NOW)
    except SkypeException:
        return
    assert tokens.access_token
    assert tokens.expiry >= NOW.replace(microsecond=0)


@given(JSON)
def test_authz_answer(body: Any) -> None:
    try:
        auth = parse_authz(response(body), NOW, hosts=HOSTS)
    except SkypeException:
        return
    assert auth.skype_id
    assert auth.skype_token.token
    for base in attrs.astuple(auth.region):
        assert base is None or HOSTS.is_trusted(base)


@given(st.text(max_size=200) | st.lists(st.text(max_size=40), max_size=4).map(".".join))
def test_skype_id_claim(token: str) -> None:
    found = skype_id_from_token(token)
    assert found is None or (isinstance(found, str) and found)


CHAT_KEYS = ["conversations", "messages", "_metadata", "backwardLink", "syncState", "errorCode"]
LINKS = st.sampled_from(
    [
        "https://teams.live.com/api/chatsvc/consumer/v1/users/ME/conversations?syncState=a",
        "https://msgapi.teams.live.com/v1/users/ME/conversations",
        "https://evil.example/x",
        "conversations?x=1",
        "",
    ]
)
CHAT_JSON = st.recursive(
    SCALARS | LINKS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(CHAT_KEYS) | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=25,
)


@given(CHAT_JSON)
def test_chat_page(body: Any) -> None:
    base = AFD_BASE
    try:
        page = parse_chat_page(
            response(body),
            "conversations",
            request_url=base + "/v1/users/ME/conversations",
            base=base,
            hosts=HOSTS,
        )
    except SkypeException:
        return
    assert isinstance(page.items, list)
    for link in (page.backward, page.sync_state):
        assert link is None or (HOSTS.is_trusted(link) and link.startswith(base + "/"))


@given(CHAT_JSON)
def test_send_answer(body: Any) -> None:
    try:
        sent = parse_sent(response(body), "1")
    except SkypeException:
        return
    assert sent.id.isdigit()


@given(CHAT_JSON)
def test_message_summary(body: Any) -> None:
    try:
        summary = summarise_message(body)
    except SkypeException:
        return
    assert list(summary) == ["id", "from", "content", "messagetype", "composetime"]
