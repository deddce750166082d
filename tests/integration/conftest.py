"""Fixtures the integration tests share.

The transport matrix: a module defines ``scenario`` (the emulator's knobs for its tests) and gets
``server``, a fresh emulator with that scenario that must end without errors, and ``runner``, a
:class:`~tests.integration.matrix_support.Runner` over each of the four transports in turn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skyproto.cli import _saved
from skyproto.emulator import EmulatorServer, Scenario
from skyproto.emulator.pytest_plugin import EmulatorFactory

from .cli_support import PASSWORD, Cli, Running, default_sigint, first_line
from .matrix_support import TRANSPORTS, Runner, teams_knobs


@pytest.fixture
def server(skype_emulator_factory: Any, scenario: Scenario) -> Iterator[EmulatorServer]:
    running: EmulatorServer = skype_emulator_factory(scenario)
    yield running
    assert running.errors == []


@pytest.fixture(params=TRANSPORTS)
def runner(request: pytest.FixtureRequest, server: EmulatorServer) -> Iterator[Runner]:
    # Depends on ``server`` so that the transport is closed before the server stops.
    made = Runner(request.param)
    yield made
    made.close()


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, skype_emulator_factory: EmulatorFactory
) -> Any:
    """``cli_for(scenario)``: a :class:`Cli` over a new emulator with that scenario."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(_saved.PASSWORD_ENV, PASSWORD)

    def make(scenario: Scenario | None = None) -> Cli:
        return Cli(skype_emulator_factory(scenario or Scenario(hold=2)), tmp_path)

    return make


@pytest.fixture
def cli(cli_for: Any) -> Cli:
    result: Cli = cli_for()
    return result


@pytest.fixture
def cli_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, skype_emulator_factory: Any) -> Any:
    """``cli_with(**knobs)``: a :class:`Cli` over a new emulator whose device codes are approved
    on the first poll."""
    monkeypatch.chdir(tmp_path)

    def make(**changes: Any) -> Cli:
        return Cli(skype_emulator_factory(teams_knobs(**changes)), tmp_path)

    return make


@pytest.fixture
def launch() -> Iterator[Any]:
    """Start emulator processes; any still running after the test is killed."""
    started: list[subprocess.Popen[str]] = []

    def launch(*emulator_args: str, global_args: tuple[str, ...] = ()) -> Running:
        command = [sys.executable, "-m", "skyproto", *global_args, "emulator", *emulator_args]
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,
        )
        started.append(proc)
        line = first_line(proc)
        assert line.endswith("\n")
        return Running(proc, json.loads(line))

    yield launch
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
