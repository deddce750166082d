"""The command line's use of ``--state``: one process at a time, a login that checks it can save
before sending anything, and special files refused without hanging."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from skyproto import store
from skyproto.cli import _saved
from skyproto.emulator import Scenario

from .cli_support import EMAIL, Cli, python_m

pytestmark = pytest.mark.integration

STATE = _saved.DEFAULT_STATE_FILE
IN_USE = (
    f"error: LocalProtocolError: the state file {STATE!r} is in use by another skyproto "
    "process; try again when it has finished"
)
LOCK_HOLDER = """
import sys
from skyproto import store
with store.lock_state(sys.argv[1]):
    print("holding", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def cli(cli_for: Any) -> Cli:
    result: Cli = cli_for(Scenario(hold=30))
    return result


def hold_the_lock(path: Path) -> subprocess.Popen[str]:
    """Another process holding the lock on ``path``; kill it to release the lock."""
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "holding\n"
    return holder


# -- one process per state file ---------------------------------------------------------------


def test_login_refuses_at_once_a_state_another_process_holds(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_saved.PASSWORD_ENV)  # refused before the password is even needed
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    holder = hold_the_lock(cli.state)
    try:
        result = cli("login", "--user", EMAIL)
    finally:
        holder.kill()
        holder.wait(10)
    assert (result.code, result.out, result.err) == (1, "", IN_USE + "\n")
    assert cli.server.requests == []
    assert not cli.state.exists()


def test_a_second_login_while_events_runs_is_refused_and_the_session_kept(cli: Cli) -> None:
    cli.login()
    saved = cli.state.read_bytes()
    listener = python_m(
        "--hosts", str(cli.hosts_file), "events", "--timeout", "60", cwd=cli.directory
    )
    watchdog = threading.Timer(60, listener.kill)
    watchdog.start()
    try:
        assert listener.stdout is not None
        assert json.loads(listener.stdout.readline())["id"] == 1000  # it runs, holding the lock
        cli.server.clear_requests()
        second = python_m(
            "--hosts", str(cli.hosts_file), "login", "--user", EMAIL, cwd=cli.directory
        )
        out, err = second.communicate(timeout=30)
        assert (second.returncode, out, err) == (1, "", IN_USE + "\n")
        assert not {"soap", "edge", "register"} & set(cli.server.routes())
        listener.send_signal(signal.SIGINT)
        listener.communicate(timeout=15)
    finally:
        watchdog.cancel()
        listener.kill()
        listener.wait(10)
    assert listener.returncode == 0
    assert cli.state.read_bytes() == saved
    assert cli("ping").code == 0  # the lock went with the listener


def test_a_resuming_verb_waits_briefly_then_refuses(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.login()
    cli.server.clear_requests()
    monkeypatch.setattr(_saved, "STATE_LOCK_WAIT", 0.2)
    holder = hold_the_lock(cli.state)
    try:
        result = cli("ping")
    finally:
        holder.kill()
        holder.wait(10)
    assert (result.code, result.err) == (1, IN_USE + "\n")
    assert cli.server.requests == []


def test_a_resuming_verb_proceeds_once_the_other_process_is_done(cli: Cli) -> None:
    cli.login()
    holder = hold_the_lock(cli.state)
    threading.Timer(0.3, holder.kill).start()  # well inside STATE_LOCK_WAIT
    try:
        result = cli("ping")
    finally:
        holder.kill()
        holder.wait(10)
    assert result.code == 0, result.err


def test_a_verb_without_a_saved_session_leaves_no_lock_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("endpoints", "--state", "missing.json")
    assert result.code == 1
    assert not store.lock_path(tmp_path / "missing.json").exists()


def test_login_leaves_a_private_lock_file_and_no_temporary_file(cli: Cli, tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        cli.login()
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f".{STATE}.hosts",  # which --hosts profile made the session
        f".{STATE}.lock",
        "hosts.json",
        STATE,
    ]
    assert store.lock_path(cli.state).stat().st_mode & 0o777 == 0o600
    assert Path(_saved.hosts_note_path(str(cli.state))).stat().st_mode & 0o777 == 0o600
    assert cli.state.stat().st_mode & 0o777 == 0o600


def test_a_verb_removes_what_a_killed_writer_left(cli: Cli) -> None:
    cli.login()
    stale = cli.directory / f".{STATE}.0123456789ab.tmp"
    stale.write_bytes(cli.state.read_bytes())  # tokens, as a writer killed before its rename
    assert cli("ping").code == 0
    assert not stale.exists()


# -- login checks that it can save before sending anything ---------------------------------------


def unwritable(directory: Path, kind: str) -> str:
    """A --state value login cannot save to, of the given kind."""
    if kind == "under a file":
        (directory / "file").write_bytes(b"")
        return "file/state.json"
    if kind == "read-only directory":
        if os.geteuid() == 0:
            pytest.skip("root writes into directories whatever their mode")
        (directory / "ro").mkdir(mode=0o500)
        return "ro/state.json"
    if kind == "missing directory":
        return "absent/state.json"
    path = directory / "state.json"
    if kind == "directory":
        path.mkdir()
    elif kind == "link":
        (directory / "elsewhere.json").write_bytes(b"not a session")
        path.symlink_to(directory / "elsewhere.json")
    else:
        os.mkfifo(path)
    return "state.json"


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("under a file", "cannot lock the state file 'file/state.json': Not a directory"),
        ("read-only directory", "cannot lock the state file 'ro/state.json': Permission denied"),
        ("missing directory", "cannot lock the state file 'absent/state.json': No such file"),
        ("directory", "the state file 'state.json' is not a regular file"),
        ("link", "the state file 'state.json' is a symbolic link; skyproto does not write"),
        ("fifo", "the state file 'state.json' is not a regular file"),
    ],
)
def test_login_that_could_not_save_sends_nothing(cli: Cli, kind: str, message: str) -> None:
    state = unwritable(cli.directory, kind)
    result = cli("login", "--user", EMAIL, "--state", state)
    assert result.code == 1
    assert result.out == ""
    assert result.last_error_line.startswith(f"error: LocalProtocolError: {message}")
    assert cli.server.requests == []
    if kind == "link":
        assert (cli.directory / "elsewhere.json").read_bytes() == b"not a session"


# -- special files are refused, not waited on --------------------------------------------------


def test_a_fifo_at_the_state_path_is_an_error_not_a_hang(cli: Cli) -> None:
    os.mkfifo(cli.state)
    process = python_m("--hosts", str(cli.hosts_file), "ping", cwd=cli.directory)
    try:
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(10)
    assert (process.returncode, out) == (1, "")
    assert err == (
        f"error: SkypeTokenException: saved state file {STATE!r} is not a regular file\n"
    )
    assert cli.server.requests == []
