"""The Teams Free flows over every transport, against the loopback emulator server.

Each test gets a fresh plain-HTTP emulator whose identity host asks for a 1-second polling
interval and approves a device code on the first poll, and one of the four transports. Results
are checked exactly, and so is what reached the server (routes, and every request as sent).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from skyproto import (
    HttpRequest,
    HttpResponse,
    Session,
    SkypeRateLimitException,
    UntrustedHostError,
)
from skyproto.auth.teams import (
    DeviceCodeLogin,
    DeviceLoginRequired,
    DevicePrompt,
    OAuthVersion,
    teams_login,
)
from skyproto.chat import (
    CONVERSATION_PARAMS,
    conversations_listing,
    conversations_url,
    listing,
    messages_listing,
    send,
    summarise_message,
)
from skyproto.emulator import EmulatorServer, Fault, Scenario

from .matrix_support import CHATS, GROUP, Runner, assert_arrived_as_sent, forget_log, teams_knobs

pytestmark = pytest.mark.integration

V1_LOGIN = ["teams_devicecode", "teams_token", "teams_token", "teams_authz"]


@pytest.fixture
def scenario() -> Scenario:
    return teams_knobs()


def session(server: EmulatorServer, prompts: list[DevicePrompt] | None = None) -> Session:
    prompts = [] if prompts is None else prompts
    return Session(server.teams_hosts, credentials=DeviceCodeLogin(prompts.append))


def test_device_code_login_lists_and_sends(runner: Runner, server: EmulatorServer) -> None:
    prompts: list[DevicePrompt] = []
    s = session(server, prompts)
    runner.run(s.connect())
    assert server.routes() == V1_LOGIN
    assert s.user_id == server.emulator.teams.skype_id
    [prompt] = prompts
    assert prompt.verification_url == "https://microsoft.com/devicelogin"
    assert len(prompt.user_code) == 8
    forget_log(runner, server)

    listing_ = conversations_listing(s)
    pages = []
    while (page := runner.run(listing_.next_page())) is not None:
        pages.append([c["id"] for c in page])
    assert pages == [CHATS[:2], CHATS[2:]]

    sent = runner.run(send(s, GROUP, "from the matrix"))
    newest = runner.run(messages_listing(s, GROUP, count=1).next_page())
    assert newest is not None
    assert summarise_message(newest[0])["id"] == sent.id
    assert server.routes() == ["chat_conversations"] * 3 + ["chat_send", "chat_messages"]
    token = s.state.skype_token
    assert token is not None
    for entry in server.requests:
        assert entry.request.header("authentication") == f"skypetoken={token.token}"
    assert_arrived_as_sent(runner, server)


def test_v2_device_code_and_the_msgapi_base(runner: Runner, server: EmulatorServer) -> None:
    hosts = server.teams_hosts
    auth, refresh = runner.run(
        teams_login(hosts, device=DeviceCodeLogin(lambda _: None, OAuthVersion.V2))
    )
    assert refresh is not None
    assert server.routes() == ["teams_devicecode", "teams_token", "teams_authz"]
    base = auth.region.chat_service
    assert base is not None
    items, sync = runner.run(
        listing(
            auth.skype_token,
            conversations_url(base),
            base=base,
            hosts=hosts,
            items_key="conversations",
            params=CONVERSATION_PARAMS,
        )
    )
    assert [c["id"] for c in items] == CHATS
    assert sync is not None
    assert_arrived_as_sent(runner, server)


def test_snapshot_resumes_with_a_rotated_refresh_token(
    runner: Runner, server: EmulatorServer
) -> None:
    s = session(server)
    runner.run(s.connect())
    assert s.state.teams is not None
    first = s.state.teams.refresh_token
    data = s.snapshot()
    # Read two days later, the saved Skype token is dead but the refresh token is not.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    resumed = Session.from_snapshot(data, now=later, hosts=s.hosts)
    assert resumed.state.skype_token is None
    forget_log(runner, server)
    runner.run(resumed.connect())
    assert server.routes() == ["teams_token", "teams_authz"]
    assert resumed.state.teams is not None
    assert resumed.state.teams.refresh_token not in (None, first)
    assert json.loads(resumed.snapshot())["teams"]["refresh_token"] == (
        resumed.state.teams.refresh_token
    )
    assert_arrived_as_sent(runner, server)


def test_401_re_mints_once_and_quota_is_a_rate_limit(
    runner: Runner, server: EmulatorServer
) -> None:
    s = session(server)
    runner.run(s.connect())
    forget_log(runner, server)
    server.scenario = teams_knobs(faults=(Fault("chat_send", 401),))
    runner.run(send(s, GROUP, "after a 401"))
    assert server.routes() == ["chat_send", "teams_token", "teams_authz", "chat_send"]
    server.scenario = teams_knobs(chat_quota=1)
    runner.run(send(s, GROUP, "one"))
    with pytest.raises(SkypeRateLimitException) as caught:
        runner.run(send(s, GROUP, "two"))
    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert 1 <= caught.value.retry_after <= 60


def test_dead_refresh_token_needs_a_new_device_code(runner: Runner, server: EmulatorServer) -> None:
    s = session(server)
    runner.run(s.connect())
    s._credentials = None
    s.state = attrs.evolve(s.state, skype_token=None)
    server.scenario = teams_knobs(refresh_dead=True)
    forget_log(runner, server)
    with pytest.raises(DeviceLoginRequired, match="new device-code login"):
        runner.run(s.connect())
    assert s.state.teams is not None
    assert s.state.teams.refresh_token is None
    assert server.routes() == ["teams_token"]


def test_untrusted_region_base_is_refused_before_anything_is_sent(
    runner: Runner, server: EmulatorServer
) -> None:
    def foreign_region(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if "/authz/" not in request.url:
            return response
        body = response.json()
        body["regionGtms"]["chatServiceAfd"] = "https://evil.example/api/chatsvc/consumer"
        return HttpResponse.build(response.status, json=body, url=response.url)

    runner.tamper = foreign_region
    with pytest.raises(UntrustedHostError):
        runner.run(session(server).connect())
    assert not any("evil.example" in url for url in runner.sent_urls())


def test_the_reference_example_runs(tmp_path: Any) -> None:
    """docs/teams.md's example runs as written, against its own emulator."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "teams.md").read_text("utf-8")
    [code] = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "To sign in, open https://microsoft.com/devicelogin" in done.stdout
    assert "19:uni01_4f2a9c@thread.v2" in done.stdout


# -- the command line --------------------------------------------------------------------------


def test_fixture_and_printed_profile_serve_the_teams_hosts(
    teams_hosts: Any, skype_emulator: EmulatorServer
) -> None:
    assert teams_hosts.profile == "teams"
    printed = json.loads(skype_emulator.profile_json())["hosts"]
    for host in ("login.microsoftonline.com", "teams.live.com", "msgapi.teams.live.com"):
        assert printed[host] == teams_hosts.url(f"https://{host}")
        assert printed[host].startswith("http://127.0.0.1:")
    # The printed map, read back as a Teams profile, trusts exactly what it maps (and the rest
    # of the real consumer hosts).
    from skyproto import Hosts

    reread = Hosts.from_json(skype_emulator.profile_json(), profile="teams")
    assert reread.is_trusted(printed["teams.live.com"] + "/api/chatsvc/consumer/v1/users/ME")
    assert not reread.is_trusted("https://teams.live.com/api/chatsvc/consumer")
