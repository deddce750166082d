"""Transport overhead: a ping through skyproto's flow, driver and transport against the same
request sent with the raw HTTP client, over loopback to the emulator, in the same run.

The ratio is raw time / skyproto time per request, so 1.0 means no overhead at all. The server's
own work is in both sides, which is the point: it shows what skyproto adds to a real exchange.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import requests
from skyproto.transports import run_sync
from skyproto.transports.httpx import HttpxTransport, refusing_cookie_jar
from skyproto.transports.requests import RequestsTransport

from skyproto import Credentials, Session
from skyproto.emulator import EmulatorServer, Scenario
from skyproto.endpoint import ping
from skyproto.registration import Registration

#: skyproto may cost at most this share of a raw client's rate (ratio at least 0.8).
TARGET_RATIO = 0.8
REQUESTS_PER_REPEAT = 200
REPEATS = 5


def best_per_request(send: Callable[[], object]) -> float:
    """The minimum over repeats of the mean seconds per request."""
    send()  # warm the connection
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(REQUESTS_PER_REPEAT):
            send()
        best = min(best, (time.perf_counter() - start) / REQUESTS_PER_REPEAT)
    return best


def ping_url_and_headers(reg: Registration) -> tuple[str, dict[str, str]]:
    url = f"{reg.messenger}/users/ME/endpoints/SELF/active"
    return url, {"RegistrationToken": reg.token.token, "Content-Type": "application/json"}


def main() -> int:
    status = 0
    with EmulatorServer(Scenario(hold=1)) as server:
        account = server.account
        session = Session(server.hosts, credentials=Credentials(account.user, account.password))
        with RequestsTransport() as transport:
            run_sync(session.connect(), transport)
        reg = session.registration
        assert reg is not None
        url, headers = ping_url_and_headers(reg)
        body = b'{"timeout": 12}'

        with requests.Session() as raw_requests, RequestsTransport() as ours_requests:
            raw = best_per_request(
                lambda: raw_requests.post(url, data=body, headers=headers, allow_redirects=False)
            )
            ours = best_per_request(lambda: run_sync(ping(reg), ours_requests))
            status |= report("requests", raw, ours)

        with (
            httpx.Client(cookies=refusing_cookie_jar()) as raw_httpx,
            HttpxTransport() as ours_httpx,
        ):
            raw = best_per_request(lambda: raw_httpx.post(url, content=body, headers=headers))
            ours = best_per_request(lambda: run_sync(ping(reg), ours_httpx))
            status |= report("httpx", raw, ours)
    return status


def report(name: str, raw: float, ours: float) -> int:
    ratio = raw / ours
    verdict = "" if ratio >= TARGET_RATIO else f" BELOW TARGET {TARGET_RATIO:g}"
    print(
        f"transport ({name}): raw {raw * 1e6:.0f} µs/request, skyproto {ours * 1e6:.0f} "
        f"µs/request, ratio {ratio:.2f} (min of {REPEATS} x {REQUESTS_PER_REPEAT}){verdict}"
    )
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
