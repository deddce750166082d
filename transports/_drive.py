"""The two drivers: carry out a flow's effects with a transport, a clock and a sleeper.

They are twins on purpose; a change to one is a change to both.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from skyproto._flow import Flow, Now, Sleep
from skyproto._http import HttpRequest, HttpResponse
from skyproto.errors import LocalProtocolError, TransportError

__all__ = ["AsyncTransport", "SyncTransport", "run_async", "run_sync", "utc_now"]

T = TypeVar("T")


class SyncTransport(Protocol):
    def send(self, request: HttpRequest) -> HttpResponse: ...


class AsyncTransport(Protocol):
    async def send(self, request: HttpRequest) -> HttpResponse: ...


def utc_now() -> dt.datetime:
    """The wall clock, aware and in UTC."""
    return dt.datetime.now(dt.UTC)


def run_sync(
    flow: Flow[T],
    transport: SyncTransport,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """Run ``flow`` to completion and return its result."""
    try:
        effect = next(flow)
        while True:
            outcome: Any = None
            try:
                if isinstance(effect, HttpRequest):
                    outcome = transport.send(effect)
                elif isinstance(effect, Sleep):
                    sleep(effect.seconds)
                elif isinstance(effect, Now):
                    outcome = clock()
                else:
                    raise LocalProtocolError(f"unknown effect {effect!r}")
            except TransportError as exc:
                effect = flow.throw(exc)
                continue
            effect = flow.send(outcome)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        flow.close()


async def run_async(
    flow: Flow[T],
    transport: AsyncTransport,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """Run ``flow`` to completion on an event loop and return its result."""
    try:
        effect = next(flow)
        while True:
            outcome: Any = None
            try:
                if isinstance(effect, HttpRequest):
                    outcome = await transport.send(effect)
                elif isinstance(effect, Sleep):
                    await sleep(effect.seconds)
                elif isinstance(effect, Now):
                    outcome = clock()
                else:
                    raise LocalProtocolError(f"unknown effect {effect!r}")
            except TransportError as exc:
                effect = flow.throw(exc)
                continue
            effect = flow.send(outcome)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        flow.close()
