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
``connections`` in flight at most, waiting up to ``pool_timeout`` seconds for one). The clients
these transports create have pools of exactly those sizes, so httpcore never queues a request
itself (its pool scans every queued request against every connection). A ``client`` you pass in
serves both budgets unless you pass a ``poll_client`` too; give it ``limits`` to match.
"""

from __future__ import annotations

import http.cookiejar
import urllib.parse

try:
    import anyio
    import httpx
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "skyproto.transports.httpx needs the 'httpx' package: pip install 'skyproto[httpx]'"
    ) from exc

from skyproto._http import HttpRequest, HttpResponse
from skyproto.calls import check_seconds

from ._budget import (
    DEFAULT_CONNECTIONS,
    DEFAULT_POLL_CONNECTIONS,
    DEFAULT_POOL_TIMEOUT,
    Budgets,
    check_connections,
    pool_timeout_error,
)
from ._drive import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_TIMEOUT,
    BoundedBody,
    check_body_size,
    transport_error,
    wire_head,
    wire_headers,
)

__all__ = ["AsyncHttpxTransport", "HttpxTransport", "pool_limits", "refusing_cookie_jar"]


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


def _to_httpx(request: HttpRequest, bounded: BoundedBody) -> httpx.Request:
    head = wire_head(request)
    parts = urllib.parse.urlsplit(request.url)
    url = httpx.URL(f"{parts.scheme}://{parts.netloc}").copy_with(raw_path=head.target)
    return httpx.Request(
        request.method,
        url,
        headers=wire_headers(head),
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
        self.default_timeout = check_seconds(default_timeout, "default_timeout")
        self.max_body_size = check_body_size(max_body_size)
        self.budgets = Budgets(connections, poll_connections, pool_timeout)
        self._owned: list[httpx.Client] = []
        if client is None:
            client = self._new_client(connections)
        self.client = client
        self.poll_client = poll_client if poll_client is not None else client
        if poll_client is None and self._owned:
            self.poll_client = self._new_client(poll_connections)

    def _new_client(self, connections: int) -> httpx.Client:
        client = httpx.Client(cookies=refusing_cookie_jar(), limits=pool_limits(connections))
        self._owned.append(client)
        return client

    def send(self, request: HttpRequest) -> HttpResponse:
        with self.budgets.slot(request):
            return self._send(request)

    def _send(self, request: HttpRequest) -> HttpResponse:
        bounded = BoundedBody(request, self.default_timeout, self.max_body_size)
        outgoing = _to_httpx(request, bounded)
        client = self.poll_client if request.long_poll else self.client
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

    def close(self) -> None:
        """Close the clients this transport created."""
        for client in self._owned:
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
        self.default_timeout = check_seconds(default_timeout, "default_timeout")
        self.max_body_size = check_body_size(max_body_size)
        self.budgets = _AsyncBudgets(connections, poll_connections, pool_timeout)
        self._owned: list[httpx.AsyncClient] = []
        if client is None:
            client = self._new_client(connections)
        self.client = client
        self.poll_client = poll_client if poll_client is not None else client
        if poll_client is None and self._owned:
            self.poll_client = self._new_client(poll_connections)

    def _new_client(self, connections: int) -> httpx.AsyncClient:
        client = httpx.AsyncClient(cookies=refusing_cookie_jar(), limits=pool_limits(connections))
        self._owned.append(client)
        return client

    async def send(self, request: HttpRequest) -> HttpResponse:
        with await self.budgets.acquire(request):
            return await self._send(request)

    async def _send(self, request: HttpRequest) -> HttpResponse:
        bounded = BoundedBody(request, self.default_timeout, self.max_body_size)
        outgoing = _to_httpx(request, bounded)
        client = self.poll_client if request.long_poll else self.client
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

    async def aclose(self) -> None:
        """Close the clients this transport created."""
        for client in self._owned:
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
