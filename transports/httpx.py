"""Sync and async transports over httpx. Install with ``pip install 'skyproto[httpx]'``.

Each request is built as an ``httpx.Request`` carrying exactly the core's header lines, then sent
with ``client.send(..., auth=None, follow_redirects=False)``: the client's default headers,
cookies, params, base URL, auth and timeout are never applied to it. What the user configured on
the client still applies: its transport or mounts (pools, proxies, TLS ``verify``) and event
hooks.

Cookies: the core's requests never carry the client's jar. A client these transports create
refuses to store cookies at all. httpx stores ``Set-Cookie`` answers in the jar of a client you
pass in (skyproto never sends them); give it ``cookies=refusing_cookie_jar()`` to keep it empty.

Limits: the request's ``timeout`` (``default_timeout`` when it is ``None``) is httpx's connect,
write, pool and read timeout, and the deadline is checked between the chunks of the body. The
async transport also runs the whole exchange, name lookup included, under that deadline
(``anyio.fail_after``), so it is the exact bound. The sync one cannot shorten a read already
waiting: a server that trickles its answer is cut off at the first chunk after the deadline, at
most one ``timeout`` late; nor can it bound the name lookup (``getaddrinfo`` takes no timeout).
A response body over ``max_body_size`` bytes is a
:class:`~skyproto.TransportError`, raised as soon as a ``Content-Length`` declares it or the
bytes received pass it.

Connection budgets (docs/transports.md): long polls go to ``poll_client`` and everything else to
``client``, each request first taking a slot of its budget (``poll_connections`` and
``connections`` in flight at most, waiting up to ``pool_timeout`` seconds for one). A ``client``
you pass in serves both budgets unless you pass a ``poll_client`` too; give it ``limits`` to match.

Pool sizes: httpcore's pool does work in proportion to its connections each time a request
enters or leaves it (more for each idle one, whose socket it inspects), so one pool of a
thousand connections makes every request cost a thousand steps. The transports that create
their clients therefore spread each budget over small clients of :data:`POOL_SHARD` connections
each, made as the load needs them and sharing one TLS context; a request goes to the most
recently used client with a free connection, so the connections stay warm and the idle clients
drain. (:attr:`client` and :attr:`poll_client` are the first of each.)
"""

from __future__ import annotations

import functools
import http.cookiejar
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from typing import Generic, TypeVar

import h11

try:
    import anyio
    import httpx
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "skyproto.transports.httpx needs the 'httpx' package: pip install 'skyproto[httpx]'"
    ) from exc

from skyproto.transports import (
    DEFAULT_CONNECTIONS,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_POLL_CONNECTIONS,
    DEFAULT_POOL_TIMEOUT,
    DEFAULT_TIMEOUT,
    AsyncioStream,
    BoundedBody,
    Budgets,
    SocketStream,
    WireHeads,
    check_connections,
    check_limits,
    check_seconds,
    pool_timeout_error,
    transport_error,
    wire_headers,
)

from skyproto import HttpRequest, HttpResponse

__all__ = [
    "POOL_SHARD",
    "AsyncHttpxTransport",
    "HttpxTransport",
    "pool_limits",
]

#: Connections per httpx client (one pool) in the budgets of the transports' own clients.
POOL_SHARD = 4

_C = TypeVar("_C", httpx.Client, httpx.AsyncClient)


