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
"""

from __future__ import annotations

import functools
import http.cookiejar
import ssl
import urllib.parse

try:
    import anyio
    import httpx
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "skyproto.transports.httpx needs the 'httpx' package: pip install 'skyproto[httpx]'"
    ) from exc

from skyproto.transports import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_TIMEOUT,
    AsyncioStream,
    BoundedBody,
    SocketStream,
    check_body_size,
    check_seconds,
    transport_error,
    wire_head,
    wire_headers,
)

from skyproto import HttpRequest, HttpResponse

__all__ = ["AsyncHttpxTransport", "HttpxTransport"]


def refusing_cookie_jar() -> http.cookiejar.CookieJar:
    """A cookie jar that neither stores nor returns any cookie."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


@functools.lru_cache(maxsize=64)
def _origin(origin: str) -> httpx.URL:
    # httpx.URL is immutable; parsing the same few origins for every request cost a twentieth
    # of an exchange on loopback.
    return httpx.URL(origin)


def _to_httpx(request: HttpRequest, bounded: BoundedBody) -> httpx.Request:
    head = wire_head(request)
    parts = urllib.parse.urlsplit(request.url)
    url = _origin(f"{parts.scheme}://{parts.netloc}").copy_with(raw_path=head.target)
    return httpx.Request(
        request.method,
        url,
        headers=wire_headers(head),
        content=request.body or None,
        extensions={"timeout": httpx.Timeout(bounded.left()).as_dict()},
    )


def _client_ssl_context(client: httpx.Client | httpx.AsyncClient) -> ssl.SSLContext | None:
    """The TLS context the client's own connection pool verifies with, when it has one."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    context = getattr(pool, "_ssl_context", None)
    return context if isinstance(context, ssl.SSLContext) else None


def _response(request: HttpRequest, response: httpx.Response, body: bytes) -> HttpResponse:
    headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw)
    return HttpResponse(response.status_code, headers, body, request.url)


def _declared(bounded: BoundedBody, response: httpx.Response) -> None:
    values = response.headers.get_list("content-length")
    bounded.declared(response.status_code, ", ".join(values) if values else None)


class HttpxTransport:
    """Send requests with an ``httpx.Client`` (yours, configured as you like, or a new one).

    ``default_timeout`` (seconds) applies to requests whose ``timeout`` is ``None``;
    ``max_body_size`` (bytes) bounds every response body. ``close()`` closes the client only if
    this transport created it.
    """

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        default_timeout: float = DEFAULT_TIMEOUT,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.default_timeout = check_seconds(default_timeout, "default_timeout")
        self.max_body_size = check_body_size(max_body_size)
        self._owned = client is None
        self.client = client if client is not None else httpx.Client(cookies=refusing_cookie_jar())

    def send(self, request: HttpRequest) -> HttpResponse:
        bounded = BoundedBody(request, self.default_timeout, self.max_body_size)
        outgoing = _to_httpx(request, bounded)
        try:
            response = self.client.send(outgoing, stream=True, auth=None, follow_redirects=False)
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
        """Close the client, if this transport created it."""
        if self._owned:
            self.client.close()

    def __enter__(self) -> HttpxTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncHttpxTransport:
    """Send requests with an ``httpx.AsyncClient`` (yours, configured as you like, or a new one).

    ``default_timeout`` (seconds) applies to requests whose ``timeout`` is ``None``;
    ``max_body_size`` (bytes) bounds every response body. ``aclose()`` closes the client only
    if this transport created it.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        default_timeout: float = DEFAULT_TIMEOUT,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.default_timeout = check_seconds(default_timeout, "default_timeout")
        self.max_body_size = check_body_size(max_body_size)
        self._owned = client is None
        self.client = (
            client if client is not None else httpx.AsyncClient(cookies=refusing_cookie_jar())
        )

    async def send(self, request: HttpRequest) -> HttpResponse:
        bounded = BoundedBody(request, self.default_timeout, self.max_body_size)
        outgoing = _to_httpx(request, bounded)
        try:
            with anyio.fail_after(bounded.left()):
                response = await self.client.send(
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
        """Close the client, if this transport created it."""
        if self._owned:
            await self.client.aclose()

    async def __aenter__(self) -> AsyncHttpxTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
