"""HTTP request and response values, built and read by the core, carried by the transports.

Both classes are frozen attrs values. Headers are an ordered tuple of ``(name, value)`` pairs so that
repeated headers (``Set-Cookie``) and their order survive untouched. Bodies are bytes. Nothing here
performs I/O: the transports turn these values into wire traffic and back.

Redaction lives here too, in one place: :func:`redact_headers` and :func:`describe` are what every
``repr`` and every traffic log line goes through, so a secret can only leak if it is added to
:data:`SECRET_HEADERS` or :data:`SECRET_FIELDS` incorrectly.
"""

from __future__ import annotations

import http.cookies
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import h11

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "SECRET_FIELDS",
    "SECRET_HEADERS",
    "Headers",
    "HttpRequest",
    "HttpResponse",
    "cookie_header",
    "describe",
    "dump_json",
    "encode_form",
    "encode_query",
    "redact_headers",
]

Headers = tuple[tuple[str, str], ...]
HeaderInput = Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None

#: Header names (lower-case) whose values are credentials and never printed.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "authentication",
        "x-skypetoken",
        "registrationtoken",
        "set-registrationtoken",
        "cookie",
        "set-cookie",
        "csrf_token",
    }
)

#: Form, JSON and query field names (lower-case) whose values are credentials.
SECRET_FIELDS = frozenset(
    {
        "passwd",
        "password",
        "passwordhash",
        "access_token",
        "skypetoken",
        "refresh_token",
        "refresh-token",
        "t",
        "ppft",
        "token",
        "registrationtoken",
    }
)

_REDACTED = "<redacted>"
_SOAP_SECRET = re.compile(
    r"(<(?:[\w-]+:)?(?:Password|BinarySecurityToken)\b[^>]*>)(.*?)(</(?:[\w-]+:)?(?:Password|BinarySecurityToken)>)",
    re.DOTALL,
)
_HTML_SECRET_INPUT = re.compile(
    r"""(<input\b[^>]*\b(?:name|id)=["']?(?:skypetoken|t|PPFT)["']?[^>]*\bvalue=["'])([^"']*)""",
    re.IGNORECASE,
)


def _normalise_headers(headers: HeaderInput) -> Headers:
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, str]] = []
    for name, value in items:
        if value is None:
            continue  # a header whose value is missing is left out, never sent as "None"
        if not isinstance(name, str) or not isinstance(value, str):
            raise LocalProtocolError("header names and values must be str")
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise LocalProtocolError(f"header {name!r} contains a line break")
        out.append((name, value))
    return tuple(out)


def _header(headers: Headers, name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def _header_all(headers: Headers, name: str) -> list[str]:
    wanted = name.lower()
    return [value for key, value in headers if key.lower() == wanted]


def dump_json(data: Any) -> bytes:
    """Serialise ``data`` the way the reference client does: ``", "``/``": "`` and ASCII escapes."""
    return json.dumps(data, ensure_ascii=True, separators=(", ", ": ")).encode("ascii")


def encode_form(fields: Mapping[str, str | None] | Iterable[tuple[str, str | None]]) -> bytes:
    """Encode form fields in order, dropping those whose value is ``None``."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    return urllib.parse.urlencode([(k, v) for k, v in items if v is not None]).encode("ascii")


def encode_query(params: Mapping[str, str | None] | Iterable[tuple[str, str | None]]) -> str:
    """Encode query parameters in order (``|`` becomes ``%7C``), dropping ``None`` values."""
    items = params.items() if isinstance(params, Mapping) else params
    return urllib.parse.urlencode([(k, v) for k, v in items if v is not None])


def cookie_header(cookies: Mapping[str, str | None]) -> str | None:
    """Build a ``Cookie`` header value from ``name -> value`` pairs, or ``None`` when empty."""
    parts = [f"{name}={value}" for name, value in cookies.items() if value is not None]
    return "; ".join(parts) if parts else None


def _with_query(
    url: str, params: Mapping[str, str | None] | Iterable[tuple[str, str | None]]
) -> str:
    query = encode_query(params)
    if not query:
        return url
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _split_target(url: str) -> tuple[str, str, str]:
    """Return ``(scheme, authority, target)`` of an absolute URL, target being path and query."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LocalProtocolError(f"not an absolute http(s) URL: {url!r}")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return parts.scheme, parts.netloc, target


def _wire_path(target: str) -> str:
    # Braces are not legal in a request target; endpoint ids carry them.
    return target.replace("{", "%7B").replace("}", "%7D")


def _redact_fields(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, _REDACTED if k.lower() in SECRET_FIELDS else v) for k, v in pairs]


