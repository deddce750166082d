"""Sync transport built from the standard library's ``socket`` and ``ssl``, plus h11.

One connection per request, closed once the response has been read: simple, and nothing leaks.
No proxy support. Connection budgets (docs/transports.md): at most ``poll_connections`` long
polls and ``connections`` other requests are in flight at once, each request waiting up to
``pool_timeout`` seconds for a slot of its budget.

Limits: the request's ``timeout`` (``default_timeout`` when it is ``None``) bounds the whole
exchange, connect, TLS handshake, send and every read, each wait shortened to what is left
(give or take 10 ms, to spare a system call on every read); only
the name lookup (``getaddrinfo``, which takes no timeout) is outside it. A response body over
``max_body_size`` bytes is a :class:`~skyproto.TransportError`, raised as soon as a
``Content-Length`` declares it or the bytes received pass it.
"""

from __future__ import annotations

import socket
import ssl
import urllib.parse

import h11
from skyproto.transports import (
    DEFAULT_CONNECTIONS,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_POLL_CONNECTIONS,
    DEFAULT_POOL_TIMEOUT,
    DEFAULT_TIMEOUT,
    BoundedBody,
    Budgets,
    SocketStream,
    WireHeads,
    check_limits,
    transport_error,
)

from skyproto import HttpRequest, HttpResponse

__all__ = ["StdlibTransport"]

_CHUNK = 65536


class StdlibTransport:
    """Send requests over plain sockets.

    ``ssl_context`` decides TLS trust for ``https`` URLs (default: the system's trust store).
    ``connections``, ``poll_connections`` and ``pool_timeout`` are the budgets (module
    docstring). ``default_timeout`` (seconds) applies to requests whose ``timeout`` is ``None``;
    ``max_body_size`` (bytes) bounds every response body.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        connections: int = DEFAULT_CONNECTIONS,
        poll_connections: int = DEFAULT_POLL_CONNECTIONS,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        default_timeout: float = DEFAULT_TIMEOUT,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()
        self.budgets = Budgets(connections, poll_connections, pool_timeout)
        self.default_timeout, self.max_body_size = check_limits(default_timeout, max_body_size)
        self._heads: WireHeads[_Head] = WireHeads(_prepared_head)

    def send(self, request: HttpRequest) -> HttpResponse:
        with self.budgets.slot(request):
            return self._send(request)

    def _send(self, request: HttpRequest) -> HttpResponse:
        head, tls, host, port = self._heads.get(request)
        bounded = BoundedBody(request, self.default_timeout, self.max_body_size)
        try:
            sock = socket.create_connection((host, port), timeout=bounded.left())
            try:
                if tls:
                    _shorten(sock, bounded)
                    sock = self.ssl_context.wrap_socket(sock, server_hostname=host)
                return _exchange(sock, head, request, bounded)
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
        """Forget the heads sent (every connection is closed after its request)."""
        self._heads.clear()

    def __enter__(self) -> StdlibTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: A request's head, whether it goes over TLS, and the host and port it goes to.
_Head = tuple[h11.Request, bool, str, int]


def _prepared_head(request: HttpRequest, head: h11.Request) -> _Head:
    parts = urllib.parse.urlsplit(request.url)
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError as exc:
        raise transport_error(request, exc) from exc
    return head, tls, parts.hostname or "", port


def _exchange(
    sock: socket.socket, head: h11.Request, request: HttpRequest, bounded: BoundedBody
) -> HttpResponse:
    conn = h11.Connection(our_role=h11.CLIENT)
    out = conn.send(head) or b""
    if request.body:
        out += conn.send(h11.Data(data=request.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    _shorten(sock, bounded)
    sock.sendall(out)
    response: h11.Response | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            _shorten(sock, bounded)
            conn.receive_data(sock.recv(_CHUNK))
        elif isinstance(event, h11.Response):
            response = event
            bounded.declared(event.status_code, _content_length(event))
        elif isinstance(event, h11.Data):
            bounded.add(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage) and response is not None:
            return HttpResponse.from_h11(response, bounded.body(), url=request.url)
        elif not isinstance(event, h11.InformationalResponse):
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} from the server")


#: How far past the deadline a wait may end (seconds): setting a socket's timeout is a system
#: call, so it is shortened only when the one it has would overrun by more than this.
_SLACK = 0.01


def _shorten(sock: socket.socket, bounded: BoundedBody) -> None:
    """Make the socket's next wait end by the exchange's deadline (within :data:`_SLACK`)."""
    left = bounded.left()
    current = sock.gettimeout()
    if current is None or current - left > _SLACK:
        sock.settimeout(left)


def _content_length(event: h11.Response) -> str | None:
    # The raw list, not the Headers sequence: that one makes a tuple per line in Python.
    values = [
        v.decode("latin-1") for k, v in event.headers.raw_items() if k.lower() == b"content-length"
    ]
    return ", ".join(values) if values else None