def refusing_cookie_jar() -> http.cookiejar.CookieJar:
    """A cookie jar that neither stores nor returns any cookie."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def pool_limits(connections: int) -> httpx.Limits:
    """The ``httpx.Limits`` of a pool sized to a budget of ``connections``.

    Every connection may be kept alive: httpcore closes idle connections as soon as its pool
    holds more connections than ``max_keepalive_connections``, so a lower value would close and
    reopen connections under load.
    """
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections)


class _Shards(Generic[_C]):
    """One budget's clients: yours alone, or small ones of ours made as the load needs them.

    :meth:`take` hands out a client with a free connection (the last one given back: a stack of
    free slots, so the same few pools stay busy and warm); the caller's budget semaphore keeps
    the slots taken at most ``connections``.
    """

    def __init__(self, first: _C, make: Callable[[int], _C] | None, connections: int) -> None:
        self.clients: list[_C] = [first]
        self._make: Callable[[int], _C] | None = make
        self._left = connections - POOL_SHARD
        self._free = [0] * min(POOL_SHARD, connections) if make is not None else []
        self._lock = threading.Lock()

    def take(self) -> int:
        if self._make is None:
            return 0
        with self._lock:
            if self._free:
                return self._free.pop()
            size = min(POOL_SHARD, max(1, self._left))
            self._left -= size
            index = len(self.clients)
            self.clients.append(self._make(size))
            self._free.extend([index] * (size - 1))
            return index

    def give(self, index: int) -> None:
        if self._make is not None:
            with self._lock:
                self._free.append(index)


class _Pools(Generic[_C]):
    """A transport's two budgets' clients: the ones you passed in, or ours, sharded.

    Without a ``client`` it makes the clients of both budgets (:meth:`_new`: refusing cookies,
    sized to :data:`POOL_SHARD`, sharing one TLS context) and lists them in :attr:`owned`, for
    the transport to close. A ``client`` of yours serves both budgets unless a ``poll_client``
    is given too.
    """

    def __init__(
        self,
        kind: type[_C],
        client: _C | None,
        poll_client: _C | None,
        budgets: Budgets | _AsyncBudgets,
    ) -> None:
        self.owned: list[_C] = []
        self._kind: type[_C] = kind
        self._tls: ssl.SSLContext | None = None
        make = self._new if client is None else None
        self.client: _C = client if client is not None else self._new(POOL_SHARD)
        self._shards: _Shards[_C] = _Shards(self.client, make, budgets.connections)
        if poll_client is None and client is None:
            poll_client = self._new(POOL_SHARD)
            self._poll_shards: _Shards[_C] = _Shards(poll_client, make, budgets.poll_connections)
        else:
            poll_client = poll_client if poll_client is not None else self.client
            self._poll_shards = _Shards(poll_client, None, budgets.poll_connections)
        self.poll_client: _C = poll_client

    def shards(self, request: HttpRequest) -> _Shards[_C]:
        """The clients of ``request``'s budget."""
        return self._poll_shards if request.long_poll else self._shards

    def _new(self, connections: int) -> _C:
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        client = self._kind(
            cookies=refusing_cookie_jar(), limits=pool_limits(connections), verify=self._tls
        )
        self.owned.append(client)
        return client


@functools.lru_cache(maxsize=64)
def _origin(origin: str) -> httpx.URL:
    # httpx.URL is immutable; parsing the same few origins for every request cost a twentieth
    # of an exchange on loopback.
    return httpx.URL(origin)