def _redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _REDACTED if str(k).lower() in SECRET_FIELDS else _redact_json(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    return value


def redact_headers(headers: Headers) -> Headers:
    """Return ``headers`` with every credential-bearing value replaced by a marker."""
    return tuple(
        (name, _REDACTED if name.lower() in SECRET_HEADERS else value) for name, value in headers
    )


def _redact_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if not parts.query:
        return url
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not any(k.lower() in SECRET_FIELDS for k, _ in pairs):
        return url
    return urllib.parse.urlunsplit(
        parts._replace(query=urllib.parse.urlencode(_redact_fields(pairs)))
    )


def _redact_body(body: bytes, content_type: str | None, limit: int) -> str:
    if not body:
        return ""
    text = body.decode("utf-8", "replace")
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json" or (not kind and text[:1] in "[{"):
        try:
            text = json.dumps(_redact_json(json.loads(text)))
        except ValueError:
            text = "<unparsable JSON body>"
    elif kind == "application/x-www-form-urlencoded":
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
        text = urllib.parse.urlencode(_redact_fields(pairs))
    else:
        text = _SOAP_SECRET.sub(rf"\1{_REDACTED}\3", text)
        text = _HTML_SECRET_INPUT.sub(rf"\1{_REDACTED}", text)
        if "<" not in text and "=" in text and "&" in text:
            # An unlabelled form body (the SOAP envelope is the only unlabelled XML one).
            pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
            text = urllib.parse.urlencode(_redact_fields(pairs))
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(body)} bytes)"
    return text


def describe(message: HttpRequest | HttpResponse, *, body_limit: int = 2000) -> str:
    """A multi-line, redacted rendering of a request or response, for traffic logs."""
    if isinstance(message, HttpRequest):
        first = f"{message.method} {_redact_url(message.url)}"
    else:
        first = f"HTTP {message.status}" + (f" ({_redact_url(message.url)})" if message.url else "")
    lines = [first]
    lines += [f"  {name}: {value}" for name, value in redact_headers(message.headers)]
    body = _redact_body(message.body, message.header("content-type"), body_limit)
    if body:
        lines.append(f"  {body}")
    return "\n".join(lines)


def _body_summary(body: bytes) -> str:
    return f"<{len(body)} bytes>"


@attrs.frozen(repr=False)
class HttpRequest:
    """An HTTP request the core wants sent.

    ``timeout`` is a hint in seconds for the whole exchange; ``None`` lets the transport decide.
    """

    method: str
    url: str
    headers: Headers = attrs.field(default=(), converter=_normalise_headers)
    body: bytes = b""
    timeout: float | None = None

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
    ) -> HttpRequest:
        """Build a request from the usual parts. At most one of ``json``, ``form`` and ``content``."""
        if sum(x is not None for x in (json, form, content)) > 1:
            raise LocalProtocolError("give at most one of json, form and content")
        _split_target(url)
        if params is not None:
            url = _with_query(url, params)
        hdrs = list(_normalise_headers(headers))
        body = b""
        if json is not None:
            body = dump_json(json)
            hdrs.append(("Content-Type", "application/json"))
        elif form is not None:
            body = encode_form(form)
            hdrs.append(("Content-Type", "application/x-www-form-urlencoded"))
        elif content is not None:
            body = content.encode("utf-8") if isinstance(content, str) else content
        if cookies:
            value = cookie_header(cookies)
            if value is not None:
                hdrs.append(("Cookie", value))
        return cls(method.upper(), url, tuple(hdrs), body, timeout)

    @property
    def host(self) -> str:
        """The lower-cased host name the request goes to."""
        return (urllib.parse.urlsplit(self.url).hostname or "").lower()

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        return _header(self.headers, name)

    def header_all(self, name: str) -> list[str]:
        return _header_all(self.headers, name)

    def with_headers(self, headers: HeaderInput) -> HttpRequest:
        """A copy with ``headers`` appended."""
        return attrs.evolve(self, headers=self.headers + _normalise_headers(headers))

    def query(self) -> list[tuple[str, str]]:
        return urllib.parse.parse_qsl(urllib.parse.urlsplit(self.url).query, keep_blank_values=True)

    def form(self) -> list[tuple[str, str]]:
        """The body read as form fields, in order."""
        try:
            text = self.body.decode("ascii")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError("form body is not ASCII") from exc
        return urllib.parse.parse_qsl(text, keep_blank_values=True)

    def json(self) -> Any:
        return _load_json(self.body, "request")

    def cookies(self) -> dict[str, str]:
        """The cookies the ``Cookie`` header(s) carry; the first value of a name wins."""
        jar: dict[str, str] = {}
        for value in self.header_all("cookie"):
            for part in value.split(";"):
                name, sep, val = part.strip().partition("=")
                if sep and name and name not in jar:
                    jar[name] = val
        return jar

    def to_h11(self) -> tuple[h11.Request, h11.Data | None]:
        """The h11 events that put this request on the wire (``Host`` and framing added)."""
        _, authority, target = _split_target(self.url)
        headers = [(k, v) for k, v in self.headers if k.lower() not in ("host", "content-length")]
        headers.insert(0, ("Host", authority))
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(self.body))))
        event = h11.Request(method=self.method, target=_wire_path(target), headers=headers)
        return event, (h11.Data(data=self.body) if self.body else None)

    @classmethod
    def from_h11(cls, event: h11.Request, body: bytes, *, scheme: str = "http") -> HttpRequest:
        """Rebuild a request from what an h11 server received."""
        headers = tuple(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()
        )
        host = _header(headers, "host") or "localhost"
        url = f"{scheme}://{host}{event.target.decode('latin-1')}"
        return cls(event.method.decode("ascii"), url, headers, body)

    def __repr__(self) -> str:
        return (
            f"HttpRequest(method={self.method!r}, url={_redact_url(self.url)!r}, "
            f"headers={redact_headers(self.headers)!r}, body={_body_summary(self.body)}, "
            f"timeout={self.timeout!r})"
        )


