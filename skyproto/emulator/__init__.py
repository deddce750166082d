"""A loopback emulator of the Skype services that SkPy and skyproto talk to.

* :class:`Emulator` is pure: ``handle(request, now) -> response``, no sockets, no clock.
* :class:`EmulatorServer` serves it over HTTP (or HTTPS, with a generated CA) on loopback.
* :class:`Scenario` holds the knobs (redirects, wrong password, faults, events, lifetimes...).
* :func:`serve` is the ``skyproto emulator`` command.

See ``docs/emulator.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core import Emulator
from .profile import DEFAULT_ACCOUNT, DEFAULT_MEETING_ID, Account, numbered_accounts
from .scenario import Fault, Scenario

if TYPE_CHECKING:
    from .server import EmulatorServer, LoggedRequest, serve

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_MEETING_ID",
    "Account",
    "Emulator",
    "EmulatorServer",
    "Fault",
    "LoggedRequest",
    "Scenario",
    "numbered_accounts",
    "serve",
]

# The server (sockets, threads, TLS) is imported on first use of one of these names, so
# importing this package stays pure and light.
_FROM_SERVER = frozenset({"EmulatorServer", "LoggedRequest", "serve"})


def __getattr__(name: str) -> Any:
    if name in _FROM_SERVER:
        value = getattr(importlib.import_module(".server", __name__), name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_SERVER)
