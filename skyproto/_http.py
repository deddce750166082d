"""HTTP request and response values, built and read by the core, carried by the transports.

Both classes are frozen attrs values. Headers are an ordered tuple of ``(name, value)`` pairs so that
repeated headers (``Set-Cookie``) and their order survive untouched. Bodies are bytes. Nothing here
performs I/O: the transports turn these values into wire traffic and back.

Redaction lives in :mod:`skyproto._redact`; :func:`redact_headers`, :func:`redact_url`,
:func:`describe`, :data:`SECRET_HEADERS` and :data:`SECRET_FIELDS` are importable from here too.
The ``repr`` of a request or response shows no body and redacts its URL and headers.
"""

from __future__ import annotations

import functools
import json
import json.encoder
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import h11

# Redaction moved to _redact; its names stay importable from here.
from ._redact import SECRET_FIELDS as SECRET_FIELDS
from ._redact import SECRET_HEADERS as SECRET_HEADERS
from ._redact import describe as describe
from ._redact import redact_headers as redact_headers
from ._redact import redact_url
from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Headers",
    "HttpRequest",
    "HttpResponse",
    "cookie_header",
    "dump_json",
    "encode_form",
    "encode_query",
]

Headers = tuple[tuple[str, str], ...]
HeaderInput = Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None

_ABSOLUTE_TARGET = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# What a browser's URL encoder leaves alone in a request target; "%" keeps existing escapes.
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"
_FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})
_BODILESS_STATUSES = frozenset({204, 304})
_COOKIE_NAME_FORBIDDEN = frozenset(" \t=;,\r\n\x00")
_COOKIE_VALUE_FORBIDDEN = frozenset(";\r\n\x00")
# URLs whose parse (and wire form of their target) is remembered.
_URL_CACHE_SIZE = 256


# A character that would end a header line, or that no header may hold.
_LINE_BREAK_OR_NUL = re.compile("[\r\n\x00]").search


def _normalise_headers(headers: HeaderInput) -> Headers:
    if headers is None:
        return ()
    # Tuples and lists first: every request and response passes here, some twice, and the
    # abstract Mapping check costs more than the rest of a usual header.
    if headers.__class__ is tuple or headers.__class__ is list:
        items: Iterable[Any] = headers
    else:
        items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, str]] = []
    for item in items:
        # The usual case, a pair of non-empty plain strings, checked in one go.
        if item.__class__ is tuple and len(item) == 2:
            name, value = item
            if (
                name.__class__ is str
                and value.__class__ is str
                and name
                # Three substring tests cost a tenth of one regular-expression search.
                and "\r" not in name
                and "\n" not in name
                and "\x00" not in name
                and "\r" not in value
                and "\n" not in value
                and "\x00" not in value
            ):
                out.append(item)
                continue
        checked = _checked_header(item)
        if checked is not None:
            out.append(checked)
    return tuple(out)


def _checked_header(item: Any) -> tuple[str, str] | None:
    """``item`` as a header line, ``None`` to leave it out, or :class:`LocalProtocolError`."""
    if isinstance(item, str | bytes):
        raise LocalProtocolError("headers are (name, value) pairs")
    try:
        name, value = item
    except (TypeError, ValueError):
        raise LocalProtocolError("headers are (name, value) pairs") from None
    if value is None:
        return None  # a header whose value is missing is left out, never sent as "None"
    if not isinstance(name, str) or not isinstance(value, str):
        raise LocalProtocolError("header names and values must be str")
    if not name:
        raise LocalProtocolError("a header name cannot be empty")
    if _LINE_BREAK_OR_NUL(name) is not None or _LINE_BREAK_OR_NUL(value) is not None:
        # Only the name: the value may be a credential.
        raise LocalProtocolError(f"header {name!r} contains a line break or NUL")
    return (name, value)


def _to_bytes(body: bytes | bytearray | memoryview) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise LocalProtocolError(f"a body is bytes, not {type(body).__name__}")


