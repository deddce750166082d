"""Transport overhead: a ping through skyproto's flow, driver and transport against the same
request sent with the raw HTTP client, over loopback to the emulator, in the same run.

The ratio is raw time / skyproto time per request, so 1.0 means no overhead at all. The server's
own work is in both sides, which is the point: it shows what skyproto adds to a real exchange.
The raw client sends the very request the core builds (URL, header lines, body), and the two
sides are timed alternately.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import requests
from skyproto.transports import run_sync
from skyproto.transports.httpx import HttpxTransport, refusing_cookie_jar
from skyproto.transports.requests import RequestsTransport

from skyproto import Credentials, HttpRequest, Session, Stepper
from skyproto.emulator import EmulatorServer, Scenario
from skyproto.endpoint import ping
from skyproto.registration import Registration

from ._common import best_seconds, report

#: skyproto may cost at most this share of a raw client's rate (ratio at least 0.8).
TARGET_RATIO = 0.8
REQUESTS_PER_REPEAT = 200
REPEATS = 5


def ping_request(reg: Registration) -> HttpRequest:
    """The request the core builds for a ping, for the raw clients to send as it is."""
    step = Stepper(ping(reg))
    try:
        request = step.pending
    finally:
        step.close()
    assert isinstance(request, HttpRequest)
    return request


def compare(name: str, raw_send: Callable[[], object], ours_send: Callable[[], object]) -> int:
    """Time both sides (each warmed up once first) and report their ratio."""
    raw_send()
    ours_send()
    raw, ours = best_seconds([raw_send, ours_send], REQUESTS_PER_REPEAT, REPEATS)
    ratio = raw / ours
    return report(
        f"transport ({name}): raw {raw * 1e6:.0f} µs/request, skyproto {ours * 1e6:.0f} "
        f"µs/request, ratio {ratio:.2f} (min of {REPEATS} x {REQUESTS_PER_REPEAT})",
        ratio,
        TARGET_RATIO,
        unit="",
    )


def main() -> int:
    status = 0
    with EmulatorServer(Scenario(hold=1)) as server:
        account = server.account
        session = Session(server.hosts, credentials=Credentials(account.user, account.password))
        with RequestsTransport() as transport:
            run_sync(session.connect(), transport)
        reg = session.registration
        assert reg is not None
        request = ping_request(reg)
        url, headers, body = request.url, dict(request.headers), request.body

        with requests.Session() as raw_requests, RequestsTransport() as ours_requests:
            status |= compare(
                "requests",
                lambda: raw_requests.post(url, data=body, headers=headers, allow_redirects=False),
                lambda: run_sync(ping(reg), ours_requests),
            )

        with (
            httpx.Client(cookies=refusing_cookie_jar()) as raw_httpx,
            HttpxTransport() as ours_httpx,
        ):
            status |= compare(
                "httpx",
                lambda: raw_httpx.post(url, content=body, headers=headers),
                lambda: run_sync(ping(reg), ours_httpx),
            )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
