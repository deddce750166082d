"""The command line's transport wrappers carry byte streams through, traced by origin only."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest

from skyproto import LocalProtocolError
from skyproto.cli._base import AsyncTracingTransport, TracingTransport

URL = "https://trouter.example:443/socket.io/1/websocket/SECRET-SID?sig=SECRET-SIG"


class Inner:
    def __init__(self) -> None:
        self.opened: list[tuple[str, float]] = []

    def send(self, request: Any) -> Any:
        raise AssertionError

    def open_stream(self, url: str, timeout: float) -> str:
        self.opened.append((url, timeout))
        return "stream"


class AsyncInner(Inner):
    async def open_stream(self, url: str, timeout: float) -> str:  # type: ignore[override]
        return Inner.open_stream(self, url, timeout)


def test_tracing_transports_forward_streams_and_trace_only_the_origin() -> None:
    trace = io.StringIO()
    inner = Inner()
    assert TracingTransport(inner, trace).open_stream(URL, 5) == "stream"
    assert inner.opened == [(URL, 5)]
    async_inner = AsyncInner()
    wrapped = AsyncTracingTransport(async_inner, trace)
    assert asyncio.run(wrapped.open_stream(URL, 5)) == "stream"
    assert trace.getvalue() == "> STREAM https://trouter.example:443\n" * 2
    assert "SECRET" not in trace.getvalue()


def test_a_transport_without_streams_says_so() -> None:
    class NoStreams:
        def send(self, request: Any) -> Any:
            raise AssertionError

    with pytest.raises(LocalProtocolError, match="cannot open streams"):
        TracingTransport(NoStreams(), io.StringIO()).open_stream(URL, 5)


def test_the_owning_httpx_wrappers_forward_streams() -> None:
    from skyproto.cli._base import _OwningAsyncHttpxTransport, _OwningHttpxTransport

    inner = Inner()
    assert _OwningHttpxTransport(inner, None).open_stream(URL, 5) == "stream"  # type: ignore[arg-type]
    async_inner = AsyncInner()
    owning = _OwningAsyncHttpxTransport(async_inner, None)  # type: ignore[arg-type]
    assert asyncio.run(owning.open_stream(URL, 5)) == "stream"
    assert inner.opened == async_inner.opened == [(URL, 5)]
