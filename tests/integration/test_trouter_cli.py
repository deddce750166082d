"""``skyproto events`` on a Teams Free session: Trouter, end to end (docs/trouter.md).

The emulator's ``trouter_script`` knob makes its Trouter peer push, in order, a chat message,
typing, presence and a call, the same message again, a message the chat service holds but
Trouter never pushes, a dropped socket, and a last message. The verb must print each event
once (the repeat and what the catch-up after the drop finds again are not printed twice), the
missed message once (found by the catch-up), answer every push and acknowledge every server
event. Most tests run the CLI in this process against an in-process emulator; the TLS tests run
``skyproto emulator --tls`` as a process, as a user would.
"""

from __future__ import annotations

import io
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from skyproto import Hosts
from skyproto.cli import main
from skyproto.emulator import EmulatorServer
from skyproto.emulator.scenario import TROUTER_STEPS, Scenario
from skyproto.emulator.trouter import SOCKET_HOST

from .cli_support import Result, interrupt, json_lines, python_m, saved, teams_login
from .matrix_support import TRANSPORTS

pytestmark = pytest.mark.integration


#: Pushes of every kind, a repeat, a gap with a missed message, one more message (which the
#: catch-up after the gap may find before it is pushed), then presence again.
SCRIPT = "message,typing,presence,call,again,missed,drop,message,presence"
#: What ``events`` prints for SCRIPT: one line per event, in order.
EXPECTED = [
    ("NewMessageEvent", "scripted 1"),
    ("TypingEvent", None),
    ("UnknownEvent", "TeamsUnifiedPresenceService"),
    ("UnknownEvent", "NGCallManagerWin"),
    ("NewMessageEvent", "scripted 6"),  # missed by Trouter, found by the catch-up
    ("NewMessageEvent", "scripted 8"),
    ("UnknownEvent", "TeamsUnifiedPresenceService"),
]
TROUTER_HOSTS = ("go.trouter.skype.com", "go.trouter.teams.microsoft.com", "edge.skype.com")
PRESENCE = {
    "presence": [
        {
            "mri": "8:live:.cid.b0b",
            "etag": "1",
            "presence": {"availability": "Available", "activity": "Available"},
        }
    ]
}
CALL = {"callerId": "8:live:.cid.b0b", "callId": "call-1"}


def script(*steps: str) -> tuple[str, ...]:
    return tuple(",".join(steps).split(",")) if steps else tuple(SCRIPT.split(","))


def check_records(out: str) -> list[dict[str, Any]]:
    """The printed records match EXPECTED, one line each, with the decoded payloads."""
    records = json_lines(out)
    shown = [
        (r["type"], r.get("content") if r["type"] != "UnknownEvent" else r["resource_type"])
        for r in records
    ]
    assert shown == EXPECTED
    assert records[2]["raw"] == PRESENCE
    assert records[3]["raw"] == CALL  # after base64 and the ``gp`` unwrapping
    assert records[6]["raw"] == PRESENCE
    message_ids = [r["message_id"] for r in records if r["type"] == "NewMessageEvent"]
    assert len(message_ids) == len(set(message_ids))
    return records


def settled(server: EmulatorServer) -> list[Any]:
    """The peer's log once the client's socket is closed (the server reads the client's last
    frames in its own thread)."""
    deadline = time.monotonic() + 10
    while True:
        with server.lock:
            log = list(server.trouter.log)
        if (log and log[-1].what == "closed") or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def check_peer(server: EmulatorServer, endpoint: str) -> None:
    """Every push answered, every server event acknowledged, one endpoint id throughout."""
    log = settled(server)
    pushes = [e.detail[0] for e in log if e.what == "push"]
    answered = [e.detail[0] for e in log if e.what == "response"]
    assert pushes
    assert sorted(pushes) == sorted(answered)
    connects = sum(1 for e in log if e.what == "connect")
    losses = sum(1 for e in log if e.what == "loss")
    # Each connection's ``5:1+::trouter.connected`` (and each loss report) got its ``6:::N+[]``.
    assert sum(1 for e in log if e.what == "ack") == connects + losses
    assert connects >= 2  # the scripted drop reconnected
    assert {e.detail for e in log if e.what == "register"} == {endpoint}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_push_is_one_line_once_on_each_transport(cli_with: Any, transport: str) -> None:
    cli = cli_with(trouter_script=script())
    teams_login(cli, transport)
    result = cli("events", "--count", "7", "--timeout", "60", transport=transport)
    assert result.code == 0, result.err
    check_records(result.out)
    endpoint = saved(cli)["teams"]["trouter_endpoint"]
    check_peer(cli.server, endpoint)
    assert cli.server.errors == []


