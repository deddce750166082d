"""The session verbs of the command line (login, events, endpoints, ping, conversations, demo),
run through ``skyproto.cli.main`` against the loopback emulator, plus ``python -m skyproto`` in
subprocesses for the demo and for Ctrl-C."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from skyproto.cli import _events, _saved, main
from skyproto.cli._base import TRANSPORTS, CliContext
from skyproto.cli._main import build_parser
from skyproto.emulator import (
    DEFAULT_MEETING_ID,
    EmulatorServer,
    Fault,
    Scenario,
)
from skyproto.emulator.pytest_plugin import EmulatorFactory

from .cli_support import (
    CONVERSATION_IDS,
    EMAIL,
    PASSWORD,
    SKYPE_NAME,
    Cli,
    Result,
    interrupt,
    json_lines,
    python_m,
)

pytestmark = pytest.mark.integration

JOIN_URL = f"https://join.skype.com/{DEFAULT_MEETING_ID}"
LOGIN_ROUTES = {"soap", "edge", "profile", "register", "config", "endpoints"}
LIVE_ROUTES = {"live_start", "live_page", "live_credentials", "live_confirm", "t_exchange"}


def issued_secrets(server: EmulatorServer) -> set[str]:
    """Every secret the emulator received: the tokens it issued (as clients sent them back),
    cookie values, PPFT values, passwords and security tokens."""
    found: set[str] = {PASSWORD}
    for entry in server.requests:
        request = entry.request
        for name in ("X-SkypeToken", "RegistrationToken", "Authentication", "Authorization"):
            for value in request.header_all(name):
                found.update(part for part in re.split(r"[=;, ]+", value) if len(part) >= 16)
        found.update(value for value in request.cookies().values() if len(value) >= 8)
        if request.header("content-type") == "application/x-www-form-urlencoded":
            for field, value in request.form():
                if field in ("passwd", "PPFT", "access_token", "t") and len(value) >= 8:
                    found.add(value)
    return found


def assert_no_secret(server: EmulatorServer, *texts: str) -> set[str]:
    secrets = issued_secrets(server)
    for text in texts:
        for secret in secrets:
            assert secret not in text
    return secrets


# -- one transport per verb ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_verb_uses_one_transport_for_all_its_flows_and_closes_it(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    made: list[Any] = []
    original = CliContext.make_transport

    def recording(self: CliContext) -> Any:
        made.append(original(self))
        return made[-1]

    monkeypatch.setattr(CliContext, "make_transport", recording)
    # No state file: the clock, the login, the registration and the event loop are all flows.
    result = cli(
        "events", "--count", "1", "--timeout", "30", "--user", SKYPE_NAME, transport=transport
    )
    assert result.code == 0, result.err
    assert len(made) == 1
    if transport.startswith("httpx"):
        client = made[0].client
        assert client.is_closed
        # The client kept no cookie, though the Live login's answers set some.
        assert list(client.cookies.jar) == []


# -- login --------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_login_prints_the_session_and_replaces_the_state_file(cli: Cli, transport: str) -> None:
    cli.state.write_text("old content that is not a session\n" * 50)
    cli.state.chmod(0o644)

    result = cli.login(transport=transport)

    state = json.loads(cli.state.read_bytes())
    endpoint_id = state["registration"]["endpoint_id"]
    assert result.out == (
        f"user_id: {SKYPE_NAME}\n"
        f"messenger: {cli.server.hosts.messenger}\n"
        f"endpoint_id: {endpoint_id}\n"
        f"state: {_saved.DEFAULT_STATE_FILE}\n"
    )
    assert result.err == ""
    assert stat.S_IMODE(cli.state.stat().st_mode) == 0o600
    assert state["version"] == 1
    assert state["user_id"] == SKYPE_NAME
    assert state["guest"] is False
    assert state["endpoints"] == [endpoint_id]
    assert PASSWORD not in cli.state.read_text()
    with cli.server.lock:
        assert cli.server.emulator.endpoint_ids() == (endpoint_id,)
    # auto: an e-mail address logs in with SOAP, then registration and endpoint config.
    assert cli.server.routes() == [
        "soap",
        "edge",
        "profile",
        "register",
        "config",
        "endpoints",
    ]
    assert_no_secret(cli.server, result.out, result.err)


@pytest.mark.parametrize(
    ("user", "method", "route"),
    [
        (SKYPE_NAME, "auto", "live_page"),
        (EMAIL, "live", "live_page"),
        (SKYPE_NAME, "soap", "soap"),
        (EMAIL, "api", "api_login"),
    ],
)
def test_login_method(cli: Cli, user: str, method: str, route: str) -> None:
    result = cli("login", "--user", user, "--method", method, "--state", "s.json")
    assert result.code == 0, result.err
    assert result.out.startswith(f"user_id: {SKYPE_NAME}\n")
    assert route in cli.server.routes()


@pytest.mark.parametrize("transport", ["requests", "httpx-async"])
def test_login_over_tls_trusts_the_ca_bundle_alone(
    cli_for: Any, skype_emulator_factory: EmulatorFactory, transport: str
) -> None:
    cli = cli_for()
    server = skype_emulator_factory(Scenario(hold=2), tls=True)
    profile = cli.directory / "tls-hosts.json"
    # The hosts alone: the profile's own ca_bundle would be trusted (test_cli_habits.py).
    profile.write_text(json.dumps({"hosts": server.profile()["hosts"]}))
    base = ["--hosts", str(profile), "--transport", transport]

    def run(*argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = main([*base, *argv, "login", "--user", EMAIL], stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    refused = run()  # the system store does not know the emulator's CA
    assert refused.code == 1
    assert refused.last_error_line.startswith("error: TransportError: ")
    assert "--ca-bundle" in refused.last_error_line
    assert server.routes() == []
    result = run("--ca-bundle", str(server.ca_bundle))
    assert result.code == 0, result.err
    assert f"messenger: {server.hosts.messenger}\n" in result.out
    assert server.hosts.messenger.startswith("https://")


def test_login_with_a_state_path(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "fred.json"
    target.parent.mkdir()
    result = cli.login("--state", str(target))
    assert result.out.endswith(f"state: {target}\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not cli.state.exists()


def test_wrong_password(cli_for: Any) -> None:
    cli = cli_for(Scenario(wrong_password=True))
    result = cli("login", "--user", SKYPE_NAME)
    assert result.code == 1
    assert result.out == ""
    assert result.last_error_line == (
        "error: SkypeAuthException: Your account or password is incorrect. "
        "If you don't remember your password, reset it now."
    )
    assert "Traceback" not in result.err
    assert PASSWORD not in result.err
    assert not cli.state.exists()


def test_missing_password_without_a_terminal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_saved.PASSWORD_ENV)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    result = cli("login", "--user", EMAIL)
    assert result.code == 1
    assert result.err == (
        f"error: SkypeAuthException: no password for {EMAIL}: set SKYPROTO_PASSWORD, "
        "or run in a terminal to be asked\n"
    )
    assert cli.server.routes() == []  # nothing was sent


def test_password_prompt_on_a_terminal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return PASSWORD

    monkeypatch.delenv(_saved.PASSWORD_ENV)
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(_saved.getpass, "getpass", fake_getpass)
    result = cli("login", "--user", EMAIL)
    assert result.code == 0, result.err
    assert prompts == [f"Password for {EMAIL}: "]


def test_rate_limited_login_says_how_long_and_does_not_wait(cli_for: Any) -> None:
    cli = cli_for(Scenario(faults=(Fault("soap", 429, 1, 600),)))
    started = time.monotonic()
    result = cli("login", "--user", EMAIL)
    assert time.monotonic() - started < 5
    assert result.code == 1
    assert result.err == "error: SkypeRateLimitException: Rate limit exceeded; retry after 600 s\n"
    assert cli.server.routes() == ["soap"]


@pytest.mark.parametrize("transport", ["requests", "httpx-async"])
def test_verbose_traffic_is_redacted(cli: Cli, transport: str) -> None:
    result = cli("login", "--user", SKYPE_NAME, transport=transport, verbose=True)
    assert result.code == 0, result.err
    assert result.err.startswith("> GET ")
    assert set(cli.server.routes()) >= LIVE_ROUTES
    assert "< HTTP 302" in result.err
    assert "<redacted>" in result.err
    secrets = assert_no_secret(cli.server, result.out, result.err)
    # The Live login's cookies and the tokens really were among what was checked.
    cookies = [entry.request.cookies() for entry in cli.server.requests]
    for name in ("MSPOK", "MSPRequ"):
        values = {jar[name] for jar in cookies if name in jar}
        assert values
        assert values <= secrets
    tokens = {e.request.header("X-SkypeToken") for e in cli.server.requests} - {None}
    assert tokens
    assert tokens <= secrets


def test_guest_login(cli: Cli) -> None:
    result = cli("login", "--guest", JOIN_URL, "--name", "Ann Guest")
    assert result.code == 0, result.err
    user_id = result.out.splitlines()[0].removeprefix("user_id: ")
    assert re.fullmatch(r"guest:[^_]+_[0-9a-f]{8}", user_id), user_id
    state = json.loads(cli.state.read_bytes())
    assert (state["user_id"], state["guest"]) == (user_id, True)
    # The real join URL was mapped onto the emulator through the hosts profile.
    assert cli.server.routes()[:3] == ["join_page", "meeting", "join_thread"]
    with cli.server.lock:
        assert user_id in cli.server.emulator.guests()


def test_guest_login_needs_a_name(cli: Cli) -> None:
    result = cli("login", "--guest", JOIN_URL)
    assert result.code == 2  # a usage error, as argparse reports one
    assert result.err.startswith("usage: skyproto login ")
    assert result.err.endswith(
        "skyproto login: error: --guest needs --name NAME, the guest's display name\n"
    )


def test_login_needs_a_user(cli: Cli) -> None:
    result = cli("login")
    assert result.code == 2
    assert result.last_error_line == (
        "skyproto login: error: logging in needs --user USER, or --guest JOIN_URL --name NAME"
    )


# -- events -------------------------------------------------------------------------------------


def test_events_with_count_logs_in_without_a_state_file(cli: Cli) -> None:
    result = cli("events", "--count", "2", "--user", EMAIL)
    assert result.code == 0, result.err
    first, second = json_lines(result.out)
    assert set(first) == {
        "type",
        "resource_type",
        "id",
        "time",
        "msg_id",
        "user_id",
        "chat_id",
        "message_id",
        "message_type",
        "content",
    }
    assert (first["type"], first["resource_type"], first["id"]) == (
        "NewMessageEvent",
        "NewMessage",
        1000,
    )
    assert (first["user_id"], first["chat_id"]) == ("alice.smith", "8:alice.smith")
    assert first["content"] == "Hello <b>there</b> #1"
    assert first["message_id"] == str(first["msg_id"])
    assert dt.datetime.fromisoformat(first["time"]).utcoffset() == dt.timedelta(0)
    assert (second["type"], second["id"], second["active"]) == ("TypingEvent", 1001, True)
    routes = cli.server.routes()
    assert set(routes) >= LOGIN_ROUTES
    assert routes.count("ack") == 2  # each printed event was acknowledged
    with cli.server.lock:
        assert len(cli.server.emulator.acknowledged) == 2
    assert json.loads(cli.state.read_bytes())["user_id"] == SKYPE_NAME


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_events_resume_from_state_without_login_or_registration(cli: Cli, transport: str) -> None:
    cli.login()
    saved = cli.state.read_bytes()
    cli.server.clear_requests()
    result = cli("events", "--count", "3", transport=transport)
    assert result.code == 0, result.err
    assert [event["id"] for event in json_lines(result.out)] == [1000, 1001, 1002]
    assert cli.server.routes() == ["subscribe", "ping", "poll", "ack", "ack"]
    assert cli.state.read_bytes() == saved  # nothing changed, nothing rewritten


def test_resuming_asks_for_no_password_while_the_session_is_valid(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.login()
    monkeypatch.delenv(_saved.PASSWORD_ENV)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # asking would fail: no terminal
    cli.server.clear_requests()
    result = cli("events", "--count", "1", "--user", EMAIL)
    assert result.code == 0, result.err
    assert [event["id"] for event in json_lines(result.out)] == [1000]
    assert cli.server.routes() == ["subscribe", "ping", "poll", "ack"]


def test_events_with_timeout(cli_for: Any) -> None:
    cli = cli_for(Scenario(hold=30))
    cli.login()
    started = time.monotonic()
    result = cli("events", "--timeout", "1.5")
    elapsed = time.monotonic() - started
    assert result.code == 0, result.err
    assert [event["type"] for event in json_lines(result.out)] == [
        "NewMessageEvent",
        "TypingEvent",
        "PresenceEvent",
        "ConversationUpdateEvent",
    ]
    assert 1.4 < elapsed < 6


def test_events_print_unknown_events_raw(cli_for: Any) -> None:
    cli = cli_for(Scenario(events=("custom",)))
    cli.login()
    result = cli("events", "--count", "1")
    (record,) = json_lines(result.out)
    assert record["type"] == "UnknownEvent"
    assert record["resource_type"] == "CustomUserProperties"
    assert record["raw"]["resourceType"] == "CustomUserProperties"
    assert record["raw"]["id"] == record["id"]
    assert record["reason"] == "resourceType 'CustomUserProperties' is not modelled"


def test_a_404_on_poll_subscribes_again(cli_for: Any) -> None:
    cli = cli_for(Scenario(hold=2, faults=(Fault("poll", 404, 1),)))
    cli.login()
    cli.server.clear_requests()
    result = cli("events", "--count", "1")
    assert result.code == 0, result.err
    assert [event["id"] for event in json_lines(result.out)] == [1000]
    assert cli.server.routes() == ["subscribe", "ping", "poll", "subscribe", "ping", "poll", "ack"]


def test_a_long_retry_after_ends_events(cli_for: Any) -> None:
    cli = cli_for(Scenario(hold=2, faults=(Fault("poll", 429, 1, 3600),)))
    cli.login()
    started = time.monotonic()
    result = cli("events", "--count", "1")
    assert time.monotonic() - started < 5
    assert result.code == 1
    assert result.err == (
        "error: SkypeRateLimitException: Rate limit exceeded; retry after 3600 s\n"
    )


@pytest.mark.parametrize("transport", ["stdlib", "httpx-async"])
def test_ctrl_c_in_events_exits_cleanly(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    cli.login()
    printed: list[int | None] = []

    def interrupt_on_second(event: Any) -> dict[str, Any]:
        if printed:
            raise KeyboardInterrupt
        printed.append(event.id)
        return {"id": event.id}

    monkeypatch.setattr(_events, "event_record", interrupt_on_second)
    result = cli("events", transport=transport)
    assert (result.code, result.out, result.err) == (0, '{"id": 1000}\n', "interrupted\n")
    # The interrupted event was neither remembered nor acknowledged.
    assert cli.server.routes().count("ack") == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_events_gives_up_on_a_server_that_is_gone(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    cli.login()
    cli.server.stop()  # nothing listens on its port any more
    failures = 3
    policy = attrs.evolve(
        _events.CLI_LOOP_POLICY,
        backoff_initial=0.01,
        backoff_max=0.02,
        max_failures=failures,
        min_poll_interval=0.01,
    )
    monkeypatch.setattr(_events, "CLI_LOOP_POLICY", policy)
    result = cli("events", transport=transport)
    assert (result.code, result.out) == (1, "")
    lines = result.err.splitlines()
    # One warning per failure the loop waits out, then the last one, named, ends it.
    assert len(lines) == failures + 1
    assert all(line.startswith("WARNING: event poll failed") for line in lines[:-1])
    assert re.fullmatch(r"error: TransportError: \S.*", result.last_error_line)
    assert "Traceback" not in result.err


def test_the_events_policy_gives_up_within_a_minute() -> None:
    policy = _events.CLI_LOOP_POLICY
    longest = sum(
        min(policy.backoff_max, policy.backoff_initial * 2**n) for n in range(policy.max_failures)
    )
    assert longest <= 60
    assert policy.max_retry_after <= 5


@pytest.mark.parametrize("verb", [("demo",), ("ping",), ("conversations",)], ids=" ".join)
def test_sigint_in_any_verb_exits_0_with_one_line(cli_for: Any, verb: tuple[str, ...]) -> None:
    # A poll held for 30 s (demo) or an emulator that answers after 30 s (the others).
    cli = cli_for(Scenario(hold=30))
    cli.login()
    if verb != ("demo",):
        cli.server.scenario = attrs.evolve(cli.server.scenario, delay=30.0)
    seen = len(cli.server.requests)
    process = python_m("--hosts", str(cli.hosts_file), *verb, cwd=cli.directory)
    watchdog = threading.Timer(45, process.kill)
    watchdog.start()
    try:
        if verb == ("demo",):
            assert process.stdout is not None
            while not process.stdout.readline().startswith("   queued on the emulator"):
                pass
        else:  # past the imports (slow on a busy machine) and waiting for the slow answer
            while len(cli.server.requests) == seen and process.poll() is None:
                time.sleep(0.05)
        time.sleep(1.0)  # into the held poll, or the slow answer
        code, _out, err = interrupt(process)
    finally:
        watchdog.cancel()
        process.kill()
    assert (code, err) == (0, "interrupted\n")


def _read_then_close(process: subprocess.Popen[str], lines: int) -> list[str]:
    """Read ``lines`` lines of stdout, then close it, as ``| head -N`` does."""
    assert process.stdout is not None
    read = [process.stdout.readline() for _ in range(lines)]
    process.stdout.close()
    return read


def _stderr_at_exit(process: subprocess.Popen[str]) -> str:
    """All the process writes to stderr, once it has exited."""
    assert process.stderr is not None
    err = process.stderr.read()
    process.wait(timeout=30)
    return err


def test_demo_into_a_pipe_closed_early_exits_quietly() -> None:
    process = python_m("demo")
    try:
        assert _read_then_close(process, 1)[0].startswith("skyproto demo:")
        err = _stderr_at_exit(process)
    finally:
        process.kill()
    assert (process.returncode, err) == (0, "")


def _events_process(cli_for: Any, transport: str) -> tuple[Cli, subprocess.Popen[str]]:
    """Log in to an emulator that holds its polls for 30 s, then run ``python -m skyproto
    events`` over ``transport`` against it."""
    cli = cli_for(Scenario(hold=30))
    cli.login()
    process = python_m(
        "--hosts", str(cli.hosts_file), "--transport", transport, "events", cwd=cli.directory
    )
    return cli, process


@pytest.mark.parametrize("transport", ["requests", "httpx-async"])
def test_events_into_a_pipe_closed_early_exits_quietly(cli_for: Any, transport: str) -> None:
    cli, process = _events_process(cli_for, transport)
    try:
        first = _read_then_close(process, 2)
        assert [json.loads(line)["id"] for line in first] == [1000, 1001]
        time.sleep(0.5)
        cli.server.queue_event("text")  # printed into the closed pipe
        err = _stderr_at_exit(process)
    finally:
        process.kill()
    assert (process.returncode, err) == (0, "")


@pytest.mark.parametrize("transport", ["requests", "httpx-async"])
def test_sigint_stops_events_with_exit_code_0(cli_for: Any, transport: str) -> None:
    _cli, process = _events_process(cli_for, transport)
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]  # the four queued events
        assert [json.loads(line)["id"] for line in lines] == [1000, 1001, 1002, 1003]
        time.sleep(0.3)  # into the held poll
        code, out, err = interrupt(process)
    finally:
        watchdog.cancel()
        process.kill()
    assert (code, out, err) == (0, "", "interrupted\n")


# -- endpoints, ping, conversations -------------------------------------------------------------


def test_endpoints_lists_every_endpoint(cli: Cli) -> None:
    cli.login("--state", "first.json")
    cli.login()
    result = cli("endpoints")
    assert result.code == 0, result.err
    with cli.server.lock:
        expected = set(cli.server.emulator.endpoint_ids())
    assert len(expected) == 2
    assert set(result.out.splitlines()) == expected
    assert cli.server.routes()[-1] == "endpoints"
    # The refreshed endpoint list was saved.
    assert set(json.loads(cli.state.read_bytes())["endpoints"]) == expected


def test_endpoints_without_a_saved_session(cli: Cli) -> None:
    result = cli("endpoints", "--state", "missing.json")
    assert result.code == 1
    assert result.err == (
        "error: SkypeTokenException: no saved session at 'missing.json'; "
        "run 'skyproto login' first\n"
    )


def test_a_damaged_state_file_is_a_clear_error(cli: Cli) -> None:
    cli.state.write_text('{"version": 1, "user_id": ')
    result = cli("ping")
    assert result.code == 1
    assert result.err == (
        "error: SkypeTokenException: saved state is not valid JSON (truncated?)\n"
    )


@pytest.mark.parametrize("transport", ["stdlib", "httpx"])
def test_ping(cli: Cli, transport: str) -> None:
    cli.login()
    endpoint_id = json.loads(cli.state.read_bytes())["registration"]["endpoint_id"]
    cli.server.clear_requests()
    result = cli("ping", "--timeout", "7", transport=transport)
    assert result.code == 0, result.err
    assert result.out == f"ping: HTTP 201, endpoint {endpoint_id} active for 7 s\n"
    (entry,) = cli.server.requests
    assert entry.route == "ping"
    assert entry.request.body == b'{"timeout": 7}'


def test_ping_timeout_must_be_a_positive_whole_number(cli: Cli) -> None:
    assert cli("ping", "--timeout", "1.5").code == 2
    assert cli("ping", "--timeout", "0").code == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_conversations_pages_until_an_empty_page(cli: Cli, transport: str) -> None:
    cli.login()
    cli.server.clear_requests()
    for _ in range(2):  # each run lists from the start
        result = cli("conversations", transport=transport)
        assert result.code == 0, result.err
        assert result.out.splitlines() == CONVERSATION_IDS
    # 2 + 2 + 1 conversations, then the empty page, twice.
    assert cli.server.routes() == ["conversations"] * 8
    links = [entry.request.query() for entry in cli.server.requests]
    assert "syncState" not in dict(links[0])
    assert all("syncState" in dict(query) for query in links[1:4])


def test_conversations_refuse_an_untrusted_sync_state_link(cli_for: Any) -> None:
    cli = cli_for(Scenario(hold=2, foreign_sync_state=True))
    cli.login()
    cli.server.clear_requests()
    result = cli("conversations")
    assert result.code == 1
    assert result.err == (
        "error: UntrustedHostError: refusing to follow a syncState link to untrusted host "
        "https://evil.example:443\n"
    )
    assert result.out == ""  # the page with the bad link is not printed
    assert cli.server.routes() == ["conversations"]


# -- demo ---------------------------------------------------------------------------------------

DEMO_STEPS = (
    "1. login (SOAP",
    "2. register",
    "3. endpoint config",
    "4. subscribe",
    "5. events",
    "6. recent conversations (syncState paging)",
)


def check_demo_transcript(out: str) -> None:
    positions = [out.index(step) for step in DEMO_STEPS]
    assert positions == sorted(positions)
    assert f"user id: {SKYPE_NAME}" in out
    assert "Skype token: received (value hidden)" in out
    for kind in ("NewMessageEvent", "TypingEvent", "EditMessageEvent", "PresenceEvent"):
        assert kind in out
    assert "UnknownEvent (CustomUserProperties)" in out
    assert out.count(": accepted\n") == 4  # text, typing, edit, group text
    assert "6 of 6 queued events received" in out
    assert f"page 1: {CONVERSATION_IDS[0]}, {CONVERSATION_IDS[1]}" in out
    assert "4 pages fetched (the last one empty ends the listing), 5 conversations" in out
    assert PASSWORD not in out


def test_demo_in_process_shows_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    servers: list[EmulatorServer] = []

    class RecordedServer(EmulatorServer):
        def start(self) -> EmulatorServer:
            servers.append(self)
            return super().start()

    monkeypatch.setattr("skyproto.emulator.EmulatorServer", RecordedServer)
    out, err = io.StringIO(), io.StringIO()
    assert main(["--verbose", "demo"], stdout=out, stderr=err) == 0
    check_demo_transcript(out.getvalue())
    (server,) = servers
    secrets = assert_no_secret(server, out.getvalue(), err.getvalue())
    assert len(secrets) >= 4  # password, Skype token, security token, registration token
    assert "> POST " in err.getvalue()  # --verbose traced the traffic, redacted


@pytest.mark.parametrize(
    "argv",
    [
        *(["demo", "--transport", transport] for transport in TRANSPORTS),
        ["--transport", "stdlib", "demo"],
    ],
    ids=[*(f"demo --transport {t}" for t in TRANSPORTS), "--transport stdlib demo"],
)
def test_python_dash_m_demo(argv: list[str]) -> None:
    started = time.monotonic()
    process = python_m(*argv)
    out, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (0, "")
    transport = argv[argv.index("--transport") + 1]
    assert f"transport: {transport}\n" in out
    check_demo_transcript(out)
    assert time.monotonic() - started < 15


def test_demo_takes_transport_and_verbose_before_or_after_the_verb() -> None:
    parser = build_parser()
    after = parser.parse_args(["demo", "--transport", "stdlib", "--verbose"])
    assert (after.transport, after.verbose) == ("stdlib", True)
    before = parser.parse_args(["--transport", "httpx", "demo"])
    assert (before.transport, before.verbose) == ("httpx", False)
