"""pytest plugin (entry point ``skyproto_emulator``): fixtures that run the loopback emulator.

* ``skype_emulator``: a running plain-HTTP :class:`~skyproto.emulator.EmulatorServer` with the
  default scenario, stopped after the test.
* ``skype_emulator_factory``: ``factory(scenario=None, *, tls=False, **options)`` starts more
  servers (same keyword arguments as ``EmulatorServer``); all are stopped after the test.
* ``skype_hosts``: the :class:`~skyproto.Hosts` profile of ``skype_emulator``.
* ``teams_hosts``: the same bases as a Teams Free profile (:meth:`~skyproto.Hosts.teams`).

The emulator is imported when a fixture is first used, so merely loading the plugin costs
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from skyproto.emulator import EmulatorServer, Scenario
    from skyproto.hosts import Hosts

EmulatorFactory = Callable[..., "EmulatorServer"]


@pytest.fixture
def skype_emulator_factory() -> Iterator[EmulatorFactory]:
    """Start emulator servers on demand; every one is stopped after the test."""
    from skyproto.emulator import EmulatorServer

    started: list[EmulatorServer] = []

    def factory(
        scenario: Scenario | None = None, *, tls: bool = False, **options: Any
    ) -> EmulatorServer:
        server = EmulatorServer(scenario, tls=tls, **options)
        started.append(server)
        return server.start()

    try:
        yield factory
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def skype_emulator(skype_emulator_factory: EmulatorFactory) -> EmulatorServer:
    """A running plain-HTTP emulator with the default scenario."""
    return skype_emulator_factory()


@pytest.fixture
def skype_hosts(skype_emulator: EmulatorServer) -> Hosts:
    """The hosts profile of ``skype_emulator``."""
    return skype_emulator.hosts


@pytest.fixture
def teams_hosts(skype_emulator: EmulatorServer) -> Hosts:
    """The hosts profile of ``skype_emulator`` for the Teams Free flows."""
    return skype_emulator.teams_hosts
