"""Sync transport over a ``requests.Session``. Install with ``pip install skyproto[requests]``."""

from __future__ import annotations

try:
    import requests
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "skyproto.transports.requests needs the 'requests' package: "
        "pip install 'skyproto[requests]'"
    ) from exc

from skyproto._http import HttpRequest, HttpResponse
from skyproto.errors import TransportError, TransportTimeout

__all__ = ["RequestsTransport"]


class RequestsTransport:
    """Send requests with ``session`` (yours, configured as you like, or a new one).

    Redirects are not followed and no cookie is kept between requests: the core decides both.
    """

    def __init__(self, session: requests.Session | None = None) -> None:
        self._owned = session is None
        self.session = session if session is not None else requests.Session()
        # requests adds Accept, Accept-Encoding, Connection and User-Agent by default.
        if self._owned:
            self.session.headers.clear()

    def send(self, request: HttpRequest) -> HttpResponse:
        self.session.cookies.clear()
        prepared = requests.Request(
            request.method, request.url, headers=dict(_merge(request)), data=request.body or None
        ).prepare()
        prepared.url = request.url  # exactly as the core built it
        for name in [n for n in prepared.headers if n.lower() not in _framing(request)]:
            del prepared.headers[name]
        prepared.headers.update(_merge(request))
        try:
            with self.session.send(
                prepared, allow_redirects=False, timeout=request.timeout, stream=True
            ) as resp:
                body = resp.raw.read(decode_content=True)
                headers = [(k, v) for k, v in resp.raw.headers.items()]
        except requests.Timeout as exc:
            raise TransportTimeout(f"timed out: {request.method} {request.url}") from exc
        except (requests.RequestException, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {request.method} {request.url}") from exc
        finally:
            self.session.cookies.clear()
        return HttpResponse(resp.status_code, tuple(headers), body, request.url)

    def close(self) -> None:
        if self._owned:
            self.session.close()

    def __enter__(self) -> RequestsTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _framing(request: HttpRequest) -> set[str]:
    return {"content-length", "transfer-encoding"} | {k.lower() for k, _ in request.headers}


def _merge(request: HttpRequest) -> list[tuple[str, str]]:
    # requests takes a dict; repeated names are joined as HTTP allows for all but Set-Cookie.
    merged: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in request.headers:
        key = name.lower()
        if key in merged:
            sep = "; " if key == "cookie" else ", "
            merged[key] = f"{merged[key]}{sep}{value}"
        else:
            merged[key] = value
            names[key] = name
    return [(names[k], v) for k, v in merged.items()]