@attrs.frozen(repr=False)
class HttpResponse:
    """An HTTP response handed back to the core. ``url`` is the URL of the request it answers."""

    status: int
    headers: Headers = attrs.field(default=(), converter=_normalise_headers)
    body: bytes = b""
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
        return _header(self.headers, name)

    def header_all(self, name: str) -> list[str]:
        return _header_all(self.headers, name)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON; :class:`RemoteProtocolError` when it is not JSON."""
        return _load_json(self.body, "response")

    def set_cookies(self) -> dict[str, str]:
        """The cookies this response sets, by name; a later ``Set-Cookie`` of a name wins."""
        jar: dict[str, str] = {}
        for value in self.header_all("set-cookie"):
            parsed: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            try:
                parsed.load(value)
            except http.cookies.CookieError:
                # Not RFC 6265 clean; take the leading name=value pair as browsers do.
                name, sep, val = value.split(";", 1)[0].strip().partition("=")
                if sep and name:
                    jar[name] = val
                continue
            for name, morsel in parsed.items():
                jar[name] = morsel.value
        return jar

    def to_h11(self) -> tuple[h11.Response, h11.Data | None]:
        headers = [(k, v) for k, v in self.headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(self.body))))
        event = h11.Response(status_code=self.status, headers=headers)
        return event, (h11.Data(data=self.body) if self.body else None)

    @classmethod
    def from_h11(cls, event: h11.Response, body: bytes, *, url: str = "") -> HttpResponse:
        headers = tuple(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()
        )
        return cls(event.status_code, headers, body, url)

    def __repr__(self) -> str:
        return (
            f"HttpResponse(status={self.status!r}, headers={redact_headers(self.headers)!r}, "
            f"body={_body_summary(self.body)}, url={_redact_url(self.url)!r})"
        )


def _load_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(f"{what} body is not valid JSON") from exc
