"""Sync transport built from the standard library's ``socket`` and ``ssl``, plus h11.

One connection per request, closed once the response has been read: simple, and nothing leaks.
No proxy support. ``timeout`` bounds the whole exchange (connect, TLS handshake, send, receive),
not each read.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse

import h11

from skyproto._http import HttpRequest, HttpResponse

from ._drive import transport_error, wire_head
from ._streams import SocketStream

__all__ = ["StdlibTransport"]

_CHUNK = 65536


class StdlibTransport:
    """Send requests over plain sockets.

    ``ssl_context`` decides TLS trust for ``https`` URLs (default: the system's trust store).
    ``default_timeout`` applies to requests whose ``timeout`` is ``None``; ``None`` waits forever.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext | None = None, *, default_timeout: float | None = None
    ) -> None:
        self.ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()
        self.default_timeout = default_timeout

    def send(self, request: HttpRequest) -> HttpResponse:
        head = wire_head(request)
        timeout = request.timeout if request.timeout is not None else self.default_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        parts = urllib.parse.urlsplit(request.url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            sock = socket.create_connection((host, port), timeout=_left(deadline))
            try:
                if parts.scheme == "https":
                    sock.settimeout(_left(deadline))
                    sock = self.ssl_context.wrap_socket(sock, server_hostname=host)
                return _exchange(sock, head, request, deadline)
            finally:
                sock.close()
        except TimeoutError as exc:
            raise transport_error(request, exc, timed_out=True) from exc
        except (OSError, ValueError, h11.ProtocolError) as exc:
            raise transport_error(request, exc) from exc

    def open_stream(self, url: str, timeout: float) -> SocketStream:
        """A byte stream to ``url``'s origin, with this transport's ``ssl_context``."""
        return SocketStream.open(url, timeout, self.ssl_context)

    def close(self) -> None:
        """Nothing to release: every connection is closed after its request."""

    def __enter__(self) -> StdlibTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (``None``: no deadline); ``TimeoutError`` once it has passed."""
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("deadline passed")
    return remaining


def _exchange(
    sock: socket.socket, head: h11.Request, request: HttpRequest, deadline: float | None
) -> HttpResponse:
    conn = h11.Connection(our_role=h11.CLIENT)
    out = conn.send(head) or b""
    if request.body:
        out += conn.send(h11.Data(data=request.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    sock.settimeout(_left(deadline))
    sock.sendall(out)
    response: h11.Response | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            sock.settimeout(_left(deadline))
            conn.receive_data(sock.recv(_CHUNK))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and response is not None:
            return HttpResponse.from_h11(response, bytes(body), url=request.url)
        elif not isinstance(event, h11.InformationalResponse):
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} from the server")
