"""Sync transport built from the standard library's ``socket`` and ``ssl`` plus h11.

One connection per request, closed when the response has been read: simple, and nothing leaks.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse

import h11

from skyproto._http import HttpRequest, HttpResponse
from skyproto.errors import TransportError, TransportTimeout

__all__ = ["StdlibTransport"]

_CHUNK = 65536


class StdlibTransport:
    """Send requests over plain sockets; ``ssl_context`` decides TLS trust for ``https`` URLs."""

    def __init__(
        self, ssl_context: ssl.SSLContext | None = None, *, default_timeout: float | None = None
    ) -> None:
        self.ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()
        self.default_timeout = default_timeout

    def send(self, request: HttpRequest) -> HttpResponse:
        timeout = request.timeout if request.timeout is not None else self.default_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        parts = urllib.parse.urlsplit(request.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((host, port), timeout=timeout) as raw:
                sock: socket.socket = raw
                if parts.scheme == "https":
                    sock = self.ssl_context.wrap_socket(raw, server_hostname=host)
                try:
                    return _exchange(sock, request, deadline)
                finally:
                    if sock is not raw:
                        sock.close()
        except TimeoutError as exc:
            raise TransportTimeout(f"timed out: {request.method} {request.url}") from exc
        except (OSError, h11.ProtocolError) as exc:
            raise TransportError(f"{type(exc).__name__}: {request.method} {request.url}") from exc

    def close(self) -> None:
        """Nothing to release: every connection is closed after its request."""

    def __enter__(self) -> StdlibTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _exchange(sock: socket.socket, request: HttpRequest, deadline: float | None) -> HttpResponse:
    conn = h11.Connection(our_role=h11.CLIENT)
    head, data = request.to_h11()
    out = conn.send(head)
    if data is not None:
        out += conn.send(data)
    out += conn.send(h11.EndOfMessage())
    sock.sendall(out)
    response: h11.Response | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("deadline passed")
                sock.settimeout(remaining)
            conn.receive_data(sock.recv(_CHUNK))
        elif isinstance(event, h11.InformationalResponse):
            continue
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    if response is None:
        raise h11.RemoteProtocolError("connection closed before a response")
    return HttpResponse.from_h11(response, bytes(body), url=request.url)
