"""Where a stdlib-transport ping spends its time, phase by phase, beside the bare h11 client.

``python -m benchmarks.phases [--requests N]`` runs the same ping as ``transport_bench`` (the
emulator in a process of its own, one connection per request) and times each phase inside the
exchange with ``perf_counter_ns``, alternating ten requests of each side, then prints the
median of each phase in microseconds:

- the flow (skyproto only): building the request, and taking the response back in;
- connect; building the head and its bytes; sending; waiting for the first byte; reading the
  answer to its end (h11 events, and for skyproto the body limit and the response object);
  closing.

It explains the ``transport stdlib`` row rather than grading anything: it is not a
``*_bench.py`` module, so ``python -m benchmarks`` does not run it.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import time
from collections.abc import Callable

import h11
from skyproto.transports import BoundedBody
from skyproto.transports.stdlib import StdlibTransport

from skyproto import HttpRequest, HttpResponse
from skyproto.endpoint import ping
from skyproto.registration import Registration

from ._common import emulator_process
from .transport_bench import ping_request, registered

_clock = time.perf_counter_ns
BARE_PHASES = ("connect", "build", "send", "wait", "read", "close")
OUR_PHASES = ("flow", "connect", "build", "send", "wait", "read", "close + flow")


def _request_bytes(head: h11.Request, body: bytes) -> tuple[h11.Connection, bytes]:
    """A client connection, and the bytes that send ``head`` and ``body`` on it."""
    conn = h11.Connection(our_role=h11.CLIENT)
    out = conn.send(head) or b""
    out += conn.send(h11.Data(data=body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return conn, out


def bare_exchange(request: HttpRequest, address: tuple[str, int]) -> Callable[[], list[int]]:
    """The bare h11 client of ``transport_bench``, timed phase by phase."""
    head, _ = request.to_h11()
    method, target, lines = head.method, head.target, list(head.headers.raw_items())
    body = request.body

    def exchange() -> list[int]:
        t0 = _clock()
        sock = socket.create_connection(address, timeout=10)
        t1 = _clock()
        conn, out = _request_bytes(h11.Request(method=method, target=target, headers=lines), body)
        t2 = _clock()
        sock.sendall(out)
        t3 = _clock()
        first = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                first = first or _clock()
                conn.receive_data(data)
            elif isinstance(event, h11.EndOfMessage):
                break
        t4 = _clock()
        sock.close()
        t5 = _clock()
        return [t1 - t0, t2 - t1, t3 - t2, first - t3, t4 - first, t5 - t4]

    return exchange


def our_exchange(transport: StdlibTransport, reg: Registration) -> Callable[[], list[int]]:
    """The ping flow over the stdlib transport's own steps, timed phase by phase."""
    heads = transport._heads

    def exchange() -> list[int]:
        t0 = _clock()
        flow = ping(reg)
        request = flow.send(None)
        assert isinstance(request, HttpRequest)
        t1 = _clock()
        head, _tls, host, port = heads.get(request)
        bounded = BoundedBody(request, transport.default_timeout, transport.max_body_size)
        sock = socket.create_connection((host, port), timeout=bounded.left())
        t2 = _clock()
        conn, out = _request_bytes(head, request.body)
        t3 = _clock()
        sock.sendall(out)
        t4 = _clock()
        first = 0
        response: h11.Response | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                first = first or _clock()
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                response = event
                length = event.headers.raw_items()
                bounded.declared(
                    event.status_code,
                    next((v.decode() for k, v in length if k.lower() == b"content-length"), None),
                )
            elif isinstance(event, h11.Data):
                bounded.add(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage) and response is not None:
                answer = HttpResponse.from_h11(response, bounded.body(), url=request.url)
                break
        t5 = _clock()
        sock.close()
        with contextlib.suppress(StopIteration):
            flow.send(answer)
        t6 = _clock()
        return [t1 - t0, t2 - t1, t3 - t2, t4 - t3, first - t4, t5 - first, t6 - t5]

    return exchange


def main(requests: int = 2000) -> None:
    with emulator_process("hold=1") as profile:
        reg = registered(profile)
        transport = StdlibTransport()
        request = ping_request(reg)
        _head, _tls, host, port = transport._heads.get(request)
        sides = {
            "bare h11": (bare_exchange(request, (host, port)), BARE_PHASES),
            "skyproto": (our_exchange(transport, reg), OUR_PHASES),
        }
        samples: dict[str, list[list[int]]] = {name: [] for name in sides}
        for exchange, _ in sides.values():  # warm up
            for _ in range(200):
                exchange()
        for _ in range(max(1, requests // 10)):
            for name, (exchange, _) in sides.items():
                for _ in range(10):
                    samples[name].append(exchange())
        for name, (_, phases) in sides.items():
            medians = [
                statistics.median(row[i] for row in samples[name]) / 1e3 for i in range(len(phases))
            ]
            shown = ", ".join(
                f"{phase} {value:.1f}" for phase, value in zip(phases, medians, strict=True)
            )
            print(f"{name:9s} µs: {shown}; sum {sum(medians):.1f}")


def _cli() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.phases", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="requests per side (default 2000)"
    )
    main(parser.parse_args().requests)


if __name__ == "__main__":
    _cli()
