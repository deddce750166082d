"""The command line's Teams Free contract, against the emulator.

``skyproto [global options] VERB [arguments] [--state FILE]``: what each verb prints on stdout,
what its last stderr line says when it fails, and which requests reached the server (the
emulator's request log). Most tests run the CLI in this process against an in-process emulator;
the last runs it against ``skyproto emulator --tls`` started as a process, with the profile it
printed as ``--hosts`` and its CA as ``--ca-bundle``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from skyproto.cli import main
from skyproto.emulator import EmulatorServer, Fault

from .cli_support import EMAIL, PASSWORD, Cli, Result, json_lines, saved, teams_login
from .matrix_support import CHATS, GROUP, TRANSPORTS

pytestmark = pytest.mark.integration

PROMPT = re.compile(r"open (https://microsoft\.com/devicelogin) and enter the code ([A-Z]{8})$")
DEVICE_LOGIN = ["teams_devicecode", "teams_token", "teams_token", "teams_authz"]
IDENTITY_ROUTES = {"teams_devicecode", "teams_token", "teams_authz"}
#: The emulator's newest three messages of GROUP, as its chat service lists them.
GROUP_NEWEST = [
    ("8:live:.cid.b0b", "Text", "Same here", "2026-03-05T14:25:00.500Z"),
    ("ME", "RichText/Html", "<p>Count me in</p>", "2026-03-05T14:23:40.000Z"),
    (
        "8:live:.cid.a11ce",
        "RichText/Html",
        "<p>Hiking on <b>Saturday</b>?</p>",
        "2026-03-05T14:23:02.123Z",
    ),
]


def millis(stamp: str) -> str:
    return str(round(dt.datetime.fromisoformat(stamp).timestamp() * 1000))


@pytest.fixture
def cli(cli_with: Any) -> Cli:
    made: Cli = cli_with()
    return made


def rewrite(cli: Cli, change: Any) -> None:
    document = saved(cli)
    change(document)
    cli.state.write_text(json.dumps(document))


def refresh_tokens_sent(server: EmulatorServer) -> list[str]:
    sent = []
    for entry in server.requests:
        if entry.route == "teams_token":
            sent.extend(v for k, v in entry.request.form() if k == "refresh_token")
    return sent


# -- login --teams ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_login_prompts_on_one_line_then_refreshes_exactly_once(cli: Cli, transport: str) -> None:
    first = teams_login(cli, transport)
    skype_id = cli.server.emulator.teams.skype_id
    assert first.out == f"{skype_id}\n"  # the bare id alone
    prompts = [line for line in first.err.splitlines() if "devicelogin" in line or "code" in line]
    assert len(prompts) == 1
    assert PROMPT.search(prompts[0]) is not None
    assert cli.server.routes() == DEVICE_LOGIN
    assert oct(cli.state.stat().st_mode & 0o777) == "0o600"
    old = saved(cli)["teams"]["refresh_token"]

    cli.server.clear_requests()
    again = teams_login(cli, transport)
    assert again.out == f"{skype_id}\n"
    assert "devicelogin" not in again.err
    assert cli.server.routes() == ["teams_token", "teams_authz"]  # one refresh, one re-mint
    assert refresh_tokens_sent(cli.server) == [old]
    rotated = saved(cli)["teams"]["refresh_token"]
    assert rotated != old
    assert cli.server.emulator.teams.live_refresh_tokens() == 1


@pytest.mark.parametrize("refusal", ["invalid_grant", "interaction_required"])
def test_login_with_a_dead_refresh_token_signs_in_again_and_never_resends_it(
    cli_with: Any, refusal: str
) -> None:
    cli = cli_with(refresh_refusal=refusal)
    teams_login(cli)
    rewrite(cli, lambda d: d["teams"].update(refresh_token="M.C5-revoked-long-ago"))
    cli.server.clear_requests()
    result = teams_login(cli)
    assert result.out == f"{cli.server.emulator.teams.skype_id}\n"
    assert len([line for line in result.err.splitlines() if PROMPT.search(line)]) == 1
    assert cli.server.routes() == ["teams_token", *DEVICE_LOGIN]
    assert refresh_tokens_sent(cli.server).count("M.C5-revoked-long-ago") == 1
    assert saved(cli)["teams"]["refresh_token"] != "M.C5-revoked-long-ago"


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [("declined", "declined"), ("expired", "expired")],
)
def test_a_failed_login_exits_1_naming_the_class_and_the_reason(
    cli_with: Any, outcome: str, reason: str
) -> None:
    cli = cli_with(device_outcome=outcome)
    result = cli("login", "--teams")
    assert result.code == 1
    assert result.out == ""
    assert re.fullmatch(r"error: Skype\w*Exception: .+", result.last_error_line)
    assert reason in result.last_error_line.lower()
    assert not cli.state.exists()


# -- resuming --------------------------------------------------------------------------------------


def test_verbs_resume_without_identity_or_authz_requests(cli: Cli) -> None:
    teams_login(cli)
    cli.server.clear_requests()
    for argv in (
        ["conversations"],
        ["messages", GROUP, "--count", "1"],
        ["send", GROUP, "hello"],
        ["conversations", "--state", str(cli.state)],
    ):
        result = cli(*argv)
        assert result.code == 0, result.err
    routes = cli.server.routes()
    assert routes
    assert not IDENTITY_ROUTES & set(routes)


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (["conversations"], "invalid_grant"),
        (["messages", GROUP], "interaction_required"),
        (["send", GROUP, "x"], "invalid_grant"),
    ],
)
def test_a_dead_refresh_token_ends_a_verb_asking_for_login_teams(
    cli_with: Any, argv: list[str], refusal: str
) -> None:
    cli = cli_with(refresh_refusal=refusal)
    teams_login(cli)

    def lapse(document: dict[str, Any]) -> None:
        document["skype_token"]["expiry"] = "2020-01-01T00:00:00+00:00"
        document["teams"]["refresh_token"] = "M.C5-revoked-long-ago"

    rewrite(cli, lapse)
    cli.server.clear_requests()
    result = cli(*argv)
    assert result.code == 1
    assert result.out == ""
    assert result.last_error_line.startswith("error: SkypeAuthException: ")
    assert "skyproto login --teams" in result.last_error_line
    assert f"({refusal})" in result.last_error_line
    assert cli.server.routes() == ["teams_token"]
    # The refused token is dropped from the file: the next run does not send it again.
    cli.server.clear_requests()
    again = cli(*argv)
    assert again.code == 1
    assert "skyproto login --teams" in again.last_error_line
    assert cli.server.routes() == []


@pytest.mark.parametrize("argv", [["login", "--teams"], ["conversations"], ["send", GROUP, "x"]])
def test_an_authz_failure_after_a_refresh_keeps_the_rotated_token_in_the_file(
    cli: Cli, argv: list[str]
) -> None:
    teams_login(cli)
    rewrite(cli, lambda d: d["skype_token"].update(expiry="2020-01-01T00:00:00+00:00"))
    spent = saved(cli)["teams"]["refresh_token"]
    emulator = cli.server.emulator
    emulator.scenario = attrs.evolve(emulator.scenario, faults=(Fault("teams_authz", 503),))
    cli.server.clear_requests()
    failed = cli(*argv)
    assert failed.code == 1
    assert cli.server.routes() == ["teams_token", "teams_authz"]
    # The refresh spent the old token: the file must hold its successor, which still works.
    assert saved(cli)["teams"]["refresh_token"] not in (None, spent)
    cli.server.clear_requests()
    again = cli(*argv)
    assert again.code == 0, again.err
    assert cli.server.routes()[:2] == ["teams_token", "teams_authz"]


# -- conversations, messages, send -----------------------------------------------------------------


def test_conversations_prints_one_id_per_line_in_the_servers_order(cli: Cli) -> None:
    teams_login(cli)
    result = cli("conversations")
    assert result.code == 0, result.err
    assert result.out == "".join(f"{chat}\n" for chat in CHATS)
    assert cli.server.routes().count("chat_conversations") > 1  # paged


def test_messages_prints_json_lines_newest_first_as_the_server_sent_them(cli: Cli) -> None:
    teams_login(cli)
    me = f"8:{cli.server.emulator.teams.skype_id}"
    result = cli("messages", GROUP, "--count", "3", "--state", str(cli.state))
    assert result.code == 0, result.err
    assert json_lines(result.out) == [
        {
            "id": millis(stamp),
            "from": me if sender == "ME" else sender,
            "content": content,
            "messagetype": kind,
            "composetime": stamp,
        }
        for sender, kind, content, stamp in GROUP_NEWEST
    ]


def test_send_prints_the_arrival_time_as_the_server_gave_it(cli: Cli) -> None:
    teams_login(cli)
    cli.server.clear_requests()
    result = cli("send", GROUP, "5 < 6 & <b>bold</b>")
    assert result.code == 0, result.err
    [record] = json_lines(result.out)
    [entry] = cli.server.requests
    assert entry.route == "chat_send"
    body = entry.request.json()
    assert record["clientmessageid"] == body["clientmessageid"]
    answered = cli.server.emulator.teams.sent(GROUP)[-1]
    assert isinstance(record["arrival"], int)  # a JSON number stays a number
    assert str(record["arrival"]) == record["id"] == answered["id"]

    shown = cli("messages", GROUP, "--count", "1")
    [newest] = json_lines(shown.out)
    assert newest["id"] == record["id"]
    assert newest["content"] == "5 &lt; 6 &amp; &lt;b&gt;bold&lt;/b&gt;"  # sent escaped


def test_send_and_messages_work_on_a_legacy_session(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYPROTO_PASSWORD", PASSWORD)
    assert cli("login", "--user", EMAIL).code == 0
    cli.server.clear_requests()
    sent = cli("send", "8:alice.smith", "hello <legacy>")
    assert sent.code == 0, sent.err
    [record] = json_lines(sent.out)
    assert cli.server.routes() == ["send"]
    [entry] = cli.server.requests
    request = entry.request
    registration = saved(cli)["registration"]
    assert (
        request.url
        == f"{registration['messenger']}/users/ME/conversations/8%3Aalice.smith/messages"
    )
    assert request.header("RegistrationToken") is not None
    assert request.header("Authentication") is None
    body = request.json()
    assert {k: body[k] for k in ("content", "messagetype", "contenttype")} == {
        "content": "hello &lt;legacy&gt;",
        "messagetype": "RichText/Html",
        "contenttype": "text",
    }
    assert body["clientmessageid"] == record["clientmessageid"]
    assert isinstance(record["arrival"], int)
    assert str(record["arrival"]) == record["id"]

    shown = cli("messages", "8:alice.smith", "--count", "2")
    assert shown.code == 0, shown.err
    rows = json_lines(shown.out)
    assert rows[0]["id"] == record["id"]
    assert rows[0]["from"] == "8:live:fred"
    assert rows[0]["content"] == "hello &lt;legacy&gt;"
    assert rows[1]["content"] == "Lunch tomorrow?"
    assert set(cli.server.routes()) == {"send", "messages"}


@pytest.mark.parametrize(
    "argv",
    [["conversations"], ["messages", GROUP, "--count", "9"]],
    ids=lambda a: a[0],
)
def test_a_link_to_an_untrusted_host_ends_the_verb_with_exit_1(
    cli_with: Any, argv: list[str]
) -> None:
    cli = cli_with(foreign_sync_state=True)
    teams_login(cli)
    result = cli(*argv)
    assert result.code == 1
    assert result.last_error_line.startswith("error: UntrustedHostError: ")


# -- against the printed profile, over TLS ----------------------------------------------------------


@pytest.mark.parametrize("transport", ["stdlib", "httpx-async"])
def test_the_whole_chain_over_tls_with_the_printed_profile(
    launch: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    monkeypatch.chdir(tmp_path)
    running = launch("--tls", "--scenario", "device_interval=1", "--scenario", "device_pending=0")
    profile = running.profile
    hosts = profile["hosts"]
    for host in ("login.microsoftonline.com", "teams.live.com", "msgapi.teams.live.com"):
        assert hosts[host].startswith("https://127.0.0.1:")
    hosts_file = tmp_path / "emulator.json"
    hosts_file.write_text(json.dumps(profile))
    state = tmp_path / "teams.json"
    options = ["--hosts", str(hosts_file), "--ca-bundle", profile["ca_bundle"]]

    def run(verb: str, *argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        command = [*options, "--transport", transport, verb, *argv, "--state", str(state)]
        code = main(command, stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    login = run("login", "--teams")
    assert login.code == 0, login.err
    assert re.fullmatch(r"live:\.cid\.[0-9a-f]+\n", login.out)
    listed = run("conversations")
    assert listed.code == 0, listed.err
    assert listed.out.splitlines() == CHATS
    sent = run("send", GROUP, "over TLS")
    assert sent.code == 0, sent.err
    [record] = json_lines(sent.out)
    shown = run("messages", GROUP, "--count", "1")
    assert shown.code == 0, shown.err
    [newest] = json_lines(shown.out)
    assert (newest["id"], newest["content"]) == (record["id"], "over TLS")
    assert newest["from"] == "8:" + login.out.strip()
