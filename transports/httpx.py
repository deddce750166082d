"""Sync and async transports over httpx. Install with ``pip install skyproto[httpx]``."""

from __future__ import annotations

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "skyproto.transports.httpx needs the 'httpx' package: pip install 'skyproto[httpx]'"
    ) from exc

from skyproto._http import HttpRequest, HttpResponse
from skyproto.errors import TransportError, TransportTimeout

__all__ = ["AsyncHttpxTransport", "HttpxTransport"]


def _to_httpx(client: httpx.Client | httpx.AsyncClient, request: HttpRequest) -> httpx.Request:
    req = client.build_request(request.method, request.url, content=request.body or None)
    # Replace whatever the client would add with exactly what the core decided.
    framing = {k: v for k, v in req.headers.items() if k in ("host", "content-length")}
    req.headers = httpx.Headers([*framing.items(), *request.headers])
    req.extensions["timeout"] = httpx.Timeout(request.timeout).as_dict()
    return req


def _error(exc: httpx.HTTPError, request: HttpRequest) -> TransportError:
    kind = TransportTimeout if isinstance(exc, httpx.TimeoutException) else TransportError
    return kind(f"{type(exc).__name__}: {request.method} {request.url}")


class HttpxTransport:
    """Send requests with an ``httpx.Client`` (yours, or a new one)."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._owned = client is None
        self.client = client if client is not None else httpx.Client()

    def send(self, request: HttpRequest) -> HttpResponse:
        self.client.cookies.clear()
        try:
            resp = self.client.send(_to_httpx(self.client, request), follow_redirects=False)
            try:
                body = resp.read()
            finally:
                resp.close()
        except httpx.HTTPError as exc:
            raise _error(exc, request) from exc
        finally:
            self.client.cookies.clear()
        return HttpResponse(resp.status_code, tuple(resp.headers.multi_items()), body, request.url)

    def close(self) -> None:
        if self._owned:
            self.client.close()

    def __enter__(self) -> HttpxTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncHttpxTransport:
    """Send requests with an ``httpx.AsyncClient`` (yours, or a new one)."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._owned = client is None
        self.client = client if client is not None else httpx.AsyncClient()

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.client.cookies.clear()
        try:
            resp = await self.client.send(_to_httpx(self.client, request), follow_redirects=False)
            try:
                body = await resp.aread()
            finally:
                await resp.aclose()
        except httpx.HTTPError as exc:
            raise _error(exc, request) from exc
        finally:
            self.client.cookies.clear()
        return HttpResponse(resp.status_code, tuple(resp.headers.multi_items()), body, request.url)

    async def aclose(self) -> None:
        if self._owned:
            await self.client.aclose()

    async def __aenter__(self) -> AsyncHttpxTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