def _client_ssl_context(client: httpx.Client | httpx.AsyncClient) -> ssl.SSLContext | None:
    """The TLS context the client's own connection pool verifies with, when it has one."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    context = getattr(pool, "_ssl_context", None)
    return context if isinstance(context, ssl.SSLContext) else None


#: A request's URL (its target exactly as the core wrote it) and the exact lines to send.
_Head = tuple[httpx.URL, tuple[tuple[str, str], ...]]


def _prepared_head(request: HttpRequest, head: h11.Request) -> _Head:
    """The URL, its target exactly as the core wrote it, and the exact lines to send."""
    parts = urllib.parse.urlsplit(request.url)
    url = _origin(f"{parts.scheme}://{parts.netloc}").copy_with(raw_path=head.target)
    return url, tuple(wire_headers(head))  # shared by every request with this head


def _to_httpx(
    request: HttpRequest,
    bounded: BoundedBody,
    heads: WireHeads[_Head],
) -> httpx.Request:
    url, lines = heads.get(request)
    return httpx.Request(
        request.method,
        url,
        headers=lines,
        content=request.body or None,
        extensions={"timeout": httpx.Timeout(bounded.left()).as_dict()},
    )


def _response(request: HttpRequest, response: httpx.Response, body: bytes) -> HttpResponse:
    headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw)
    return HttpResponse(response.status_code, headers, body, request.url)


def _declared(bounded: BoundedBody, response: httpx.Response) -> None:
    values = response.headers.get_list("content-length")
    bounded.declared(response.status_code, ", ".join(values) if values else None)


class HttpxTransport:
    """Send requests with ``httpx.Client`` objects (yours, configured as you like, or new ones).

    Long polls go to ``poll_client``, everything else to ``client`` (the module docstring says
    how the budgets ``connections``, ``poll_connections`` and ``pool_timeout`` bound them).
    ``default_timeout`` (seconds) applies to requests whose ``timeout`` is ``None``;
    ``max_body_size`` (bytes) bounds every response body. ``close()`` closes only the clients
    this transport created.
    """

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        poll_client: httpx.Client | None = None,
        connections: int = DEFAULT_CONNECTIONS,
        poll_connections: int = DEFAULT_POLL_CONNECTIONS,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        default_timeout: float = DEFAULT_TIMEOUT,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.default_timeout, self.max_body_size = check_limits(default_timeout, max_body_size)
        self.budgets = Budgets(connections, poll_connections, pool_timeout)
        self._pools = _Pools(httpx.Client, client, poll_client, self.budgets)
        self.client = self._pools.client
        self.poll_client = self._pools.poll_client
        self._heads: WireHeads[_Head] = WireHeads(_prepared_head)

    def send(self, request: HttpRequest) -> HttpResponse:
        with self.budgets.slot(request):
            shards = self._pools.shards(request)
            index = shards.take()
            try:
                return self._send(request, shards.clients[index])
            finally:
                shards.give(index)

    def _send(self, request: HttpRequest, client: httpx.Client) -> HttpResponse:
        bounded = BoundedBody(request, self.default_timeout, self.max_body_size)
        outgoing = _to_httpx(request, bounded, self._heads)
        try:
            response = client.send(outgoing, stream=True, auth=None, follow_redirects=False)
            try:
                _declared(bounded, response)
                for chunk in response.iter_raw():
                    bounded.add(chunk)
                    bounded.left()
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise transport_error(request, exc, timed_out=True) from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise transport_error(request, exc) from exc
        return _response(request, response, bounded.body())

    def open_stream(self, url: str, timeout: float) -> SocketStream:
        """A byte stream to ``url``'s origin, with the client's TLS context (no proxy)."""
        return SocketStream.open(url, timeout, _client_ssl_context(self.client))

    def close(self) -> None:
        """Close the clients this transport created, and forget the heads sent."""
        self._heads.clear()
        for client in self._pools.owned:
            client.close()

    def __enter__(self) -> HttpxTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncHttpxTransport:
    """Send requests with ``httpx.AsyncClient`` objects (yours, configured as you like, or new ones).

    Long polls go to ``poll_client``, everything else to ``client`` (the module docstring says
    how the budgets ``connections``, ``poll_connections`` and ``pool_timeout`` bound them).
    ``default_timeout`` (seconds) applies to requests whose ``timeout`` is ``None``;
    ``max_body_size`` (bytes) bounds every response body. ``aclose()`` closes only the clients
    this transport created.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        poll_client: httpx.AsyncClient | None = None,
        connections: int = DEFAULT_CONNECTIONS,
        poll_connections: int = DEFAULT_POLL_CONNECTIONS,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        default_timeout: float = DEFAULT_TIMEOUT,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.default_timeout, self.max_body_size = check_limits(default_timeout, max_body_size)
        self.budgets = _AsyncBudgets(connections, poll_connections, pool_timeout)
        self._pools = _Pools(httpx.AsyncClient, client, poll_client, self.budgets)
        self.client = self._pools.client
        self.poll_client = self._pools.poll_client
        self._heads: WireHeads[_Head] = WireHeads(_prepared_head)

    async def send(self, request: HttpRequest) -> HttpResponse:
        with await self.budgets.acquire(request):
            shards = self._pools.shards(request)
            index = shards.take()
            try:
                return await self._send(request, shards.clients[index])
            finally:
                shards.give(index)

    async def _send(self, request: HttpRequest, client: httpx.AsyncClient) -> HttpResponse:
        bounded = BoundedBody(request, self.default_timeout, self.max_body_size)
        outgoing = _to_httpx(request, bounded, self._heads)
        try:
            with anyio.fail_after(bounded.left()):
                response = await client.send(
                    outgoing, stream=True, auth=None, follow_redirects=False
                )
                try:
                    _declared(bounded, response)
                    async for chunk in response.aiter_raw():
                        bounded.add(chunk)
                finally:
                    await response.aclose()
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise transport_error(request, exc, timed_out=True) from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise transport_error(request, exc) from exc
        return _response(request, response, bounded.body())

    async def open_stream(self, url: str, timeout: float) -> AsyncioStream:
        """A byte stream to ``url``'s origin, with the client's TLS context (no proxy)."""
        return await AsyncioStream.open(url, timeout, _client_ssl_context(self.client))

    async def aclose(self) -> None:
        """Close the clients this transport created, and forget the heads sent."""
        self._heads.clear()
        for client in self._pools.owned:
            await client.aclose()

    async def __aenter__(self) -> AsyncHttpxTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _AsyncBudgets:
    """The two budgets of an async transport: the twin of ``_budget.Budgets``, on anyio."""

    def __init__(self, connections: int, poll_connections: int, pool_timeout: float) -> None:
        self.connections = check_connections(connections, "connections")
        self.poll_connections = check_connections(poll_connections, "poll_connections")
        self.pool_timeout = check_seconds(pool_timeout, "pool_timeout")
        self._short = anyio.Semaphore(self.connections)
        self._poll = anyio.Semaphore(self.poll_connections)

    async def acquire(self, request: HttpRequest) -> _AsyncSlot:
        """Take a slot of ``request``'s budget; leaving the returned context gives it back."""
        semaphore = self._poll if request.long_poll else self._short
        try:
            semaphore.acquire_nowait()
        except anyio.WouldBlock:
            try:
                with anyio.fail_after(self.pool_timeout):
                    await semaphore.acquire()
            except TimeoutError:
                raise pool_timeout_error(request) from None
        return _AsyncSlot(semaphore)


class _AsyncSlot:
    __slots__ = ("_semaphore",)

    def __init__(self, semaphore: anyio.Semaphore) -> None:
        self._semaphore = semaphore

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self._semaphore.release()
