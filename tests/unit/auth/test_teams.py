"""The Teams Free login chain (docs/teams.md §A), driven with canned responses.

Covered: the v1 and v2 device-code requests (exact form fields), the prompt handed out through a
Deliver effect, polling at the given interval (numbers or strings) with ``slow_down`` adding 5 s,
the expiry bound measured with Now, each terminal polling error and its advice, the refresh for
the skypetoken scope after a v1 code, refresh-token rotation, ``invalid_grant`` /
``interaction_required`` as DeviceLoginRequired, both authz answer shapes and its refusals,
region bases checked against the trusted hosts, and secrets kept out of messages and reprs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import pytest

from skyproto import (
    Deliver,
    Hosts,
    HttpRequest,
    HttpResponse,
    Now,
    RemoteProtocolError,
    SkypeAuthException,
    SkypeRateLimitException,
    Sleep,
    Stepper,
    UntrustedHostError,
)
from skyproto._flow import Flow
from skyproto.auth.teams import (
    AUTHZ_URL,
    CONSUMER_TENANT,
    DEVICE_CODE_GRANT,
    SKYPETOKEN_SCOPE,
    TEAMS_CLIENT_ID,
    V1_RESOURCE,
    DeviceCodeLogin,
    DeviceLoginRequired,
    DevicePrompt,
    OAuthVersion,
    authz,
    device_code_login,
    refresh_access_token,
    teams_login,
)

from . import NOW, assert_clean

HOSTS = Hosts.teams()
DEVICE_URL = "https://login.microsoftonline.com/common/oauth2/devicecode"
POLL_URL = "https://login.microsoftonline.com/common/oauth2/token"
V2_DEVICE_URL = "https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode"
V2_POLL_URL = "https://login.microsoftonline.com/consumers/oauth2/v2.0/token"
REFRESH_URL = f"https://login.microsoftonline.com/{CONSUMER_TENANT}/oauth2/v2.0/token"
DEVICE_SECRET = "DEVICE-CODE-SECRET"
ACCESS = "ACCESS-TOKEN-SECRET"
REFRESH = "REFRESH-TOKEN-SECRET"
ROTATED = "ROTATED-REFRESH-SECRET"


def jwt(claims: dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"


SKYPE_TOKEN = jwt({"skypeid": "live:.cid.abc", "secret": "SKYPE-TOKEN-SECRET"})


class Run:
    """Drive a flow: requests from ``responses``, Now from a fake clock that Sleep moves."""

    def __init__(self, responses: Sequence[HttpResponse], *, clock: dt.datetime = NOW) -> None:
        self.answers = list(responses)
        self.clock = clock
        self.sent: list[HttpRequest] = []
        self.sleeps: list[float] = []
        self.prompts: list[DevicePrompt] = []

    def __call__(self, flow: Flow[Any]) -> Any:
        step = Stepper(flow)
        while not step.done:
            effect = step.pending
            if isinstance(effect, Now):
                step.send(self.clock)
            elif isinstance(effect, Sleep):
                self.sleeps.append(effect.seconds)
                self.clock += dt.timedelta(seconds=effect.seconds)
                step.send(None)
            elif isinstance(effect, Deliver):
                effect.handler(effect.event)
                step.send(None)
            else:
                assert isinstance(effect, HttpRequest)
                self.sent.append(effect)
                assert self.answers, f"unexpected request {effect.method} {effect.url}"
                step.receive(self.answers.pop(0))
        assert not self.answers, f"{len(self.answers)} response(s) left unused"
        return step.result


def ok(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse.build(status, json=data)


def oauth_error(code: str, status: int = 400) -> HttpResponse:
    # Rough like the real service: trace ids, an empty description, numbers as strings.
    return ok(
        {"error": code, "error_description": "", "error_codes": ["70016"], "trace_id": "t-1"},
        status,
    )


def device_answer(**changes: Any) -> HttpResponse:
    data: dict[str, Any] = {
        "device_code": DEVICE_SECRET,
        "user_code": "ABCD-EFGH",
        "verification_url": "https://microsoft.com/devicelogin",
        "expires_in": "900",
        "interval": "5",
        "message": "To sign in, use a web browser to open the page ...",
    }
    data.update(changes)
    return ok({k: v for k, v in data.items() if v is not None})


def tokens(access: str = ACCESS, refresh: str | None = REFRESH, **extra: Any) -> HttpResponse:
    data: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": access,
        "expires_in": "3600",
        "ext_expires_in": 3600,
        "scope": SKYPETOKEN_SCOPE,
        **extra,
    }
    if refresh is not None:
        data["refresh_token"] = refresh
    return ok(data)


def personal_authz(**region: str) -> HttpResponse:
    return ok(
        {
            "skypeToken": {
                "skypetoken": SKYPE_TOKEN,
                "expiresIn": 86398,
                "skypeid": "live:.cid.abc",
            },
            "regionGtms": region
            or {"chatService": "https://msgapi.teams.live.com", "ams": "https://x.example"},
            "region": "",
            "licenseDetails": {"isFreemium": True},
        }
    )


def login_v1(run: Run) -> Any:
    prompts = run.prompts
    return run(device_code_login(HOSTS, DeviceCodeLogin(prompts.append)))


# -- device code -------------------------------------------------------------------------------


def test_v1_device_code_polls_then_refreshes_for_the_skypetoken_scope() -> None:
    run = Run(
        [
            device_answer(),
            oauth_error("authorization_pending"),
            tokens(access="V1-ACCESS", refresh="V1-REFRESH"),
            tokens(refresh=ROTATED),
        ]
    )
    result = login_v1(run)
    assert result.access_token == ACCESS
    assert result.refresh_token == ROTATED
    assert [r.url for r in run.sent] == [DEVICE_URL, POLL_URL, POLL_URL, REFRESH_URL]
    assert run.sent[0].form() == [("client_id", TEAMS_CLIENT_ID), ("resource", V1_RESOURCE)]
    assert run.sent[1].form() == [
        ("client_id", TEAMS_CLIENT_ID),
        ("grant_type", DEVICE_CODE_GRANT),
        ("code", DEVICE_SECRET),
    ]
    assert run.sent[3].form() == [
        ("client_id", TEAMS_CLIENT_ID),
        ("grant_type", "refresh_token"),
        ("refresh_token", "V1-REFRESH"),
        ("scope", SKYPETOKEN_SCOPE),
    ]
    assert run.sleeps == [5, 5]
    [prompt] = run.prompts
    assert prompt.user_code == "ABCD-EFGH"
    assert prompt.verification_url == "https://microsoft.com/devicelogin"
    assert prompt.expires_at == NOW + dt.timedelta(seconds=900)
    assert "ABCD-EFGH" in str(prompt)
    assert "devicelogin" in str(prompt)
    assert DEVICE_SECRET not in repr(prompt)


def test_v2_device_code_uses_scope_and_device_code_names_and_needs_no_refresh() -> None:
    run = Run(
        [
            device_answer(verification_url=None, verification_uri="https://login.live.com/x"),
            tokens(),
        ]
    )
    flow = device_code_login(HOSTS, DeviceCodeLogin(run.prompts.append, OAuthVersion.V2))
    assert run(flow).refresh_token == REFRESH
    assert [r.url for r in run.sent] == [V2_DEVICE_URL, V2_POLL_URL]
    assert ("scope", SKYPETOKEN_SCOPE) in run.sent[0].form()
    assert ("device_code", DEVICE_SECRET) in run.sent[1].form()
    assert run.prompts[0].verification_url == "https://login.live.com/x"


@pytest.mark.parametrize("interval", [3, "3", 3.0])
def test_slow_down_adds_five_seconds_to_numeric_or_string_intervals(interval: Any) -> None:
    run = Run(
        [
            device_answer(interval=interval),
            oauth_error("slow_down"),
            oauth_error("authorization_pending"),
            oauth_error("slow_down"),
            tokens(),
            tokens(),
        ]
    )
    login_v1(run)
    assert run.sleeps == [3, 8, 8, 13]


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        ("expired_token", "expired"),
        ("code_expired", "expired"),
        ("authorization_declined", "declined"),
        ("access_denied", "declined"),
        ("invalid_grant", "refused"),
    ],
)
def test_terminal_poll_errors_say_what_to_do(error: str, advice: str) -> None:
    run = Run([device_answer(), oauth_error(error)])
    with pytest.raises(SkypeAuthException, match=advice) as caught:
        login_v1(run)
    assert "start the login again" in str(caught.value)
    assert_clean(caught.value, DEVICE_SECRET)


def test_waiting_is_bounded_by_expires_in() -> None:
    run = Run(
        [device_answer(expires_in=12, interval=5), *[oauth_error("authorization_pending")] * 2]
    )
    with pytest.raises(SkypeAuthException, match="expired after 12 s"):
        login_v1(run)
    assert len(run.sent) == 3  # the code, then polls at 5 s and 10 s; 15 s is past the bound


def test_a_clock_that_stands_still_cannot_make_polling_spin() -> None:
    class Frozen(Run):
        def __call__(self, flow: Flow[Any]) -> Any:
            step = Stepper(flow)
            polls = 0
            while not step.done:
                effect = step.pending
                if isinstance(effect, Now | Sleep | Deliver):
                    if isinstance(effect, Deliver):
                        effect.handler(effect.event)
                    step.send(self.clock if isinstance(effect, Now) else None)
                else:
                    polls += 1
                    first = polls == 1
                    step.receive(device_answer(expires_in=4) if first else oauth_error("slow_down"))
            return polls

    with pytest.raises(SkypeAuthException, match="expired"):
        Frozen([])(device_code_login(HOSTS, DeviceCodeLogin(lambda _: None)))


def test_rate_limited_poll_is_a_rate_limit_error() -> None:
    limited = HttpResponse.build(429, headers=[("Retry-After", "7")], content=b"")
    run = Run([device_answer(), limited])
    with pytest.raises(SkypeRateLimitException) as caught:
        login_v1(run)
    assert caught.value.retry_after == 7


@pytest.mark.parametrize(
    "answer",
    [
        device_answer(device_code=""),
        device_answer(user_code=None),
        device_answer(interval="soon"),
        device_answer(expires_in=-1),
        device_answer(expires_in="0"),
        HttpResponse.build(200, content=b"<html>", content_type="text/html"),
    ],
)
def test_malformed_device_code_answers(answer: HttpResponse) -> None:
    with pytest.raises(RemoteProtocolError):
        login_v1(Run([answer]))


def test_device_code_refusal_names_the_error() -> None:
    with pytest.raises(SkypeAuthException, match="unauthorized_client"):
        login_v1(Run([oauth_error("unauthorized_client")]))


def test_device_code_refusal_keeps_a_long_error_short() -> None:
    # The error code is the service's text: it is shortened, as on every other refusal.
    with pytest.raises(SkypeAuthException) as caught:
        login_v1(Run([oauth_error("x" * 10_000)]))
    assert len(caught.value.message) < 200


# -- refresh -----------------------------------------------------------------------------------


def test_refresh_keeps_the_old_token_when_none_is_returned() -> None:
    run = Run([tokens(refresh=None)])
    result = run(refresh_access_token(REFRESH, HOSTS))
    assert result.refresh_token == REFRESH
    assert result.expiry == NOW.replace(microsecond=0) + dt.timedelta(seconds=3600)
    assert REFRESH not in repr(result)
    assert ACCESS not in repr(result)


@pytest.mark.parametrize("error", ["invalid_grant", "interaction_required"])
def test_dead_refresh_token_asks_for_a_device_code_login(error: str) -> None:
    with pytest.raises(DeviceLoginRequired, match="new device-code login") as caught:
        Run([oauth_error(error)])(refresh_access_token(REFRESH, HOSTS))
    assert_clean(caught.value, REFRESH)


def test_other_refresh_errors_are_auth_errors_but_keep_the_token() -> None:
    with pytest.raises(SkypeAuthException) as caught:
        Run([oauth_error("temporarily_unavailable", 503)])(refresh_access_token(REFRESH, HOSTS))
    assert not isinstance(caught.value, DeviceLoginRequired)


# -- authz -------------------------------------------------------------------------------------


def test_authz_personal_shape_and_request() -> None:
    run = Run([personal_authz()])
    auth = run(authz(ACCESS, HOSTS))
    assert auth.skype_id == "live:.cid.abc"
    assert auth.skype_token.token == SKYPE_TOKEN
    assert auth.skype_token.expiry == NOW.replace(microsecond=0) + dt.timedelta(seconds=86398)
    assert auth.region.chat_service == "https://msgapi.teams.live.com"
    assert auth.region.chat_service_afd is None
    [sent] = run.sent
    assert (sent.method, sent.url, sent.body) == ("POST", AUTHZ_URL, b"")
    assert sent.header("authorization") == f"Bearer {ACCESS}"
    assert SKYPE_TOKEN not in repr(auth)


def test_authz_work_shape_takes_the_id_from_the_token() -> None:
    answer = ok({"tokens": {"skypeToken": SKYPE_TOKEN, "expiresIn": "86400"}, "region": "amer"})
    auth = Run([answer])(authz(ACCESS, HOSTS))
    assert auth.skype_id == "live:.cid.abc"


def test_authz_untrusted_region_base_is_refused() -> None:
    with pytest.raises(UntrustedHostError):
        Run([personal_authz(chatService="https://msgapi.evil.example")])(authz(ACCESS, HOSTS))


@pytest.mark.parametrize(
    "answer",
    [
        ok({"status": {"code": 40120, "text": "Authentication failed."}}, 401),
        ok({"errorCode": "UserLicenseNotPresentForbidden", "message": "no"}, 403),
        ok({"status": {"code": 40120, "text": "Authentication failed."}}),
        HttpResponse.build(401, content=b""),
    ],
)
def test_authz_refusals(answer: HttpResponse) -> None:
    with pytest.raises(SkypeAuthException, match="authz refused") as caught:
        Run([answer])(authz(ACCESS, HOSTS))
    assert_clean(caught.value, ACCESS)


@pytest.mark.parametrize(
    "answer",
    [
        ok({"skypeToken": {"skypetoken": "", "expiresIn": 1}}),
        ok({"skypeToken": {"skypetoken": "opaque", "expiresIn": 1}}),  # no id anywhere
        ok({"skypeToken": {"skypetoken": SKYPE_TOKEN, "expiresIn": "a day"}}),
        ok({"skypeToken": {"skypetoken": SKYPE_TOKEN}, "regionGtms": []}),
        ok([]),
    ],
)
def test_authz_malformed(answer: HttpResponse) -> None:
    with pytest.raises(RemoteProtocolError):
        Run([answer])(authz(ACCESS, HOSTS))


# -- the composed chain ------------------------------------------------------------------------


def test_teams_login_refreshes_when_it_can() -> None:
    run = Run([tokens(refresh=ROTATED), personal_authz()])
    auth, refresh = run(teams_login(HOSTS, refresh_token=REFRESH))
    assert (auth.skype_id, refresh) == ("live:.cid.abc", ROTATED)


def _refresh_dies_then_device_code() -> Run:
    """Answers for a login whose refresh token is refused, then that signs in by device code."""
    return Run(
        [
            oauth_error("invalid_grant"),
            device_answer(),
            tokens(),
            tokens(refresh=ROTATED),
            personal_authz(),
        ]
    )


def test_teams_login_falls_back_to_device_code_on_a_dead_refresh_token() -> None:
    run = _refresh_dies_then_device_code()
    _auth, refresh = run(
        teams_login(HOSTS, refresh_token=REFRESH, device=DeviceCodeLogin(run.prompts.append))
    )
    assert refresh == ROTATED
    assert len(run.prompts) == 1


def test_teams_login_without_refresh_token_or_device_says_so() -> None:
    with pytest.raises(DeviceLoginRequired, match="device-code login"):
        Run([])(teams_login(HOSTS))


def test_tokens_go_only_to_their_hosts() -> None:
    run = _refresh_dies_then_device_code()
    run(teams_login(HOSTS, refresh_token=REFRESH, device=DeviceCodeLogin(lambda _: None)))
    for sent in run.sent:
        carries = any(s.encode() in sent.body for s in (REFRESH, DEVICE_SECRET, ROTATED))
        if carries:
            assert sent.url.startswith("https://login.microsoftonline.com/")
        if sent.header("authorization"):
            assert sent.url == AUTHZ_URL


# -- the hosts profile -------------------------------------------------------------------------


def test_teams_profile_trusts_exactly_the_consumer_hosts() -> None:
    hosts = Hosts.teams()
    for url in (
        "https://login.microsoftonline.com/common/oauth2/token",
        "https://teams.live.com/api/chatsvc/consumer/v1/users/ME/conversations",
        "https://msgapi.teams.live.com/v1/users/ME/conversations",
        "https://go.trouter.skype.com/v4/a",
        "https://go.trouter.teams.microsoft.com/v4/a",
        "https://trouter2-eu.trouter.teams.microsoft.com/socket.io/1/",
        "https://edge.skype.com/registrar/prod/v2/registrations",
    ):
        assert hosts.is_trusted(url), url
    for url in (
        "http://msgapi.teams.live.com/v1",  # not HTTPS
        "https://client-s.gateway.messenger.live.com/v1",  # legacy, not this profile
        "https://evil.live.com/v1",
        "https://trouter.teams.microsoft.com.evil.example/",
    ):
        assert not hosts.is_trusted(url), url
    with pytest.raises(UntrustedHostError):
        hosts.require_trusted("https://evil.example/v1", "a backwardLink")


def test_teams_profile_from_a_host_map(tmp_path: Any) -> None:
    path = tmp_path / "hosts.json"
    path.write_text(
        json.dumps(
            {
                "login.microsoftonline.com": "http://127.0.0.1:9/login.microsoftonline.com",
                "trouter2-eu.trouter.teams.microsoft.com": "http://127.0.0.1:9/tr",
            }
        )
    )
    hosts = Hosts.from_file(path, profile="teams")
    assert hosts.profile == "teams"
    assert hosts.url(POLL_URL) == "http://127.0.0.1:9/login.microsoftonline.com/common/oauth2/token"
    assert hosts.is_trusted("http://127.0.0.1:9/tr/socket.io/1/")
    assert hosts.is_trusted("https://msgapi.teams.live.com/v1")  # an untouched default
    assert not hosts.is_trusted("https://login.microsoftonline.com/x")  # overridden
    assert not hosts.is_trusted("http://127.0.0.1:9/other")


def test_verbose_traces_hide_the_device_code_and_tokens() -> None:
    from skyproto._http import describe

    run = Run([device_answer(), tokens(), tokens(refresh=ROTATED), personal_authz()])
    run(teams_login(HOSTS, device=DeviceCodeLogin(lambda _: None)))
    shown = "\n".join(describe(r) for r in run.sent)
    shown += describe(device_answer()) + describe(tokens(id_token="ID-TOKEN-SECRET"))
    for secret in (DEVICE_SECRET, ACCESS, REFRESH, ROTATED, "ID-TOKEN-SECRET"):
        assert secret not in shown
    assert "ABCD-EFGH" in shown  # the user code is what the user types: shown