def test_gzip_bodies_and_a_message_loss_report(cli_with: Any) -> None:
    cli = cli_with(trouter_script=script("call,loss,message"), trouter_gzip=True)
    teams_login(cli)
    result = cli("events", "--count", "2", "--timeout", "60")
    assert result.code == 0, result.err
    records = json_lines(result.out)
    assert records[0]["raw"] == CALL  # base64, gzip, then ``gp``
    assert (records[1]["type"], records[1]["content"]) == ("NewMessageEvent", "scripted 3")
    assert any(e.what == "loss" for e in cli.server.trouter.log)
    check_acks = [e for e in settled(cli.server) if e.what in ("ack", "loss", "connect")]
    assert sum(e.what == "ack" for e in check_acks) == sum(e.what != "ack" for e in check_acks)


def test_a_timeout_with_fewer_events_exits_0(cli_with: Any) -> None:
    cli = cli_with(trouter_script=script("message"))
    teams_login(cli)
    started = time.monotonic()
    result = cli("events", "--count", "5", "--timeout", "2")
    assert result.code == 0, result.err
    assert [r["content"] for r in json_lines(result.out)] == ["scripted 1"]
    assert time.monotonic() - started < 30


def test_the_endpoint_id_is_kept_and_old_snapshots_still_load(cli_with: Any) -> None:
    cli = cli_with(trouter_script=script("message,drop,message"))
    teams_login(cli)
    assert "trouter_endpoint" not in saved(cli)["teams"]  # as a snapshot written before
    first = cli("events", "--count", "1", "--timeout", "30")
    assert first.code == 0, first.err
    endpoint = saved(cli)["teams"]["trouter_endpoint"]
    second = cli("events", "--count", "1", "--timeout", "30")
    assert second.code == 0, second.err
    assert [r["content"] for r in json_lines(second.out)] == ["scripted 3"]
    assert saved(cli)["teams"]["trouter_endpoint"] == endpoint
    registered = {e.detail for e in cli.server.trouter.log if e.what == "register"}
    assert registered == {endpoint}  # reconnections and the later run reuse it
    allocated = [
        dict(entry.request.query()).get("epid")
        for entry in cli.server.requests
        if entry.request.path.endswith("/v4/a")
    ]
    assert len(allocated) >= 3
    assert set(allocated) == {endpoint}


def test_a_401_re_mints_the_skype_token_through_the_session(cli_with: Any) -> None:
    cli = cli_with(trouter_script=script("message"))
    teams_login(cli)
    old = saved(cli)["skype_token"]["token"]
    cli.server.trouter.revoke(old)
    cli.server.clear_requests()
    result = cli("events", "--count", "1", "--timeout", "30")
    assert result.code == 0, result.err
    assert [r["content"] for r in json_lines(result.out)] == ["scripted 1"]
    routes = cli.server.routes()
    assert routes.count("teams_authz") == 1  # one forced re-mint
    document = saved(cli)
    assert document["skype_token"]["token"] != old
    registered = {e.detail for e in cli.server.trouter.log if e.what == "register"}
    assert registered == {document["teams"]["trouter_endpoint"]}  # kept through the re-mint


@pytest.mark.parametrize("where", ["socketio", "surl"])
def test_a_foreign_socket_or_push_url_ends_with_exit_1_before_anything_is_sent(
    cli_with: Any, where: str
) -> None:
    cli = cli_with(trouter_foreign=where, trouter_script=script("message"))
    teams_login(cli)
    cli.server.clear_requests()
    result = cli("events", "--count", "1", "--timeout", "30")
    assert result.code == 1
    assert result.out == ""
    assert result.last_error_line.startswith("error: UntrustedHostError: ")
    paths = [entry.request.path for entry in cli.server.requests]
    assert [p for p in paths if p.endswith("/v4/a")] == [paths[-1]]  # the allocation, only
    assert not any("socket.io" in p or "registrar" in p for p in paths)
    assert not any("evil.example" in entry.request.url for entry in cli.server.requests)
    assert not any(e.what == "connect" for e in cli.server.trouter.log)


