"""The habits people expect of a command line: ``--version``, global options on either side of
the verb, usage errors with exit 2, a TLS profile that carries its CA, hints that name the option
to pass, a status line on a terminal, ``--json`` for scripts, and a default transport that a plain
``pip install skyproto`` provides."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import skyproto
from skyproto.calls import USER_AGENT
from skyproto.cli import _base, _saved, build_parser, main
from skyproto.emulator import Scenario
from skyproto.emulator.pytest_plugin import EmulatorFactory

from .cli_support import CONVERSATION_IDS, EMAIL, SKYPE_NAME, Cli, Result

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]


def _endpoint_id(login: Result) -> str:
    """The endpoint id a ``login`` printed."""
    (line,) = [line for line in login.out.splitlines() if line.startswith("endpoint_id: ")]
    return line.removeprefix("endpoint_id: ")


def _run(*argv: str, stderr: io.StringIO | None = None) -> Result:
    out, err = io.StringIO(), stderr if stderr is not None else io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return Result(code, out.getvalue(), err.getvalue())


# -- --version ------------------------------------------------------------------------------------


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"skyproto {skyproto.__version__}\n"


def test_python_dash_m_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "skyproto", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"skyproto {skyproto.__version__}\n",
        "",
    )


def test_one_version_everywhere() -> None:
    text = (REPOSITORY / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in text
    assert 'version = { attr = "skyproto._version.__version__" }' in text
    assert f"skyproto/{skyproto.__version__}" == USER_AGENT


# -- global options after the verb ----------------------------------------------------------------


def test_global_options_after_the_verb() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["endpoints", "--hosts", "emu.json", "--ca-bundle", "ca.pem", "--transport", "httpx"]
    )
    assert (args.hosts, args.ca_bundle, args.transport, args.verbose) == (
        "emu.json",
        "ca.pem",
        "httpx",
        False,
    )
    args = parser.parse_args(["--hosts", "emu.json", "--verbose", "endpoints"])
    assert (args.hosts, args.transport, args.verbose) == ("emu.json", "stdlib", True)
    # Given on both sides, the one after the verb wins.
    args = parser.parse_args(["--hosts", "a.json", "ping", "--hosts", "b.json"])
    assert args.hosts == "b.json"


def test_endpoints_with_hosts_after_the_verb(cli: Cli) -> None:
    endpoint_id = _endpoint_id(cli.login())
    result = _run("endpoints", "--hosts", str(cli.hosts_file))
    assert result.code == 0, result.err
    assert result.out.splitlines() == [endpoint_id]


# -- usage errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["login", "--guest", "https://join.skype.com/x"], "--guest needs --name"),
        (["login"], "logging in needs --user"),
        (["login", "--teams", "--user", EMAIL], "--teams signs in with a device code"),
    ],
)
def test_argument_problems_are_usage_errors(
    argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _run(*argv)
    assert result.code == 2
    assert result.err.startswith("usage: skyproto login ")
    assert f"skyproto login: error: {message}" in result.err
    assert "Error:" not in result.err  # no exception class name
    assert list(tmp_path.iterdir()) == []  # checked before taking the lock


# -- the TLS profile carries its CA ---------------------------------------------------------------


def test_a_tls_profile_alone_is_enough(cli: Cli, skype_emulator_factory: EmulatorFactory) -> None:
    server = skype_emulator_factory(Scenario(hold=2), tls=True)
    profile = server.profile()
    assert profile["ca_bundle"] == server.ca_bundle
    cli.hosts_file.write_text(json.dumps(profile))
    result = cli("login", "--user", EMAIL)
    assert result.code == 0, result.err
    assert f"messenger: {server.hosts.messenger}\n" in result.out
    assert server.hosts.messenger.startswith("https://")


def test_a_relative_ca_bundle_is_read_beside_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "emu.json"
    path.write_text(
        json.dumps({"hosts": {"api.skype.com": "https://127.0.0.1:1"}, "ca_bundle": "ca.pem"})
    )
    args = build_parser().parse_args(["--hosts", str(path), "mac256", "1"])
    ctx = _base.CliContext.from_args(args, stdout=io.StringIO(), stderr=io.StringIO())
    assert ctx.ca_bundle == str(tmp_path / "ca.pem")
    assert ctx.hosts_file == str(path)
    # --ca-bundle wins over the profile's.
    args = build_parser().parse_args(["--hosts", str(path), "--ca-bundle", "x.pem", "mac256", "1"])
    assert (
        _base.CliContext.from_args(args, stdout=io.StringIO(), stderr=io.StringIO()).ca_bundle
        == "x.pem"
    )


def test_a_hosts_file_that_is_a_fifo_or_too_large_is_an_error_not_a_wait(tmp_path: Path) -> None:
    fifo = tmp_path / "emu.fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (_base.MAX_HOSTS_FILE + 1))
    for path, words in ((fifo, "not a regular file"), (big, "larger than")):
        started = time.monotonic()
        with pytest.raises(skyproto.LocalProtocolError, match=words):
            _base.read_hosts_profile(str(path))
        assert time.monotonic() - started < 5


# -- without --hosts, the saved state's host is untrusted: say which --hosts --------------------


def test_a_saved_emulator_session_without_hosts_suggests_them(cli: Cli) -> None:
    cli.login()
    result = _run("endpoints")
    assert result.code == 1
    line = result.last_error_line
    assert line.startswith("error: SkypeTokenException: saved state names messaging host ")
    assert f"it was made with --hosts {cli.hosts_file}: pass that again" in line


def test_an_older_state_without_a_note_still_gets_a_hint(cli: Cli) -> None:
    cli.login()
    os.unlink(_saved.hosts_note_path(str(cli.state)))
    result = _run("endpoints")
    assert result.code == 1
    assert "pass the --hosts profile the session was made with" in result.last_error_line
    assert cli("endpoints").code == 0  # and it still loads with them


def test_logging_in_without_hosts_forgets_the_note(cli: Cli, tmp_path: Path) -> None:
    cli.login()
    note = Path(_saved.hosts_note_path(str(cli.state)))
    assert json.loads(note.read_text()) == {"hosts": str(cli.hosts_file)}
    _saved.remember_hosts(str(cli.state), _base.CliContext())
    assert not note.exists()


def test_a_note_that_cannot_be_removed_is_a_warning(tmp_path: Path) -> None:
    state = str(tmp_path / "state.json")
    Path(_saved.hosts_note_path(state)).mkdir()
    stderr = io.StringIO()
    _saved.remember_hosts(state, _base.CliContext(stderr=stderr))  # the session is saved
    assert stderr.getvalue().startswith("warning: cannot note the hosts profile beside the state")


def test_the_hosts_note_is_read_without_following_a_link_or_blocking(tmp_path: Path) -> None:
    state = str(tmp_path / "state.json")
    note = Path(_saved.hosts_note_path(state))
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"hosts": "/elsewhere/profile.json"}')
    note.symlink_to(elsewhere)
    generic = "pass the --hosts profile the session was made with"
    assert _saved._hosts_hint(state) == generic
    note.unlink()
    os.mkfifo(note)  # a reader would wait for a writer for ever
    hints: list[str] = []
    reader = threading.Thread(target=lambda: hints.append(_saved._hosts_hint(state)), daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # let the blocked reader go before failing
        os.close(os.open(note, os.O_WRONLY | os.O_NONBLOCK))
    assert hints == [generic]


# -- progress on a terminal -----------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_status_line_while_logging_in_on_a_terminal(cli_for: Any) -> None:
    cli = cli_for(Scenario(hold=2, delay=0.4))
    terminal = _Terminal()
    result = _run("--hosts", str(cli.hosts_file), "login", "--user", EMAIL, stderr=terminal)
    assert result.code == 0, result.err
    assert "\r| logging in" in result.err
    assert result.err.endswith("\r")  # wiped at the end
    assert "logging in" not in result.out


def test_no_status_line_off_a_terminal(cli_for: Any) -> None:
    cli = cli_for(Scenario(hold=2, delay=0.4))
    result = cli("login", "--user", EMAIL)
    assert result.code == 0, result.err
    assert result.err == ""


def test_the_status_line_clears_before_other_output() -> None:
    terminal = _Terminal()
    progress = _base.Progress(terminal, interval=0.01)
    ctx = _base.CliContext(stdout=io.StringIO(), stderr=terminal)
    ctx._progress = progress
    with ctx.progress("waiting"):
        deadline = time.monotonic() + 10
        while "waiting" not in terminal.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        ctx.err("warning: something")
    text = terminal.getvalue()
    assert "\r| waiting" in text
    wipe = "\r" + " " * len("| waiting") + "\r"
    assert wipe + "warning: something\n" in text
    assert text.endswith(wipe)


def test_no_status_line_with_verbose() -> None:
    terminal = _Terminal()
    ctx = _base.CliContext(stderr=terminal, verbose=True)
    with ctx.progress("logging in"):
        time.sleep(0.2)
    assert terminal.getvalue() == ""


def test_a_status_line_on_a_real_pty() -> None:
    pty = pytest.importorskip("pty")
    parent, child = pty.openpty()
    try:
        with os.fdopen(os.dup(child), "w") as stream:
            progress = _base.Progress(stream, interval=0.01)
            with progress.showing("polling"):
                time.sleep(0.1)
        data = os.read(parent, 4096).decode()
    finally:
        os.close(parent)
        os.close(child)
    assert "polling" in data


# -- --json ---------------------------------------------------------------------------------------


def test_login_json(cli: Cli) -> None:
    result = cli("login", "--user", EMAIL, "--json")
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert record["user_id"] == SKYPE_NAME
    assert record["state"] == _saved.DEFAULT_STATE_FILE
    assert set(record) == {"user_id", "messenger", "endpoint_id", "state"}
    assert cli("endpoints").out.splitlines() == [record["endpoint_id"]]
    assert record["messenger"] == cli.server.hosts.messenger


def test_endpoints_json(cli: Cli) -> None:
    endpoint_id = _endpoint_id(cli.login())
    result = cli("endpoints", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == [endpoint_id]


def test_conversations_json(cli: Cli) -> None:
    cli.login()
    result = cli("conversations", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == CONVERSATION_IDS


# -- a plain install: the default transport needs no extra -----------------------------------------

_BLOCKER = """\
import runpy, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("requests", "httpx", "urllib3"):
            raise ImportError(f"{name} is blocked (not installed)")
        return None

sys.meta_path.insert(0, Block())
sys.argv = ["skyproto", *sys.argv[1:]]
runpy.run_module("skyproto", run_name="__main__")
"""


def test_demo_runs_without_requests_or_httpx(tmp_path: Path) -> None:
    script = tmp_path / "blocked.py"
    script.write_text(_BLOCKER)
    done = subprocess.run(
        [sys.executable, str(script), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "transport: stdlib\n" in done.stdout
    assert done.stderr == ""
    # ... and a transport whose library is missing says which extra to install.
    done = subprocess.run(
        [sys.executable, str(script), "demo", "--transport", "requests"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot load skyproto.transports.requests" in done.stderr
