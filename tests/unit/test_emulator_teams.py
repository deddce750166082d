"""The Teams Free profile end to end against the pure emulator, with a fake clock.

The client flows (skyproto.auth.teams, skyproto.chat) and the emulator's peer
(skyproto.emulator.teams) were written from the same protocol facts independently, so each
test here checks one against the other: the device-code chain with scripted slow_down,
declined and expired answers; refresh-token rotation; authz shapes and refusals; the chat
service under both bases with backwardLink paging, the product header and quota answers; and a
Teams session's policy (re-mint before expiry and on 401, single flight, dead refresh token,
snapshot round trip).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import attrs
import pytest
from test_session import AsyncPeer, make_peer

from skyproto import (
    Hosts,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    SkypeApiException,
    SkypeAuthException,
    SkypeRateLimitException,
    SkypeTokenException,
    UntrustedHostError,
)
from skyproto.auth.teams import (
    AUTHZ_URL,
    DeviceCodeLogin,
    DeviceLoginRequired,
    DevicePrompt,
    OAuthVersion,
    authz,
    device_code_login,
    refresh_access_token,
    teams_login,
)
from skyproto.chat import (
    AFD_BASE,
    CONVERSATION_PARAMS,
    MSGAPI_BASE,
    conversations_listing,
    conversations_url,
    listing,
    message_params,
    messages_listing,
    messages_url,
    send,
    send_message,
    summarise_message,
)
from skyproto.emulator import Scenario
from skyproto.emulator.testing import Peer
from skyproto.session import Session, SessionState, dump_snapshot, load_snapshot
from skyproto.tokens import REFRESH_LEEWAY

HOSTS = Hosts.teams()
GROUP = "19:uni01_4f2a9c@thread.v2"
OLD_GROUP = "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype"


def peer(**scenario: Any) -> Peer:
    return make_peer(Scenario(**scenario), hosts=HOSTS)


def login(p: Peer, version: OAuthVersion = OAuthVersion.V1) -> tuple[Any, str | None]:
    prompts: list[DevicePrompt] = []
    result = p.run(teams_login(HOSTS, device=DeviceCodeLogin(prompts.append, version)))
    assert len(prompts) == 1
    return result


# -- identity and authz ------------------------------------------------------------------------


@pytest.mark.parametrize("version", list(OAuthVersion))
def test_device_code_chain_reaches_a_skype_token(version: OAuthVersion) -> None:
    p = peer(device_pending=2)
    auth, refresh = login(p, version)
    assert auth.skype_id == p.emulator.teams.skype_id
    assert refresh is not None
    expected = ["teams_devicecode", "teams_token", "teams_token", "teams_token"]
    if version is OAuthVersion.V1:
        expected.append("teams_token")  # the refresh for the skypetoken scope
    assert p.routes == [*expected, "teams_authz"]
    assert auth.region.chat_service_afd == AFD_BASE
    assert auth.region.chat_service == MSGAPI_BASE


def test_v1_token_is_refused_by_authz_without_the_scope_refresh() -> None:
    p = peer(device_pending=0)
    prompts: list[DevicePrompt] = []
    flow = device_code_login(HOSTS, DeviceCodeLogin(prompts.append, OAuthVersion.V2))
    tokens = p.run(flow)
    assert p.run(authz(tokens.access_token, HOSTS)).skype_id
    # The same chain without the refresh: the v1 token is for another resource.
    from skyproto.auth.teams import poll_device_code, request_device_code

    code = p.run(request_device_code(HOSTS))
    v1 = p.run(poll_device_code(code, HOSTS, issued=p.clock()))
    with pytest.raises(SkypeAuthException, match="authz refused"):
        p.run(authz(v1.access_token, HOSTS))


def test_polling_too_fast_or_scripted_slow_down_adds_five_seconds() -> None:
    p = peer(device_slow_down=1, device_pending=1, device_interval=2)
    start = p.clock()
    login(p, OAuthVersion.V2)
    # polls at 2 s (slow_down), 9 s (pending), 16 s (approved)
    assert (p.clock() - start).total_seconds() == 16


@pytest.mark.parametrize(("outcome", "words"), [("declined", "declined"), ("expired", "expired")])
def test_scripted_user_outcomes(outcome: str, words: str) -> None:
    p = peer(device_outcome=outcome, device_pending=1)
    with pytest.raises(SkypeAuthException, match=words):
        login(p)


def test_refresh_tokens_rotate_and_old_ones_die() -> None:
    p = peer(device_pending=0)
    _auth, first = login(p)
    assert first is not None
    second = p.run(refresh_access_token(first, HOSTS)).refresh_token
    assert second not in (None, first)
    with pytest.raises(DeviceLoginRequired, match="new device-code login"):
        p.run(refresh_access_token(first, HOSTS))
    assert p.run(refresh_access_token(second, HOSTS)).refresh_token


def test_dead_refresh_knob_falls_back_to_device_code() -> None:
    p = peer(device_pending=0)
    _auth, refresh = login(p)
    p.set_scenario(refresh_dead=True)
    with pytest.raises(DeviceLoginRequired):
        p.run(teams_login(HOSTS, refresh_token=refresh))
    p.set_scenario(refresh_dead=False)
    auth, _ = p.run(
        teams_login(HOSTS, refresh_token="M.C5-unknown", device=DeviceCodeLogin(lambda _: None))
    )
    assert auth.skype_id


def test_authz_v2_answers_401_and_work_shape_is_read() -> None:
    p = peer(device_pending=0, authz_shape="work")
    auth, _ = login(p)
    assert auth.skype_id == p.emulator.teams.skype_id
    assert auth.region.chat_service_afd == AFD_BASE
    req = HttpRequest.build("POST", AUTHZ_URL.replace("v1.0", "v2.0"))
    assert p.send(req).status == 401


def test_emulator_refuses_the_dot_default_scope() -> None:
    p = peer()
    form = [
        ("client_id", "8ec6bc83-69c8-4392-8f08-b3c986009232"),
        ("scope", "https://api.spaces.skype.com/.default"),
    ]
    url = "https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode"
    answer = p.send(HttpRequest.build("POST", url, form=form))
    assert answer.status == 400
    assert "AADSTS70011" in answer.json()["error_description"]


# -- chat --------------------------------------------------------------------------------------


@pytest.fixture
def signed_in() -> tuple[Peer, Any]:
    p = peer(device_pending=0)
    auth, _ = login(p)
    p.clear()
    return p, auth.skype_token


@pytest.mark.parametrize("base", [AFD_BASE, MSGAPI_BASE])
def test_conversations_page_through_backward_links_on_both_bases(
    signed_in: tuple[Peer, Any], base: str
) -> None:
    p, token = signed_in
    items, sync = p.run(
        listing(
            token,
            conversations_url(base),
            base=base,
            hosts=HOSTS,
            items_key="conversations",
            params=CONVERSATION_PARAMS,
        )
    )
    assert [c["id"] for c in items] == [GROUP, "8:live:.cid.a11ce", OLD_GROUP, "48:notifications"]
    assert sync is not None
    assert sync.startswith(base)
    assert len(p.sent) == 3  # 2 + 2 + an empty page
    for sent in p.sent:
        assert sent.url.startswith(base)
        assert sent.header("authentication") == f"skypetoken={token.token}"
        assert sent.header("ms-ic3-product") == "tfl"


def test_messages_newest_first_and_send_round_trip(signed_in: tuple[Peer, Any]) -> None:
    p, token = signed_in
    sent = p.run(send_message(token, GROUP, "a <b> & c", base=AFD_BASE, hosts=HOSTS))
    assert sent.id.isdigit()
    assert sent.arrival is not None
    items, _ = p.run(
        listing(
            token,
            messages_url(MSGAPI_BASE, GROUP),
            base=MSGAPI_BASE,
            hosts=HOSTS,
            items_key="messages",
            params=message_params(2),
        )
    )
    summary = [summarise_message(m) for m in items]
    assert summary[0]["id"] == sent.id
    assert summary[0]["content"] == "a &lt;b&gt; &amp; c"
    assert summary[0]["from"] == f"8:{p.emulator.teams.skype_id}"
    assert [s["composetime"] for s in summary] == sorted(
        (s["composetime"] for s in summary), reverse=True
    )
    assert len(summary) == 4


def test_foreign_backward_link_is_refused_before_it_is_sent(signed_in: tuple[Peer, Any]) -> None:
    p, token = signed_in
    p.set_scenario(foreign_sync_state=True)
    url = conversations_url(AFD_BASE)
    with pytest.raises(UntrustedHostError):
        p.run(listing(token, url, base=AFD_BASE, hosts=HOSTS, items_key="conversations"))
    assert len(p.sent) == 1


@pytest.mark.parametrize("size", ["\u00b2", "9" * 5000, "0", "201"])
def test_a_bad_page_size_is_a_400(signed_in: tuple[Peer, Any], size: str) -> None:
    # str.isdigit() holds for superscripts, and int() refuses 5000 digits: neither may crash.
    p, token = signed_in
    req = HttpRequest.build(
        "GET",
        conversations_url(AFD_BASE),
        params=[("pageSize", size)],
        headers=[("Authentication", f"skypetoken={token.token}")],
    )
    answer = p.send(req)
    assert answer.status == 400
    assert "pageSize" in answer.json()["message"]


def test_old_skype_groups_need_the_product_header(signed_in: tuple[Peer, Any]) -> None:
    p, token = signed_in
    req = HttpRequest.build(
        "GET",
        messages_url(AFD_BASE, OLD_GROUP),
        headers=[("Authentication", f"skypetoken={token.token}")],
    )
    assert p.send(req).status == 404
    items, _ = p.run(
        listing(
            token,
            messages_url(AFD_BASE, OLD_GROUP),
            base=AFD_BASE,
            hosts=HOSTS,
            items_key="messages",
        )
    )
    assert len(items) == 1


@pytest.mark.parametrize(("code", "status"), [(429, 429), (803, 403)])
def test_quota_answers_are_rate_limits(signed_in: tuple[Peer, Any], code: int, status: int) -> None:
    p, token = signed_in
    p.set_scenario(chat_quota=1, quota_code=code)
    p.run(send_message(token, GROUP, "one", base=AFD_BASE, hosts=HOSTS))
    with pytest.raises(SkypeRateLimitException) as caught:
        p.run(send_message(token, GROUP, "two", base=AFD_BASE, hosts=HOSTS))
    assert caught.value.status == status
    assert caught.value.retry_after == 60


# -- a Teams session ---------------------------------------------------------------------------


def teams_session(p: Peer) -> Session:
    session = Session(HOSTS, credentials=DeviceCodeLogin(lambda _: None))
    p.run(session.connect())
    p.clear()
    return session


def test_session_connects_lists_and_sends() -> None:
    p = peer(device_pending=0)
    session = teams_session(p)
    assert session.user_id == p.emulator.teams.skype_id
    assert session.state.teams is not None
    assert session.chat_base() == AFD_BASE
    pages = []
    listing_ = conversations_listing(session)
    while (page := p.run(listing_.next_page())) is not None:
        pages.append(page)
    assert [len(x) for x in pages] == [2, 2]
    assert session.state.paging.links  # the latest syncState link is kept
    messages = messages_listing(session, GROUP, count=5)
    assert len(p.run(messages.next_page()) or []) == 2  # the emulator caps pages
    sent = p.run(send(session, GROUP, "hello"))
    assert p.emulator.teams.sent(GROUP)[-1]["clientmessageid"] == sent.clientmessageid


def test_session_re_mints_before_expiry_and_rotates_the_refresh_token() -> None:
    p = peer(device_pending=0, token_lifetime=3600)
    session = teams_session(p)
    assert session.state.teams is not None
    first = session.state.teams.refresh_token
    p.clock.advance(3600 - REFRESH_LEEWAY.total_seconds() + 1)
    p.run(session.skype_token())
    assert p.routes == ["teams_token", "teams_authz"]
    assert session.state.teams.refresh_token not in (None, first)


def test_session_re_mints_once_on_401() -> None:
    p = peer(device_pending=0)
    session = teams_session(p)
    p.emulator.teams._skype.clear()  # the service forgot every Skype token
    p.run(send(session, GROUP, "after a 401"))
    assert p.routes == ["chat_send", "teams_token", "teams_authz", "chat_send"]


def test_concurrent_calls_share_one_re_mint() -> None:
    p = peer(device_pending=0)
    session = teams_session(p)
    p.clock.advance(86400)
    a = AsyncPeer(p)

    async def both() -> None:
        await asyncio.gather(a.run(send(session, GROUP, "x")), a.run(send(session, GROUP, "y")))

    asyncio.run(both())
    assert p.routes.count("teams_token") == 1
    assert p.routes.count("teams_authz") == 1


def test_a_failed_authz_keeps_the_rotated_refresh_token() -> None:
    # The refresh spends the old token; the new one must survive an authz failure after it.
    p = peer(device_pending=0)
    session = teams_session(p)
    session._credentials = None
    p.clock.advance(86400)
    p.on("teams_authz", HttpResponse.build(503, json={"errorCode": 503, "message": ""}))
    with pytest.raises(SkypeApiException):
        p.run(session.skype_token())
    assert session.state.teams is not None
    assert session.state.teams.refresh_token is not None
    assert p.emulator.teams.live_refresh_tokens() == 1
    p.run(session.skype_token())  # the kept one works
    assert p.routes == ["teams_token", "teams_authz", "teams_token", "teams_authz"]


def test_dead_refresh_token_is_forgotten() -> None:
    p = peer(device_pending=0)
    session = teams_session(p)
    session._credentials = None
    p.set_scenario(refresh_dead=True)
    p.clock.advance(86400)
    with pytest.raises(DeviceLoginRequired):
        p.run(session.skype_token())
    assert session.state.teams is not None
    assert session.state.teams.refresh_token is None
    assert b'refresh_token": null' in session.snapshot()


def test_snapshot_round_trip_resumes_without_a_device_code() -> None:
    p = peer(device_pending=0)
    session = teams_session(p)
    data = session.snapshot()
    document = json.loads(data)
    assert document["version"] == 1
    assert set(document["teams"]) == {"refresh_token", "region"}
    assert "device" not in data.decode()
    resumed = Session.from_snapshot(data, now=p.clock(), hosts=HOSTS)
    assert resumed.state == session.state
    p.clock.advance(86400)
    # A day later the Skype token is dead, but the refresh token is not: it loads, without it.
    later = Session.from_snapshot(data, now=p.clock(), hosts=HOSTS)
    assert later.state.skype_token is None
    p.run(later.skype_token())  # re-minted from the saved refresh token, no prompt
    assert p.routes == ["teams_token", "teams_authz"]
    assert later.user_id == session.user_id


def test_legacy_snapshot_written_by_this_code_still_loads() -> None:
    legacy = dump_snapshot(SessionState(user_id="live:fred"))
    assert b"teams" not in legacy
    assert load_snapshot(legacy, now=dt.datetime.now(dt.UTC), hosts=HOSTS).teams is None


def test_snapshot_with_an_untrusted_region_is_refused() -> None:
    p = peer(device_pending=0)
    session = teams_session(p)
    assert session.state.teams is not None
    region = attrs.evolve(session.state.teams.region, chat_service_afd="https://evil.example")
    state = attrs.evolve(session.state, teams=attrs.evolve(session.state.teams, region=region))
    with pytest.raises(SkypeTokenException, match="not trusted"):
        load_snapshot(dump_snapshot(state), now=p.clock(), hosts=HOSTS)


def test_a_teams_session_refuses_legacy_registration() -> None:
    p = peer(device_pending=0)
    session = teams_session(p)
    with pytest.raises(LocalProtocolError, match="no endpoint registration"):
        p.run(session.ensure_registration())
    assert p.sent == []


def test_teams_knobs_parse_from_the_command_line() -> None:
    from skyproto import LocalProtocolError as Refused
    from skyproto.emulator.scenario import parse_scenario, routes_named

    items = ["device_outcome=declined", "device-slow-down=2", "refresh_dead=yes", "quota_code=803"]
    items += ["authz_shape=work", "chat_quota=15", "fault=chat_send:429:1:7"]
    scenario = parse_scenario(items)
    assert (scenario.device_outcome, scenario.device_slow_down) == ("declined", 2)
    assert (scenario.refresh_dead, scenario.quota_code, scenario.chat_quota) == (True, 803, 15)
    assert scenario.faults[0].route == "chat_send"
    assert routes_named("chat") == ("chat_conversations", "chat_messages", "chat_send")
    for bad in ("device_outcome=maybe", "quota_code=500", "authz_shape=guest"):
        with pytest.raises(Refused):
            parse_scenario([bad])
    with pytest.raises(Refused):
        Scenario(device_outcome="maybe")