def _header(headers: Headers, name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def _header_all(headers: Headers, name: str) -> list[str]:
    wanted = name.lower()
    return [value for key, value in headers if key.lower() == wanted]


# What json.dumps would build for these options on every call; encode() keeps no state.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": "), allow_nan=False)


def _refuse(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


# The C encoder that JSONEncoder.encode builds anew for every call, built once. It keeps no
# record of the containers it is inside (that record is what cannot be shared between calls), so
# a container that holds itself ends in RecursionError instead of ValueError; both are refused.
# Same text as _JSON_ENCODER; a third of the time for a ping's body.
_MAKE_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # untyped in the stubs
_C_ENCODER: Any = (
    _MAKE_C_ENCODER(
        None, _refuse, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, False
    )
    if _MAKE_C_ENCODER is not None
    else None
)


def dump_json(data: Any) -> bytes:
    """Serialise ``data`` the way the reference client does: ``", "``/``": "`` and ASCII escapes.

    Values JSON cannot carry (NaN, infinities, arbitrary objects) raise
    :class:`LocalProtocolError`.
    """
    try:
        if _C_ENCODER is not None:
            text = "".join(_C_ENCODER(data, 0))
        else:  # pragma: no cover - an interpreter without json's C accelerator
            text = _JSON_ENCODER.encode(data)
    except (TypeError, ValueError, RecursionError) as exc:
        raise LocalProtocolError(f"cannot encode the JSON body: {type(exc).__name__}") from None
    return text.encode("ascii")


def encode_form(fields: Mapping[str, str | None] | Iterable[tuple[str, str | None]]) -> bytes:
    """Encode form fields in order, dropping those whose value is ``None``."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    return urllib.parse.urlencode([(k, v) for k, v in items if v is not None]).encode("ascii")


def encode_query(params: Mapping[str, str | None] | Iterable[tuple[str, str | None]]) -> str:
    """Encode query parameters in order (``|`` becomes ``%7C``), dropping ``None`` values."""
    items = params.items() if isinstance(params, Mapping) else params
    return urllib.parse.urlencode([(k, v) for k, v in items if v is not None])


def cookie_header(cookies: Mapping[str, str | None]) -> str | None:
    """Build a ``Cookie`` header value from ``name -> value`` pairs, or ``None`` when empty.

    A name that is empty or holds whitespace, ``=``, ``;`` or ``,``, or a value that holds ``;``,
    cannot be written unambiguously and raises :class:`LocalProtocolError` (naming the cookie,
    never its value).
    """
    parts: list[str] = []
    for name, value in cookies.items():
        if value is None:
            continue
        if not isinstance(name, str) or not isinstance(value, str):
            raise LocalProtocolError("cookie names and values must be str")
        if not name or _COOKIE_NAME_FORBIDDEN.intersection(name):
            raise LocalProtocolError(f"cookie name {name!r} cannot go in a Cookie header")
        if _COOKIE_VALUE_FORBIDDEN.intersection(value):
            raise LocalProtocolError(f"the value of cookie {name!r} cannot go in a Cookie header")
        parts.append(f"{name}={value}")
    return "; ".join(parts) if parts else None


def _with_query(
    url: str, params: Mapping[str, str | None] | Iterable[tuple[str, str | None]]
) -> str:
    query = encode_query(params)
    if not query:
        return url
    base, hash_sign, fragment = url.partition("#")
    if "?" not in base:
        base += "?"
    elif not base.endswith(("?", "&")):
        base += "&"
    return f"{base}{query}{hash_sign}{fragment}"


@functools.lru_cache(maxsize=_URL_CACHE_SIZE)
def _split_target(url: str) -> tuple[str, str, str]:
    """Return ``(scheme, host header, target)`` of an absolute URL, target being path and query.

    The ``Host`` value is the lower-cased host, with the port only when it is not the scheme's
    default. URLs with user info are refused: nothing here sends credentials that way.
    Remembered for the last few hundred URLs (a session sends to the same few again and again;
    every request is checked here when it is built and again when it goes on the wire).
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise LocalProtocolError(f"not a valid URL: {redact_url(url)!r}") from None
    hostname = parts.hostname
    if parts.scheme not in ("http", "https") or not hostname:
        raise LocalProtocolError(f"not an absolute http(s) URL: {redact_url(url)!r}")
    if "@" in parts.netloc:
        raise LocalProtocolError("URLs with user info are not sent")
    host = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None and port != (443 if parts.scheme == "https" else 80):
        host = f"{host}:{port}"
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return parts.scheme, host, target


@functools.lru_cache(maxsize=_URL_CACHE_SIZE)
def _wire_path(target: str) -> str:
    """``target`` as it goes on the wire: what a request target cannot hold, percent-encoded.

    Braces (endpoint ids carry them), ``|``, spaces and non-ASCII characters (as UTF-8) are
    escaped, the way the reference client's HTTP library does; existing ``%XX`` escapes, ``:``
    and ``@`` are kept as they are.
    """
    return urllib.parse.quote(target, safe=_TARGET_SAFE)


def _split_url(url: str) -> urllib.parse.SplitResult:
    try:
        return urllib.parse.urlsplit(url)
    except ValueError:
        raise LocalProtocolError(f"not a valid URL: {redact_url(url)!r}") from None


def _add_cookie_pairs(headers: list[tuple[str, str]], pairs: str) -> list[tuple[str, str]]:
    """``headers`` with ``pairs`` appended to its ``Cookie`` header, or in a new one."""
    for index, (name, value) in enumerate(headers):
        if name.lower() == "cookie":
            joined = f"{value}; {pairs}" if value.strip() else pairs
            return [*headers[:index], (name, joined), *headers[index + 1 :]]
    return [*headers, ("Cookie", pairs)]


def _body_summary(body: bytes) -> str:
    return f"<{len(body)} bytes>"


def _wire_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        try:
            out.append((name.encode("ascii"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise LocalProtocolError(f"header {name!r} cannot be encoded for the wire") from None
    return out


# Checks of values already in the form the converters give would only repeat work on the path
# every request and response takes, so the two builders below set the fields as they are.
# Each sets every field of its class (a unit test holds them to the constructor).
_new = object.__new__
_set = object.__setattr__  # how attrs itself sets the fields of a frozen instance


def _trusted_request(
    method: str, url: str, headers: Headers, body: bytes, timeout: float | None, long_poll: bool
) -> HttpRequest:
    """An :class:`HttpRequest` of header lines checked by :func:`_normalise_headers`."""
    request: HttpRequest = _new(HttpRequest)
    _set(request, "method", method)
    _set(request, "url", url)
    _set(request, "headers", headers)
    _set(request, "body", body)
    _set(request, "timeout", timeout)
    _set(request, "long_poll", long_poll)
    return request


def _trusted_response(status: int, headers: Headers, body: bytes, url: str) -> HttpResponse:
    """An :class:`HttpResponse` of header lines h11 has checked (no CR, LF or NUL in any)."""
    response: HttpResponse = _new(HttpResponse)
    _set(response, "status", status)
    _set(response, "headers", headers)
    _set(response, "body", body)
    _set(response, "url", url)
    return response


def _h11_event(make: Any, what: str) -> Any:
    # h11 puts offending header values in its messages; they may be credentials. A method that
    # is not ASCII, or a target holding a lone surrogate, fails to encode instead.
    try:
        return make()
    except (h11.LocalProtocolError, UnicodeEncodeError):
        raise LocalProtocolError(
            f"h11 refused the {what}: the method, a header or the target is invalid"
        ) from None


@attrs.frozen(repr=False)
class HttpRequest:
    """An HTTP request the core wants sent.

    ``timeout`` is a hint in seconds for the whole exchange; ``None`` lets the transport decide.
    ``long_poll`` marks a request the server may hold open (the event poll, docs/protocol.md
    §5.6): transports send it from their own connection budget, so that held polls never
    starve short calls (docs/transports.md).
    """

    method: str
    url: str
    headers: Headers = attrs.field(default=(), converter=_normalise_headers)
    body: bytes = attrs.field(default=b"", converter=_to_bytes)
    timeout: float | None = None
    long_poll: bool = attrs.field(default=False, kw_only=True)

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None = None,
        headers: HeaderInput = None,
        json: Any = None,
        form: Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None = None,
        content: bytes | str | None = None,
        cookies: Mapping[str, str | None] | None = None,
        timeout: float | None = None,
        long_poll: bool = False,
    ) -> HttpRequest:
        """Build a request from the usual parts. At most one of ``json``, ``form`` and ``content``.

        ``json`` and ``form`` add their ``Content-Type`` unless ``headers`` already has one;
        ``content`` adds none. ``cookies`` go into one ``Cookie`` header, after the pairs of a
        ``Cookie`` header given in ``headers``.
        """
        if (json is not None) + (form is not None) + (content is not None) > 1:
            raise LocalProtocolError("give at most one of json, form and content")
        _split_target(url)
        if params is not None:
            url = _with_query(url, params)
        hdrs = list(_normalise_headers(headers))
        body = b""
        content_type: str | None = None
        if json is not None:
            body = dump_json(json)
            content_type = "application/json"
        elif form is not None:
            body = encode_form(form)
            content_type = "application/x-www-form-urlencoded"
        elif content is not None:
            body = content.encode("utf-8") if isinstance(content, str) else content
        if content_type is not None and _header(tuple(hdrs), "content-type") is None:
            hdrs.append(("Content-Type", content_type))
        if cookies:
            pairs = cookie_header(cookies)
            if pairs is not None:
                hdrs = _add_cookie_pairs(hdrs, pairs)
        if cls is not HttpRequest:
            return cls(method.upper(), url, tuple(hdrs), body, timeout, long_poll=long_poll)
        # Every line in ``hdrs`` has been checked.
        return _trusted_request(
            method.upper(), url, tuple(hdrs), _to_bytes(body), timeout, long_poll
        )

    @property
    def host(self) -> str:
        """The lower-cased host name the request goes to ("" when the URL has none)."""
        return (_split_url(self.url).hostname or "").lower()

    @property
    def path(self) -> str:
        """The path of the URL, as written."""
        return _split_url(self.url).path

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        return _header(self.headers, name)

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        return _header_all(self.headers, name)

    def with_headers(self, headers: HeaderInput) -> HttpRequest:
        """A copy with ``headers`` appended."""
        return attrs.evolve(self, headers=self.headers + _normalise_headers(headers))

    def query(self) -> list[tuple[str, str]]:
        """The query parameters of the URL, decoded, in order."""
        return urllib.parse.parse_qsl(_split_url(self.url).query, keep_blank_values=True)

    def form(self) -> list[tuple[str, str]]:
        """The body read as form fields, in order."""
        try:
            text = self.body.decode("ascii")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError("form body is not ASCII") from exc
        return urllib.parse.parse_qsl(text, keep_blank_values=True)

    def json(self) -> Any:
        """The body parsed as JSON; :class:`RemoteProtocolError` when it is not JSON."""
        return _load_json(self.body, "request")

    def cookies(self) -> dict[str, str]:
        """The cookies the ``Cookie`` header(s) carry, names and values trimmed.

        The first value of a name wins; a pair without ``=`` or with an empty name is skipped.
        """
        jar: dict[str, str] = {}
        for value in self.header_all("cookie"):
            for part in value.split(";"):
                name, sep, val = part.partition("=")
                name = name.strip()
                if sep and name and name not in jar:
                    jar[name] = val.strip()
        return jar

    def to_h11(self) -> tuple[h11.Request, h11.Data | None]:
        """The h11 events that put this request on the wire.

        ``Host`` goes first, derived from the URL; ``Content-Length`` frames a body (and a
        body-less ``POST``, ``PUT`` or ``PATCH``). A ``Host``, ``Content-Length`` or
        ``Transfer-Encoding`` among :attr:`headers` is replaced. Characters a request target
        cannot hold (braces among them) are percent-encoded. :class:`LocalProtocolError` when the
        URL or a header cannot go on the wire; its message never quotes a header value.
        """
        _, host, target = _split_target(self.url)
        headers = [(k, v) for k, v in self.headers if k.lower() not in _FRAMING_HEADERS]
        headers.insert(0, ("Host", host))
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(self.body))))
        wire = _wire_headers(headers)
        event = _h11_event(
            lambda: h11.Request(method=self.method, target=_wire_path(target), headers=wire),
            "request",
        )
        return event, (h11.Data(data=self.body) if self.body else None)

    @classmethod
    def from_h11(cls, event: h11.Request, body: bytes, *, scheme: str = "http") -> HttpRequest:
        """Rebuild a request from what an h11 server received (origin- or absolute-form)."""
        headers = tuple(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()
        )
        target = event.target.decode("latin-1")
        if _ABSOLUTE_TARGET.match(target):
            url = target
        else:
            host = _header(headers, "host") or "localhost"
            url = f"{scheme}://{host}{target if target.startswith('/') else '/' + target}"
        return cls(event.method.decode("ascii"), url, headers, body)

    def __repr__(self) -> str:
        return (
            f"HttpRequest(method={self.method!r}, url={redact_url(self.url)!r}, "
            f"headers={redact_headers(self.headers)!r}, body={_body_summary(self.body)}, "
            f"timeout={self.timeout!r})"
        )


@attrs.frozen(repr=False)
class HttpResponse:
    """An HTTP response handed back to the core. ``url`` is the URL of the request it answers."""

    status: int
    headers: Headers = attrs.field(default=(), converter=_normalise_headers)
    body: bytes = attrs.field(default=b"", converter=_to_bytes)
    url: str = ""

    @classmethod
    def build(
        cls,
        status: int,
        *,
        headers: HeaderInput = None,
        json: Any = None,
        content: bytes | str | None = None,
        content_type: str | None = None,
        url: str = "",
    ) -> HttpResponse:
        """Build a response; ``json`` implies ``Content-Type: application/json``."""
        hdrs = list(_normalise_headers(headers))
        body = b""
        if json is not None:
            body = dump_json(json)
            content_type = content_type or "application/json"
        elif content is not None:
            body = content.encode("utf-8") if isinstance(content, str) else content
        if content_type:
            hdrs.append(("Content-Type", content_type))
        return cls(status, tuple(hdrs), body, url)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        return _header(self.headers, name)

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        return _header_all(self.headers, name)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8, undecodable bytes replaced."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON; :class:`RemoteProtocolError` when it is not JSON."""
        return _load_json(self.body, "response")

    def set_cookies(self) -> dict[str, str]:
        """The cookies this response sets, by name; a later ``Set-Cookie`` of a name wins.

        Each header is read as RFC 6265 section 5.2 says: the text before the first ``;`` is the
        cookie's ``name=value``, both trimmed, quotes kept; what follows are attributes, not
        cookies. A header without ``=`` or with an empty name sets nothing.
        """
        jar: dict[str, str] = {}
        for header in self.header_all("set-cookie"):
            name, sep, value = header.split(";", 1)[0].partition("=")
            name = name.strip()
            if sep and name:
                jar[name] = value.strip()
        return jar

    def to_h11(self) -> tuple[h11.Response, h11.Data | None]:
        """The h11 events that put this response on the wire, framed by ``Content-Length``.

        A 204 or 304 carries no body and no ``Content-Length``; giving one a body raises
        :class:`LocalProtocolError`.
        """
        headers = [(k, v) for k, v in self.headers if k.lower() not in _FRAMING_HEADERS]
        if self.status in _BODILESS_STATUSES:
            if self.body:
                raise LocalProtocolError(f"a {self.status} response carries no body")
        else:
            headers.append(("Content-Length", str(len(self.body))))
        wire = _wire_headers(headers)
        event = _h11_event(lambda: h11.Response(status_code=self.status, headers=wire), "response")
        return event, (h11.Data(data=self.body) if self.body else None)

    @classmethod
    def from_h11(cls, event: h11.Response, body: bytes, *, url: str = "") -> HttpResponse:
        """Rebuild a response from what an h11 client received, for the request to ``url``."""
        headers = tuple(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()
        )
        if cls is not HttpResponse:
            return cls(event.status_code, headers, body, url)
        return _trusted_response(event.status_code, headers, body, url)

    def __repr__(self) -> str:
        return (
            f"HttpResponse(status={self.status!r}, headers={redact_headers(self.headers)!r}, "
            f"body={_body_summary(self.body)}, url={redact_url(self.url)!r})"
        )


def _load_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RemoteProtocolError(f"{what} body is not valid JSON") from exc
