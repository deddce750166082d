"""Sync transport over a ``requests.Session``. Install with ``pip install 'skyproto[requests]'``.

The request goes straight to the session's adapter for its URL (``session.get_adapter``), which
is what keeps it thin and honest: the session's cookie jar, default headers, params, auth,
hooks and redirect handling never see it. What the user configured on the session still applies:
mounted adapters (pools, retries), ``verify``, ``cert``, ``proxies`` and, with ``trust_env``, the
environment's proxies and its CA bundle (the latter only while ``verify`` is left at ``True``).

Two urllib3 habits remain: it upper-cases percent-escapes in the request target (``%7b`` goes
out as ``%7B``; the core writes them upper-case anyway), and response headers come back grouped
by name, the values of a repeated name (``Set-Cookie``) separate and in order. Needs urllib3 2.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any

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

from skyproto._http import HttpRequest, HttpResponse

from ._drive import transport_error, wire_head, wire_headers
from ._streams import SocketStream, ssl_context_for_verify

__all__ = ["RequestsTransport"]


class RequestsTransport:
    """Send requests through ``session`` (yours, configured as you like, or a new one).

    A request whose ``timeout`` is ``None`` gets the adapter's own default (none, unless your
    adapter sets one). ``close()`` closes the session only if this transport created it.
    """

    def __init__(self, session: requests.Session | None = None) -> None:
        self._owned = session is None
        self.session = session if session is not None else requests.Session()

    def open_stream(self, url: str, timeout: float) -> SocketStream:
        """A byte stream to ``url``'s origin, verified as ``session.verify`` says (no proxy)."""
        return SocketStream.open(url, timeout, ssl_context_for_verify(self.session.verify))

    def send(self, request: HttpRequest) -> HttpResponse:
        head = wire_head(request)
        prepared = requests.PreparedRequest()
        prepared.method = request.method
        parts = urllib.parse.urlsplit(request.url)
        prepared.url = f"{parts.scheme}://{parts.netloc}{head.target.decode('ascii')}"
        # The exact lines, plus markers that stop urllib3 adding User-Agent or Accept-Encoding.
        lines = wire_headers(head)
        present = {name.lower() for name, _ in lines}
        lines += [
            (name, SKIP_HEADER)
            for name in ("User-Agent", "Accept-Encoding")
            if name.lower() not in present
        ]
        prepared.headers = _ExactHeaders(lines)  # type: ignore[assignment]
        prepared.body = request.body or None
        settings = self.session.merge_environment_settings(prepared.url, {}, None, None, None)
        # Unlike requests itself, an explicit session.verify beats the environment's CA bundle.
        verify = settings["verify"] if self.session.verify is True else self.session.verify
        verify = True if verify is None else verify
        # Without a timeout of ours, the adapter's own default stands.
        timeout: dict[str, Any] = {} if request.timeout is None else {"timeout": request.timeout}
        try:
            response = self.session.get_adapter(prepared.url).send(
                prepared,
                stream=True,
                verify=verify,
                cert=settings["cert"],
                proxies=settings["proxies"],
                **timeout,
            )
            try:
                body = response.raw.read(decode_content=False)
                headers = tuple(response.raw.headers.items())
            finally:
                response.close()
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
            raise transport_error(request, exc, timed_out=True) from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise transport_error(request, exc) from exc
        return HttpResponse(response.status_code, headers, body, request.url)

    def close(self) -> None:
        """Close the session, if this transport created it."""
        if self._owned:
            self.session.close()

    def __enter__(self) -> RequestsTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
