"""Fixtures the integration tests share.

The transport matrix: a module defines ``scenario`` (the emulator's knobs for its tests) and gets
``server``, a fresh emulator with that scenario that must end without errors, and ``runner``, a
:class:`~tests.integration.matrix_support.Runner` over each of the four transports in turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from skyproto.emulator import EmulatorServer, Scenario

from .matrix_support import TRANSPORTS, Runner


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
