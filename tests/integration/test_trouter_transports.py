"""The Trouter client over every transport against the emulator server, plain and over TLS.

The server hands the websocket upgrade to its pure Trouter peer; the test cues pushes and a drop
from another thread (holding the server's lock), and the client must deliver each message once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from skyproto.transports import run_async, run_sync
from skyproto.transports.httpx import AsyncHttpxTransport, HttpxTransport
from skyproto.transports.requests import RequestsTransport
from skyproto.transports.stdlib import StdlibTransport

from skyproto import Event, HttpRequest, NewMessageEvent
from skyproto._flow import Flow, request
from skyproto.emulator import EmulatorServer
from skyproto.events import decode_events
from skyproto.trouter.client import TrouterClient, TrouterPolicy

pytestmark = pytest.mark.integration

TRANSPORTS = ("requests", "httpx", "httpx-async", "stdlib")


def make_transport(name: str, server: EmulatorServer) -> Any:
    tls = server.ca_bundle is not None
    if name == "stdlib":
        return StdlibTransport(server.client_ssl_context() if tls else None, default_timeout=10)
    if name == "requests":
        session = requests.Session()
        if tls:
            session.verify = server.ca_bundle
        return RequestsTransport(session)
    verify: Any = server.client_ssl_context() if tls else True
    if name == "httpx":
        return HttpxTransport(httpx.Client(verify=verify, timeout=10))
    return AsyncHttpxTransport(httpx.AsyncClient(verify=verify, timeout=10))


@pytest.fixture(params=[False, True], ids=["plain", "tls"])
def server(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    with EmulatorServer(tls=request.param) as running:
        yield running


def cue(server: EmulatorServer, stop: threading.Event) -> None:
    """Once the client is registered and connected: push, drop the socket, push again."""

    def registered() -> bool:
        with server.lock:
            return any(e.what == "register" for e in server.trouter.log)

    def wait(condition: Any) -> bool:
        for _ in range(200):
            if stop.is_set():
                return False
            if condition():
                return True
            time.sleep(0.05)
        return False

    now = dt.datetime.now(dt.UTC)
    if not wait(registered):
        return
    with server.lock:
        server.trouter.push("first", now=now)
        server.trouter.drop(now)
        server.trouter.push("missed while away", now=now)
    if not wait(lambda: sum(e.what == "register" for e in server.trouter.log) >= 2):
        return
    with server.lock:
        server.trouter.push("third", now=dt.datetime.now(dt.UTC))


@pytest.mark.parametrize("name", TRANSPORTS)
def test_trouter_delivers_each_push_once_over_every_transport(
    name: str, server: EmulatorServer
) -> None:
    base = server.url("https://go.trouter.skype.com")

    def catch_up() -> Flow[list[Event]]:
        response = yield from request(HttpRequest("GET", f"{base}/backlog", timeout=10))
        return decode_events(response.body)

    delivered: list[Event] = []
    client = TrouterClient(
        "token",
        "epid-1",
        delivered.append,
        hosts=server.hosts,
        catch_up=catch_up,
        rng=random.Random(1),
        policy=TrouterPolicy(backoff_initial=0.1, backoff_max=0.2),
    )
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
    stop = threading.Event()
    cues = threading.Thread(target=cue, args=(server, stop), daemon=True)
    cues.start()
    transport = make_transport(name, server)
    try:
        flow = client.run(max_events=3, deadline=deadline)
        if name == "httpx-async":
            asyncio.run(run_async(flow, transport))
        else:
            run_sync(flow, transport)
    finally:
        stop.set()
        cues.join(10)
    contents = [e.message.content for e in delivered if isinstance(e, NewMessageEvent)]
    assert contents == ["first", "missed while away", "third"]
    assert client.stats.connections == 2
    assert client.stats.catch_ups == 1
    assert server.errors == []
