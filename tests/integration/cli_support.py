"""What the command-line tests share: the default account, :class:`Cli` (``skyproto`` run in this
process against an emulator), ``python -m skyproto`` in a subprocess, and the emulator process.

The fixtures built on these (``cli``, ``cli_for``, ``cli_with``, ``launch``) are in
``conftest.py``, where pytest finds them without an import.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest

from skyproto.cli import _saved, main
from skyproto.emulator import DEFAULT_ACCOUNT, EmulatorServer

PASSWORD = DEFAULT_ACCOUNT.password
EMAIL = DEFAULT_ACCOUNT.user
SKYPE_NAME = DEFAULT_ACCOUNT.skype_name
#: The conversations the emulator seeds, in listing order.
CONVERSATION_IDS = [
    "8:alice.smith",
    "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype",
    "8:live:bob_1",
    "28:concierge",
    "19:5e2b8c1d9a7f4e3b6c0d1a2f3e4b5c6d@thread.skype",
]
STARTUP_TIMEOUT = 10.0


@attrs.frozen
class Result:
    code: int
    out: str
    err: str

    @property
    def last_error_line(self) -> str:
        return self.err.splitlines()[-1]


class Cli:
    """Runs ``skyproto --hosts <the emulator's profile> ...`` in this process, in ``tmp_path``."""

    def __init__(self, server: EmulatorServer, directory: Path) -> None:
        self.server = server
        self.directory = directory
        self.hosts_file = directory / "hosts.json"
        self.hosts_file.write_text(server.profile_json())
        self.state = directory / _saved.DEFAULT_STATE_FILE

    def __call__(self, *argv: str, transport: str = "requests", verbose: bool = False) -> Result:
        out, err = io.StringIO(), io.StringIO()
        options = ["--hosts", str(self.hosts_file), "--transport", transport]
        if verbose:
            options.append("--verbose")
        code = main([*options, *argv], stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    def login(self, *extra: str, transport: str = "requests") -> Result:
        result = self("login", "--user", EMAIL, *extra, transport=transport)
        assert result.code == 0, result.err
        return result


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def saved(cli: Cli) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(cli.state.read_text())
    return document


def teams_login(cli: Cli, transport: str = "requests") -> Result:
    result = cli("login", "--teams", transport=transport)
    assert result.code == 0, result.err
    return result


def default_sigint() -> None:
    """For ``preexec_fn``: give the child the default SIGINT handling.

    A suite run as a background job starts with SIGINT ignored, the child inherits that, and
    Python then installs no KeyboardInterrupt handler, so a test's SIGINT would do nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def python_m(*args: str, **options: Any) -> subprocess.Popen[str]:
    """``python -m skyproto ARGS`` with pipes, SIGINT handled as usual even when the suite runs
    where it is ignored, and no password in the environment."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop(_saved.PASSWORD_ENV, None)
    return subprocess.Popen(
        [sys.executable, "-m", "skyproto", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=default_sigint,
        **options,
    )


def interrupt(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """SIGINT the process; its exit code, the rest of its stdout and its stderr."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    return process.returncode, out, err


class Running:
    """A ``python -m skyproto ... emulator ...`` process and the profile it printed."""

    def __init__(self, proc: subprocess.Popen[str], profile: dict[str, Any]) -> None:
        self.proc = proc
        self.profile = profile

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Send ``signum``; return the exit code and the rest of stdout and stderr."""
        self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, out, err


def first_line(proc: subprocess.Popen[str]) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=STARTUP_TIMEOUT)
    except queue.Empty:
        pytest.fail(f"no profile line within {STARTUP_TIMEOUT} s")
