"""Sync transport over a ``requests.Session``. Install with ``pip install 'skyproto[requests]'``.

The request goes straight to the session's adapter for its URL (``session.get_adapter``), which
is what keeps it thin and honest: the session's cookie jar, default headers, params, auth,
hooks and redirect handling never see it. What the user configured on the session still applies:
mounted adapters (pools, retries), ``verify``, ``cert``, ``proxies`` and, with ``trust_env``, the
environment's proxies and its CA bundle (the latter only while ``verify`` is left at ``True``).

Two urllib3 habits remain: it upper-cases percent-escapes in the request target (``%7b`` goes
out as ``%7B``; the core writes them upper-case anyway), and response headers come back grouped
by name, the values of a repeated name (``Set-Cookie``) separate and in order. Needs urllib3 2.

Limits: the request's ``timeout`` (``default_timeout`` when it is ``None``) is urllib3's ``total``
for the connect and the response head, and every read of the body then waits only for what is
left of it, so a server that trickles its answer is cut off at the deadline. What it cannot
bound: the name lookup (``getaddrinfo`` takes no timeout), and within the head each read waits
at most what was left when the head began. A response body over ``max_body_size`` bytes is a
:class:`~skyproto.TransportError`, raised as soon as a ``Content-Length`` declares it or the
bytes received pass it. A timeout an adapter of yours would set is not used: there is always
one of ours.

Connection budgets (docs/transports.md): each request first takes a slot of its budget
(``poll_connections`` long polls and ``connections`` other requests in flight at most, waiting up
to ``pool_timeout`` seconds for one). The slots bound the connections; urllib3's pool is a stack
of idle connections with no cost per connection, so, unlike httpx's, it needs no separate pool
for long polls: the session this transport creates serves both budgets, and a poll goes out on
the connection the login just used, as a browser's would. Its pools keep up to
``connections + poll_connections`` idle connections per host, and, never blocking, are not
filled with a placeholder per slot first (urllib3 does that for pools that block, and 2,080 of
them cost 4 ms per host to make and as much to drain). A ``session`` you pass in serves both
budgets too, unless you pass a ``poll_session`` for the polls.
"""

from __future__ import annotations

import queue
import socket
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any

import h11

try:
    import requests
    import urllib3
    from urllib3 import HTTPHeaderDict
    from urllib3.util import SKIP_HEADER
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "skyproto.transports.requests needs the 'requests' package: "
        "pip install 'skyproto[requests]'"
    ) from exc

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
    ssl_context_for_verify,
    transport_error,
    wire_headers,
)

from skyproto import HttpRequest, HttpResponse

__all__ = ["RequestsTransport"]

_CHUNK = 65536


