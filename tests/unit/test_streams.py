"""The byte-stream effects: their values, both drivers, and the four transports' real streams.

The drivers are checked on fake streams (every rule, on both twins); the transports' streams
against a loopback echo server, plain and over TLS with a throwaway CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from h11_server import ThrowawayCA, refused_url
from skyproto.transports import run_async, run_sync
from skyproto.transports.httpx import AsyncHttpxTransport, HttpxTransport
from skyproto.transports.requests import RequestsTransport
from skyproto.transports.stdlib import StdlibTransport

from skyproto import Flow, LocalProtocolError, TransportError
from skyproto._flow import (
    TIMED_OUT,
    OpenStream,
    ReceiveBytes,
    SendBytes,
    close_stream,
    open_stream,
    receive_bytes,
    send_bytes,
)


def test_stream_effects_refuse_unbounded_or_odd_values() -> None:
    for bad in (0, -1, float("inf"), float("nan"), True, "1"):
        with pytest.raises(LocalProtocolError):
            OpenStream("https://example.com/", bad)  # type: ignore[arg-type]
        with pytest.raises(LocalProtocolError):
            ReceiveBytes(object(), 10, bad)  # type: ignore[arg-type]
        with pytest.raises(LocalProtocolError):
            SendBytes(object(), b"x", bad)  # type: ignore[arg-type]
    for bad_size in (0, -5, True, 1.5):
        with pytest.raises(LocalProtocolError):
            ReceiveBytes(object(), bad_size, 1)  # type: ignore[arg-type]
    for url in ("ftp://example.com", "wss://example.com", "example.com"):
        with pytest.raises(LocalProtocolError):
            OpenStream(url, 1)
    assert "secret" not in repr(OpenStream("https://h/socket.io/1/websocket/secret", 1))
    assert "secret" not in repr(SendBytes(object(), b"secret", 1))


class FakeStream:
    def __init__(self, incoming: list[bytes | BaseException]) -> None:
        self.incoming = incoming
        self.sent: list[bytes] = []
        self.closed = 0

    def send(self, data: bytes, timeout: float) -> None:
        if self.closed:
            raise TransportError("closed")
        self.sent.append(data)

    def receive(self, max_bytes: int, timeout: float) -> Any:
        if not self.incoming:
            return TIMED_OUT
        item = self.incoming.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item[:max_bytes]

    def close(self) -> None:
        self.closed += 1


class AsyncFakeStream(FakeStream):
    async def send(self, data: bytes, timeout: float) -> None:  # type: ignore[override]
        FakeStream.send(self, data, timeout)

    async def receive(self, max_bytes: int, timeout: float) -> Any:  # type: ignore[override]
        return FakeStream.receive(self, max_bytes, timeout)

    async def close(self) -> None:  # type: ignore[override]
        FakeStream.close(self)


class FakeTransport:
    def __init__(self, twin: str, incoming: list[bytes | BaseException]) -> None:
        self.twin = twin
        self.opened: list[tuple[str, float]] = []
        self.streams: list[FakeStream] = []
        self.incoming = incoming

    def _open(self, url: str, timeout: float) -> FakeStream:
        self.opened.append((url, timeout))
        if url.endswith("refused"):
            raise TransportError("refused")
        cls = AsyncFakeStream if self.twin == "async" else FakeStream
        stream = cls(self.incoming)
        self.streams.append(stream)
        return stream

    def send(self, request: Any) -> Any:
        raise AssertionError("no HTTP here")


class SyncFake(FakeTransport):
    def open_stream(self, url: str, timeout: float) -> FakeStream:
        return self._open(url, timeout)


class AsyncFake(FakeTransport):
    async def open_stream(self, url: str, timeout: float) -> FakeStream:
        return self._open(url, timeout)


def run(twin: str, flow: Flow[Any], transport: Any) -> Any:
    if twin == "sync":
        return run_sync(flow, transport)
    return asyncio.run(run_async(flow, transport))


TWINS = ("sync", "async")


def fake(twin: str, incoming: list[bytes | BaseException]) -> FakeTransport:
    return SyncFake(twin, incoming) if twin == "sync" else AsyncFake(twin, incoming)


@pytest.mark.parametrize("twin", TWINS)
def test_drivers_open_send_receive_and_close(twin: str) -> None:
    def flow() -> Flow[list[Any]]:
        stream = yield from open_stream("https://h.example:4443/x", 5)
        yield from send_bytes(stream, b"hello", 2)
        yield from send_bytes(stream, b"", 2)  # nothing to send: no effect
        got = []
        for _ in range(3):
            got.append((yield from receive_bytes(stream, 3, 1)))
        yield from close_stream(stream)
        yield from close_stream(stream)  # twice is harmless
        return got

    transport = fake(twin, [b"abcdef", b""])
    assert run(twin, flow(), transport) == [b"abc", b"", TIMED_OUT]
    assert transport.opened == [("https://h.example:4443/x", 5)]
    assert transport.streams[0].sent == [b"hello"]
    assert transport.streams[0].closed == 1


@pytest.mark.parametrize("twin", TWINS)
def test_drivers_close_what_the_flow_left_open_and_throw_failures_in(twin: str) -> None:
    def flow() -> Flow[str]:
        stream = yield from open_stream("http://h.example/", 5)
        try:
            yield from receive_bytes(stream, 10, 1)
        except TransportError as exc:
            caught = str(exc)
        try:
            yield from open_stream("http://h.example/refused", 5)
        except TransportError as exc:
            caught += " / " + str(exc)
        return caught

    transport = fake(twin, [TransportError("reset")])
    assert run(twin, flow(), transport) == "reset / refused"
    assert transport.streams[0].closed == 1

    def failing() -> Flow[None]:
        yield from open_stream("http://h.example/", 5)
        raise ValueError("boom")

    transport = fake(twin, [])
    with pytest.raises(ValueError, match="boom"):
        run(twin, failing(), transport)
    assert transport.streams[0].closed == 1


@pytest.mark.parametrize("twin", TWINS)
def test_drivers_refuse_foreign_streams_and_transports_without_streams(twin: str) -> None:
    def foreign() -> Flow[Any]:
        return (yield from receive_bytes(FakeStream([]), 1, 1))

    with pytest.raises(LocalProtocolError, match="did not open"):
        run(twin, foreign(), fake(twin, []))

    class NoStreams:
        def send(self, request: Any) -> Any:
            raise AssertionError

    with pytest.raises(LocalProtocolError, match="cannot open streams"):
        run(twin, open_stream("http://h.example/", 1), NoStreams())
    wrong = fake("async" if twin == "sync" else "sync", [])
    wrong.twin = twin
    with pytest.raises(LocalProtocolError, match="transport"):
        run(twin, open_stream("http://h.example/", 1), wrong)


def test_receive_sub_flow_checks_the_drivers_answer() -> None:
    from skyproto import Stepper

    step = Stepper(receive_bytes(object(), 2, 1))
    with pytest.raises(LocalProtocolError):
        step.send(b"abc")
    step = Stepper(open_stream("http://h.example/", 1))
    with pytest.raises(LocalProtocolError):
        step.send(None)


# -- real streams over loopback ------------------------------------------------------------------


@contextlib.contextmanager
def echo_server(context: ssl.SSLContext | None = None) -> Iterator[int]:
    """A one-connection echo server on 127.0.0.1; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            if context is not None:
                conn = context.wrap_socket(conn, server_side=True)
            with conn:
                conn.settimeout(10)
                while data := conn.recv(1024):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(10)


