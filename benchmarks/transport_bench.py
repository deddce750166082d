"""Transport overhead: a ping through skyproto's flow, driver and transport against the same
request sent with the bare client, over loopback to the emulator, in the same run.

Four pairs: ``requests`` (``Session.post``), ``httpx`` sync and async (``Client.post``,
``AsyncClient.post``), and the stdlib transport against a bare h11 exchange over a socket (one
connection per request, as the stdlib transport does). The bare clients send the very request
the core builds (URL, header lines, body), prepared once; skyproto's side runs the ``ping`` flow
each time, so building the request is part of what it is charged for.

The emulator runs in a process of its own, so its work does not compete with the client for
this interpreter's lock. The ratio is skyproto's time / the bare client's time per request: 1.0
means no overhead. The sides are timed alternately, in short samples, and the median of each\nis kept.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.parse
from collections.abc import Callable
from typing import Any

import h11
import httpx
import requests
from skyproto.transports import run_async, run_sync
from skyproto.transports.httpx import AsyncHttpxTransport, HttpxTransport, refusing_cookie_jar
from skyproto.transports.requests import RequestsTransport
from skyproto.transports.stdlib import StdlibTransport

from skyproto import Credentials, Hosts, HttpRequest, Session, Stepper
from skyproto.endpoint import ping
from skyproto.registration import Registration

from ._common import alternate, emulator_process, median, row

#: skyproto may take at most this many times the bare client's time per request.
GOAL = "<= 1.05"
#: Requests per timed sample, and samples per side. Short samples, the two sides alternating,
#: put each pair of samples in nearly the same moment, so that load from other processes
#: weighs on both alike; the median then leaves out the samples it hit hardest.
REQUESTS_PER_SAMPLE = 5
SAMPLES = 300


def registered(profile: dict[str, Any]) -> Registration:
    """The registration of a session of the emulator's main account, connected over requests."""
    hosts = Hosts.from_json(profile)
    account = profile["account"]
    session = Session(hosts, credentials=Credentials(account["user"], account["password"]))
    with RequestsTransport() as transport:
        run_sync(session.connect(), transport)
    reg = session.registration
    assert reg is not None
    return reg


def ping_request(reg: Registration) -> HttpRequest:
    """The request the core builds for a ping, for the bare clients to send as it is."""
    step = Stepper(ping(reg))
    try:
        request = step.pending
    finally:
        step.close()
    assert isinstance(request, HttpRequest)
    return request


def bare_h11(request: HttpRequest) -> Callable[[], bytes]:
    """Send ``request`` with nothing but a socket and h11, one connection each time.

    The request line and header lines are worked out once; each call makes its h11 events from
    them, as a hand-written client would.
    """
    parts = urllib.parse.urlsplit(request.url)
    address = (parts.hostname or "", parts.port or 80)
    head, _ = request.to_h11()
    method, target, lines = head.method, head.target, list(head.headers.raw_items())
    body = request.body

    def send() -> bytes:
        sock = socket.create_connection(address, timeout=10)
        try:
            conn = h11.Connection(our_role=h11.CLIENT)
            out = conn.send(h11.Request(method=method, target=target, headers=lines)) or b""
            if body:
                out += conn.send(h11.Data(data=body)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
            sock.sendall(out)
            chunks = []
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(sock.recv(65536))
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    return b"".join(chunks)
        finally:
            sock.close()

    return send


def batch(send: Callable[[], object], count: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(count):
            send()

    return run


def async_batch(
    loop: asyncio.AbstractEventLoop, send: Callable[[], Any], count: int
) -> Callable[[], None]:
    """``count`` requests in one turn of ``loop`` (twice the sync count: a turn has a cost)."""

    async def many() -> None:
        for _ in range(count):
            await send()

    return lambda: loop.run_until_complete(many())


def pair(
    name: str, bare: Callable[[], None], ours: Callable[[], None], count: int, samples: int
) -> dict[str, Any]:
    bare_times, our_times = alternate([bare, ours], 1, samples, warmup=2)
    bare_typical, our_typical = median(bare_times) / count, median(our_times) / count
    return row(
        f"transport {name}",
        skyproto=our_typical * 1e6,
        reference=bare_typical * 1e6,
        ratio=our_typical / bare_typical,
        goal=GOAL,
        unit="µs/request",
        reference_name=f"bare {name}",
        statistic=f"median of {samples} alternated samples of {count} requests",
        ratio_is="skyproto time / bare client time",
    )


def main(smoke: bool = False) -> list[dict[str, Any]]:
    count, samples = (2, 2) if smoke else (REQUESTS_PER_SAMPLE, SAMPLES)
    rows: list[dict[str, Any]] = []
    with emulator_process("hold=1") as profile:
        reg = registered(profile)
        request = ping_request(reg)
        url, headers, body = request.url, dict(request.headers), request.body

        with requests.Session() as bare_requests, RequestsTransport() as ours_requests:
            rows.append(
                pair(
                    "requests",
                    batch(
                        lambda: bare_requests.post(
                            url, data=body, headers=headers, allow_redirects=False
                        ),
                        count,
                    ),
                    batch(lambda: run_sync(ping(reg), ours_requests), count),
                    count,
                    samples,
                )
            )

        with (
            httpx.Client(cookies=refusing_cookie_jar()) as bare_httpx,
            HttpxTransport() as ours_httpx,
        ):
            rows.append(
                pair(
                    "httpx",
                    batch(lambda: bare_httpx.post(url, content=body, headers=headers), count),
                    batch(lambda: run_sync(ping(reg), ours_httpx), count),
                    count,
                    samples,
                )
            )

        loop = asyncio.new_event_loop()
        try:
            bare_async = httpx.AsyncClient(cookies=refusing_cookie_jar())
            ours_async = AsyncHttpxTransport()
            try:
                rows.append(
                    pair(
                        "httpx async",
                        async_batch(
                            loop,
                            lambda: bare_async.post(url, content=body, headers=headers),
                            2 * count,
                        ),
                        async_batch(loop, lambda: run_async(ping(reg), ours_async), 2 * count),
                        2 * count,
                        samples,
                    )
                )
            finally:
                loop.run_until_complete(bare_async.aclose())
                loop.run_until_complete(ours_async.aclose())
        finally:
            loop.close()

        with StdlibTransport() as ours_stdlib:
            rows.append(
                pair(
                    "stdlib",
                    batch(bare_h11(request), count),
                    batch(lambda: run_sync(ping(reg), ours_stdlib), count),
                    count,
                    samples,
                )
            )
    rows[-1]["reference_name"] = "bare h11 over a socket"
    return rows