def test_verbose_redacts_every_token(cli_with: Any) -> None:
    cli = cli_with(trouter_script=script())
    teams_login(cli)
    result = cli("events", "--count", "7", "--timeout", "60", verbose=True)
    assert result.code == 0, result.err
    check_records(result.out)
    assert "socket.io/1/" in result.err  # traced, redacted
    assert "/v4/a" in result.err
    document = saved(cli)
    secrets = {document["skype_token"]["token"], document["teams"]["refresh_token"]}
    peer = cli.server.trouter
    sessions = list(peer._sessions.values())
    assert sessions
    secrets |= {session.sig for session in sessions}
    secrets |= {session.socket_id for session in sessions if session.socket_id}
    for secret in secrets:
        assert secret not in result.err
    assert "<redacted>:180:180:websocket" in result.err


def test_ctrl_c_exits_0(cli_with: Any) -> None:
    cli = cli_with()
    teams_login(cli)
    process = python_m("--hosts", str(cli.hosts_file), "events", cwd=cli.directory)
    watchdog = threading.Timer(45, process.kill)
    watchdog.start()
    try:
        deadline = time.monotonic() + 30
        while not any(e.what == "activity" for e in list(cli.server.trouter.log)):
            assert time.monotonic() < deadline, "the client never connected"
            time.sleep(0.05)
        code, out, err = interrupt(process)
    finally:
        watchdog.cancel()
    assert code == 0, err
    assert out == ""
    assert saved(cli)["teams"]["trouter_endpoint"]


# -- the profile and the emulator's help ----------------------------------------------------------


def test_the_profile_lists_the_trouter_hosts_and_the_teams_profile_takes_them(
    skype_emulator_factory: Any,
) -> None:
    server = skype_emulator_factory(Scenario())
    hosts = server.profile()["hosts"]
    for host in (*TROUTER_HOSTS, SOCKET_HOST):
        assert host in hosts
    assert SOCKET_HOST.endswith(".trouter.teams.microsoft.com")
    teams = Hosts.from_json(server.profile_json(), profile="teams")
    for host in (*TROUTER_HOSTS, SOCKET_HOST):
        assert teams.is_trusted(hosts[host] + "/x")


def test_emulator_help_lists_the_teams_and_trouter_keys() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["emulator", "--help"], stdout=out, stderr=err) == 0
    text = " ".join(out.getvalue().split())
    teams_keys = [
        "device_interval",
        "device_slow_down",
        "device_pending",
        "device_outcome",
        "refresh_dead",
        "refresh_refusal",
        "authz_shape",
        "chat_page_size",
        "chat_quota",
        "quota_code",
    ]
    for key in [*teams_keys, "trouter_script", "trouter_foreign", "trouter_gzip"]:
        assert key in text
    for step in TROUTER_STEPS:
        assert step in text


# -- against ``skyproto emulator`` as a process -------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "tls"),
    [("stdlib", True), ("httpx-async", True), ("requests", False)],
    ids=["stdlib-tls", "httpx-async-tls", "requests-plain"],
)
def test_events_against_the_emulator_process(
    launch: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str, tls: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    knobs = ["--scenario", "device_pending=0", "--scenario", f"trouter_script={SCRIPT}"]
    running = launch(*(["--tls"] if tls else []), *knobs)
    profile = running.profile
    for host in (*TROUTER_HOSTS, SOCKET_HOST):
        assert profile["hosts"][host].startswith("https://" if tls else "http://")
    hosts_file = tmp_path / "emulator.json"
    hosts_file.write_text(json.dumps(profile))
    Hosts.from_file(str(hosts_file), profile="teams")  # every key known
    state = tmp_path / "teams.json"
    options = ["--hosts", str(hosts_file), "--transport", transport]
    if tls:
        options += ["--ca-bundle", profile["ca_bundle"]]

    def run(verb: str, *argv: str, verbose: bool = False) -> Result:
        out, err = io.StringIO(), io.StringIO()
        command = [*options, *(["--verbose"] if verbose else []), verb, *argv]
        code = main([*command, "--state", str(state)], stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    login = run("login", "--teams")
    assert login.code == 0, login.err
    result = run("events", "--count", "7", "--timeout", "60", verbose=True)
    assert result.code == 0, result.err
    check_records(result.out)
    document = json.loads(state.read_text())
    for secret in (document["skype_token"]["token"], document["teams"]["refresh_token"]):
        assert secret not in result.err
    assert "<redacted>:180:180:websocket" in result.err
    code, _out, err = running.stop(signal.SIGINT)
    assert code == 0, err