class RequestsTransport:
    """Send requests through ``requests.Session`` objects (yours, configured as you like, or new).

    Long polls go through ``poll_session``, everything else through ``session`` (the module
    docstring says how the budgets ``connections``, ``poll_connections`` and ``pool_timeout``
    bound them). ``default_timeout`` (seconds) applies to requests whose ``timeout`` is
    ``None``; ``max_body_size`` (bytes) bounds every response body. ``close()`` closes only the
    sessions this transport created.
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        poll_session: requests.Session | None = None,
        connections: int = DEFAULT_CONNECTIONS,
        poll_connections: int = DEFAULT_POLL_CONNECTIONS,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        default_timeout: float = DEFAULT_TIMEOUT,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.default_timeout, self.max_body_size = check_limits(default_timeout, max_body_size)
        self.budgets = Budgets(connections, poll_connections, pool_timeout)
        self._owned: list[requests.Session] = []
        if session is None:
            session = self._new_session(self.budgets.connections + self.budgets.poll_connections)
        self.session = session
        self.poll_session = poll_session if poll_session is not None else session
        self._heads: WireHeads[tuple[str, tuple[tuple[str, str], ...]]] = WireHeads(_prepared_head)

    def _new_session(self, connections: int) -> requests.Session:
        session = requests.Session()
        # The budgets bound the connections in use; the pools keep them all alive.
        adapter = _UnfilledAdapter(pool_maxsize=connections)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._owned.append(session)
        return session

    def send(self, request: HttpRequest) -> HttpResponse:
        with self.budgets.slot(request):
            return self._send(request)

    def _send(self, request: HttpRequest) -> HttpResponse:
        bounded = BoundedBody(request, self.default_timeout, self.max_body_size)
        prepared = requests.PreparedRequest()
        prepared.method = request.method
        prepared.url, lines = self._heads.get(request)
        prepared.headers = _ExactHeaders(lines)  # type: ignore[assignment]
        prepared.body = request.body or None
        session = self.poll_session if request.long_poll else self.session
        settings = session.merge_environment_settings(prepared.url, {}, None, None, None)
        # Unlike requests itself, an explicit session.verify beats the environment's CA bundle.
        verify = settings["verify"] if session.verify is True else session.verify
        verify = True if verify is None else verify
        try:
            response = session.get_adapter(prepared.url).send(
                prepared,
                stream=True,
                verify=verify,
                cert=settings["cert"],
                proxies=settings["proxies"],
                # requests passes a urllib3 Timeout through; its stubs only know numbers.
                timeout=urllib3.Timeout(total=bounded.left()),  # type: ignore[arg-type]
            )
            try:
                raw = response.raw
                headers = tuple(raw.headers.items())
                bounded.declared(response.status_code, raw.headers.get("content-length"))
                while True:
                    _shorten_reads(raw, bounded.left())
                    chunk = raw.read1(_CHUNK, decode_content=False)
                    if not chunk:
                        break
                    bounded.add(chunk)
            finally:
                response.close()
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
            raise transport_error(request, exc, timed_out=True) from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise transport_error(request, exc) from exc
        return HttpResponse(response.status_code, headers, bounded.body(), request.url)

    def open_stream(self, url: str, timeout: float) -> SocketStream:
        """A byte stream to ``url``'s origin, verified as ``session.verify`` says (no proxy)."""
        return SocketStream.open(url, timeout, ssl_context_for_verify(self.session.verify))

    def close(self) -> None:
        """Close the sessions this transport created, and forget the heads sent."""
        self._heads.clear()
        for session in self._owned:
            session.close()

    def __enter__(self) -> RequestsTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _prepared_head(
    request: HttpRequest, head: h11.Request
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The URL and the exact lines to send, with markers that stop urllib3 adding
    ``User-Agent`` or ``Accept-Encoding``."""
    parts = urllib.parse.urlsplit(request.url)
    url = f"{parts.scheme}://{parts.netloc}{head.target.decode('ascii')}"
    lines = wire_headers(head)
    present = {name.lower() for name, _ in lines}
    lines += [
        (name, SKIP_HEADER)
        for name in ("User-Agent", "Accept-Encoding")
        if name.lower() not in present
    ]
    return url, tuple(lines)  # shared by every request with this head: kept immutable


class _UnfilledQueue(queue.LifoQueue[Any]):
    """A pool's stack of idle connections, without the ``None`` placeholders.

    urllib3 puts one ``None`` per slot into a new pool so that a blocking ``get`` waits for a
    slot. Our pools never block (``block=False``, requests' default): an empty stack means
    "open a new connection", so the placeholders are only cost.
    """

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is not None:
            super().put(item, block, timeout)


class _UnfilledHTTPPool(urllib3.HTTPConnectionPool):
    QueueCls = _UnfilledQueue


class _UnfilledHTTPSPool(urllib3.HTTPSConnectionPool):
    QueueCls = _UnfilledQueue


class _UnfilledAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose pools (proxies aside) are the unfilled, never-blocking kind."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["block"] = False
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _UnfilledHTTPPool,
            "https": _UnfilledHTTPSPool,
        }


def _shorten_reads(raw: urllib3.BaseHTTPResponse, seconds: float) -> None:
    """Make the next read of ``raw``'s connection wait at most ``seconds``."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if isinstance(sock, socket.socket):
        sock.settimeout(seconds)


class _ExactHeaders(HTTPHeaderDict):
    """An ``HTTPHeaderDict`` that replays its lines in the order given.

    urllib3 sends a header dict's lines grouped by name, in the case of the name's first
    appearance; this sends them exactly as given instead. If anything changed the lines since
    (proxy headers merged in, an adapter subclass adding some), it falls back to grouping.
    """

    def __init__(self, lines: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self._lines = list(lines)
        for name, value in self._lines:
            self.add(name, value)

    def copy(self) -> _ExactHeaders:
        clone = super().copy()
        clone._lines = list(self._lines)
        return clone

    def iteritems(self) -> Iterator[tuple[str, str]]:
        grouped = list(super().iteritems())
        if sorted((k.lower(), v) for k, v in grouped) == sorted(
            (k.lower(), v) for k, v in self._lines
        ):
            return iter(self._lines)
        return iter(grouped)