def echo_flow(url: str) -> Flow[list[Any]]:
    stream = yield from open_stream(url, 5)
    yield from send_bytes(stream, b"ping", 5)
    got: list[Any] = [(yield from receive_bytes(stream, 2, 5))]
    got.append((yield from receive_bytes(stream, 10, 5)))
    got.append((yield from receive_bytes(stream, 10, 0.2)))
    yield from close_stream(stream)
    return got


TRANSPORT_NAMES = ("stdlib", "requests", "httpx", "httpx-async")


def make_transport(name: str, ca: ThrowawayCA | None) -> Any:
    if name == "stdlib":
        return StdlibTransport(ca.client_context() if ca else None)
    if name == "requests":
        session = requests.Session()
        if ca:
            session.verify = str(ca.ca_path)
        return RequestsTransport(session)
    verify: Any = ca.client_context() if ca else True
    if name == "httpx":
        return HttpxTransport(httpx.Client(verify=verify))
    return AsyncHttpxTransport(httpx.AsyncClient(verify=verify))


def run_named(name: str, flow: Flow[Any], transport: Any) -> Any:
    if name == "httpx-async":
        return asyncio.run(run_async(flow, transport))
    return run_sync(flow, transport)


@pytest.mark.parametrize("name", TRANSPORT_NAMES)
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_transports_carry_streams(name: str, tls: bool, tmp_path: Path) -> None:
    ca = ThrowawayCA(tmp_path) if tls else None
    with echo_server(ca.server_context() if ca else None) as port:
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/socket.io/1/websocket/sid"
        got = run_named(name, echo_flow(url), make_transport(name, ca))
    assert got[0] == b"pi"
    assert got[1] == b"ng"
    assert got[2] is TIMED_OUT


@pytest.mark.parametrize("name", TRANSPORT_NAMES)
def test_tls_streams_verify_with_the_transports_settings(name: str, tmp_path: Path) -> None:
    ca = ThrowawayCA(tmp_path)
    with echo_server(ca.server_context()) as port:
        url = f"https://127.0.0.1:{port}/socket.io/1/websocket/secret-session"
        with pytest.raises(TransportError) as info:
            run_named(name, open_stream(url, 5), make_transport(name, None))
    assert "secret-session" not in str(info.value)
    assert f"127.0.0.1:{port}" in str(info.value)


@pytest.mark.parametrize("name", TRANSPORT_NAMES)
def test_a_refused_stream_is_a_transport_error(name: str) -> None:
    with pytest.raises(TransportError):
        run_named(name, open_stream(refused_url() + "/x", 5), make_transport(name, None))
