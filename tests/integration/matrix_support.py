"""The adapter behind ``test_matrix.py``: one object that runs a flow over any of the four transports.

:class:`Runner` hides whether the transport is sync or async: ``run(flow)`` blocks either way. The
async transport really goes through ``run_async`` on an event loop of its own (an
:class:`asyncio.Runner` kept for the runner's lifetime, so keep-alive connections survive from
one flow to the next, as they would in an application).

Every request passes through a thin shim in front of the real transport that records it in
:attr:`Runner.sent` (what the client put on the wire, including requests to hosts no emulator
could see) and can hand the response to a ``tamper`` hook, a man in the middle for answers the
emulator has no knob to produce.

Beside it: the Teams scenario and chats the matrix tests expect, and the checks they share on
what reached the emulator. The ``server`` and ``runner`` fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from skyproto.transports import run_async, run_sync
from skyproto.transports.httpx import AsyncHttpxTransport, HttpxTransport
from skyproto.transports.requests import RequestsTransport
from skyproto.transports.stdlib import StdlibTransport

from skyproto import Flow, HttpRequest, HttpResponse
from skyproto.emulator import EmulatorServer, Scenario

__all__ = [
    "CHATS",
    "GROUP",
    "TRANSPORTS",
    "Runner",
    "Tamper",
    "assert_arrived_as_sent",
    "forget_log",
    "teams_knobs",
]

T = TypeVar("T")

#: The transports every flow runs over, by the name used in test ids.
TRANSPORTS = ("requests", "httpx", "httpx-async", "stdlib")

#: Bounds every request that carries no timeout of its own, so a bug fails instead of hanging.
_DEFAULT_TIMEOUT = 10.0

Tamper = Callable[[HttpRequest, HttpResponse], HttpResponse]

#: The Teams group chat the emulator seeds, and every Teams chat it lists, in listing order.
GROUP = "19:uni01_4f2a9c@thread.v2"
CHATS = [GROUP, "8:live:.cid.a11ce", "19:0f3c2a9d7e6b4c1a8f5e3d2c1b0a9f8e@thread.skype"]
CHATS.append("48:notifications")


def teams_knobs(**changes: Any) -> Scenario:
    """A scenario whose identity host asks for a 1-second polling interval and approves a device
    code on the first poll, plus ``changes``."""
    return Scenario(device_interval=1, device_pending=0, **changes)


def _without_framing(request: HttpRequest) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.headers if k.lower() not in ("host", "content-length")]


def assert_arrived_as_sent(runner: Runner, server: EmulatorServer) -> None:
    """Every request the client sent reached the emulator, in order and unchanged."""
    received = [entry.request for entry in server.requests]
    assert [(r.method, r.url, r.body) for r in received] == [
        (r.method, r.url, r.body) for r in runner.sent
    ]
    assert [_without_framing(r) for r in received] == [_without_framing(r) for r in runner.sent]


def forget_log(runner: Runner, server: EmulatorServer) -> None:
    runner.sent.clear()
    server.clear_requests()


class Runner:
    """One transport of kind ``name`` (see :data:`TRANSPORTS`), driven synchronously."""

    def __init__(self, name: str) -> None:
        if name not in TRANSPORTS:
            raise ValueError(f"unknown transport {name!r}")
        self.name = name
        self.sent: list[HttpRequest] = []
        self.tamper: Tamper | None = None
        self._loop: asyncio.Runner | None = None
        self._async: AsyncHttpxTransport | None = None
        self._sync: RequestsTransport | HttpxTransport | StdlibTransport | None = None
        if name == "requests":
            self._sync = RequestsTransport()
        elif name == "httpx":
            self._sync = HttpxTransport()
        elif name == "stdlib":
            self._sync = StdlibTransport(default_timeout=_DEFAULT_TIMEOUT)
        else:
            self._loop = asyncio.Runner()
            self._async = AsyncHttpxTransport()

    def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` to completion over this transport and return its result."""
        if self._async is not None:
            assert self._loop is not None
            return self._loop.run(run_async(flow, _AsyncShim(self, self._async)))
        assert self._sync is not None
        return run_sync(flow, _SyncShim(self, self._sync))

    def sent_urls(self) -> list[str]:
        return [req.url for req in self.sent]

    def _received(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        return response if self.tamper is None else self.tamper(request, response)

    def close(self) -> None:
        """Close the transport (and the async runner's event loop)."""
        if self._sync is not None:
            self._sync.close()
        if self._async is not None and self._loop is not None:
            try:
                self._loop.run(self._async.aclose())
            finally:
                self._loop.close()


class _SyncShim:
    def __init__(self, owner: Runner, inner: Any) -> None:
        self._owner, self._inner = owner, inner

    def send(self, request: HttpRequest) -> HttpResponse:
        self._owner.sent.append(request)
        response: HttpResponse = self._inner.send(request)
        return self._owner._received(request, response)


class _AsyncShim:
    def __init__(self, owner: Runner, inner: AsyncHttpxTransport) -> None:
        self._owner, self._inner = owner, inner

    async def send(self, request: HttpRequest) -> HttpResponse:
        self._owner.sent.append(request)
        response = await self._inner.send(request)
        return self._owner._received(request, response)
