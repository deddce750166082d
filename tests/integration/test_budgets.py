"""Connection budgets: held long polls never hold up short calls, under every transport.

The emulator holds each poll of a subscribed endpoint with nothing to deliver for the scenario's
``hold``; meanwhile the same transport must answer a short call (a ping) at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import pytest
from skyproto.transports import run_async, run_sync
from skyproto.transports.httpx import AsyncHttpxTransport, HttpxTransport
from skyproto.transports.requests import RequestsTransport
from skyproto.transports.stdlib import StdlibTransport

from skyproto import Credentials, Flow, Session, TransportTimeout
from skyproto.emulator import EmulatorServer, Scenario
from skyproto.endpoint import ping, poll
from skyproto.registration import Registration

pytestmark = pytest.mark.integration

HOLD = 3.0
#: More polls than httpx's default pool (100 connections) holds.
MANY = 110
KINDS = ["requests", "httpx", "httpx-async", "stdlib"]


def make(kind: str, **budgets: Any) -> Any:
    if kind == "requests":
        return RequestsTransport(**budgets)
    if kind == "httpx":
        return HttpxTransport(**budgets)
    if kind == "httpx-async":
        return AsyncHttpxTransport(**budgets)
    return StdlibTransport(**budgets)


async def close(kind: str, transport: Any) -> None:
    if kind == "httpx-async":
        await transport.aclose()
    else:
        transport.close()


@pytest.fixture
def subscribed() -> Iterator[tuple[EmulatorServer, Registration]]:
    """An emulator that holds polls for ``HOLD`` seconds, and a subscribed registration."""
    with EmulatorServer(Scenario(hold=HOLD, events=())) as server:
        account = server.account
        session = Session(server.hosts, credentials=Credentials(account.user, account.password))
        with StdlibTransport() as transport:
            run_sync(session.connect(), transport)
            run_sync(session.subscribe(), transport)
        assert session.registration is not None
        yield server, session.registration


async def start_all(
    kind: str, transport: Any, flows: list[Flow[Any]], pool: concurrent.futures.Executor
) -> list[asyncio.Future[Any]]:
    """Start every flow at once on ``transport``; their results come later."""
    loop = asyncio.get_running_loop()
    if kind == "httpx-async":
        return [asyncio.ensure_future(run_async(flow, transport)) for flow in flows]
    return [loop.run_in_executor(pool, run_sync, flow, transport) for flow in flows]


async def run_one(kind: str, transport: Any, flow: Flow[Any]) -> Any:
    if kind == "httpx-async":
        return await run_async(flow, transport)
    return await asyncio.to_thread(run_sync, flow, transport)


async def held(server: EmulatorServer, count: int) -> None:
    """Wait until ``count`` polls have reached the server (and so are being held)."""
    deadline = time.monotonic() + 30
    while server.routes().count("poll") < count:
        assert time.monotonic() < deadline, "the polls never reached the server"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("kind", KINDS)
async def test_held_polls_leave_short_calls_their_own_connections(
    kind: str, subscribed: tuple[EmulatorServer, Registration]
) -> None:
    server, reg = subscribed
    transport = make(kind)
    with concurrent.futures.ThreadPoolExecutor(MANY) as pool:
        try:
            polls = await start_all(
                kind, transport, [poll(reg, "SELF", hold=HOLD) for _ in range(MANY)], pool
            )
            await held(server, MANY)
            started = time.monotonic()
            response = await run_one(kind, transport, ping(reg))
            took = time.monotonic() - started
            assert response.status == 201
            assert took < HOLD / 2, f"a ping waited {took:.1f} s behind held polls"
            assert not any(p.done() for p in polls)  # they were all still held meanwhile
            answers = await asyncio.gather(*polls)
            assert [a.status for a in answers] == [200] * MANY
        finally:
            await close(kind, transport)
    assert server.errors == []


@pytest.mark.parametrize("kind", KINDS)
async def test_a_full_poll_budget_times_out_its_own_requests_only(
    kind: str, subscribed: tuple[EmulatorServer, Registration]
) -> None:
    server, reg = subscribed
    transport = make(kind, connections=1, poll_connections=2, pool_timeout=0.5)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        try:
            polls = await start_all(
                kind, transport, [poll(reg, "SELF", hold=HOLD) for _ in range(2)], pool
            )
            await held(server, 2)
            started = time.monotonic()
            with pytest.raises(TransportTimeout, match=r"^PoolTimeout: POST http"):
                await run_one(kind, transport, poll(reg, "SELF", hold=HOLD))
            assert 0.4 < time.monotonic() - started < HOLD
            assert server.routes().count("poll") == 2  # the third never left
            assert (await run_one(kind, transport, ping(reg))).status == 201
            await asyncio.gather(*polls)
        finally:
            await close(kind, transport)
