"""HTTP request and response values, built and read by the core, carried by the transports.

Both classes are frozen attrs values. Headers are an ordered tuple of ``(name, value)`` pairs so that
repeated headers (``Set-Cookie``) and their order survive untouched. Bodies are bytes. Nothing here
performs I/O: the transports turn these values into wire traffic and back.

Redaction lives here too, in one place: :func:`redact_headers`, :func:`redact_url` and
:func:`describe` are what every ``repr``, error message and traffic log line goes through, so a
secret can only leak if it is missing from :data:`SECRET_HEADERS` or :data:`SECRET_FIELDS`.
Bodies are redacted by kind: JSON fields by name at any depth, form and query fields by name,
and in other text (SOAP, HTML, scripts) the ``Password``/``BinarySecurityToken``/``BinarySecret``
elements, the ``value`` of elements whose ``name`` or ``id`` is a secret field, and
``field: 'value'`` and ``field=value`` pairs with a secret field name.
"""

from __future__ import annotations

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
    "redact_url",
]

Headers = tuple[tuple[str, str], ...]
HeaderInput = Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None

#: Header names (lower-case) whose values are credentials and never printed.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "authentication",
        "proxy-authorization",
        "x-skypetoken",
        "registrationtoken",
        "set-registrationtoken",
        "cookie",
        "set-cookie",
        "csrf_token",
    }
)

#: Form, JSON, query and page field names (lower-case) whose values are credentials.
SECRET_FIELDS = frozenset(
    {
        "passwd",
        "password",
        "passwordhash",
        "access_token",
        "accesstoken",
        "skypetoken",
        "refresh_token",
        "refresh-token",
        "refreshtoken",
        "t",
        "ppft",
        "sft",
        "token",
        "registrationtoken",
    }
)

#: Headers whose values are URLs: shown, but with secret query fields redacted.
_URL_HEADERS = frozenset({"location", "content-location", "referer"})

_REDACTED = "<redacted>"
_REDACTED_IN_URL = urllib.parse.quote(_REDACTED)
_SOAP_SECRET = re.compile(
    r"(<(?:[\w-]+:)?(Password|BinarySecurityToken|BinarySecret)\b[^>]*>)(.*?)(</(?:[\w-]+:)?\2\s*>)",
    re.DOTALL,
)
# A start tag, quoted attribute values may hold ">".
_TAG = re.compile(r"""<[A-Za-z][\w:.-]*(?:"[^"]*"|'[^']*'|[^'">])*>""")
_ATTRIBUTE = re.compile(r"""([^\s"'=<>/]+)(?:(\s*=\s*)("[^"]*"|'[^']*'|[^\s"'<>`]+))?""")
_FIELD_NAMES = "|".join(re.escape(name) for name in sorted(SECRET_FIELDS, key=len, reverse=True))
# `name: 'value'` and `"name": "value"` in scripts and JSON-like text.
_SCRIPT_SECRET = re.compile(
    rf"""((?<![\w$-])(["']?)(?:{_FIELD_NAMES})\2\s*:\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""",
    re.IGNORECASE | re.DOTALL,
)
# `name=value` in free text (an unlabelled form, a URL in a page).
_ASSIGNED_SECRET = re.compile(
    rf"""((?<![\w$.-])(?:{_FIELD_NAMES})\s*=\s*)("[^"]*"|'[^']*'|[^\s&;,"'<>]*)""",
    re.IGNORECASE,
)
_URL_PAIR = re.compile(r"(^|[?&;#])([^=&;#?]*)=([^&;#]*)")
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*?:)([^/?#@]*)(@)")
_ABSOLUTE_TARGET = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# What a browser's URL encoder leaves alone in a request target; "%" keeps existing escapes.
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"
_FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})
_BODILESS_STATUSES = frozenset({204, 304})
_COOKIE_NAME_FORBIDDEN = frozenset(" \t=;,\r\n\x00")
_COOKIE_VALUE_FORBIDDEN = frozenset(";\r\n\x00")


def _normalise_headers(headers: HeaderInput) -> Headers:
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, str | bytes):
            raise LocalProtocolError("headers are (name, value) pairs")
        try:
            name, value = item
        except (TypeError, ValueError):
            raise LocalProtocolError("headers are (name, value) pairs") from None
        if value is None:
            continue  # a header whose value is missing is left out, never sent as "None"
        if not isinstance(name, str) or not isinstance(value, str):
            raise LocalProtocolError("header names and values must be str")
        if not name:
            raise LocalProtocolError("a header name cannot be empty")
        if any(c in text for c in "\r\n\x00" for text in (name, value)):
            # Only the name: the value may be a credential.
            raise LocalProtocolError(f"header {name!r} contains a line break or NUL")
        out.append((name, value))
    return tuple(out)


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


def dump_json(data: Any) -> bytes:
    """Serialise ``data`` the way the reference client does: ``", "``/``": "`` and ASCII escapes.

    Values JSON cannot carry (NaN, infinities, arbitrary objects) raise
    :class:`LocalProtocolError`.
    """
    try:
        text = json.dumps(data, ensure_ascii=True, separators=(", ", ": "), allow_nan=False)
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


def _split_target(url: str) -> tuple[str, str, str]:
    """Return ``(scheme, host header, target)`` of an absolute URL, target being path and query.

    The ``Host`` value is the lower-cased host, with the port only when it is not the scheme's
    default. URLs with user info are refused: nothing here sends credentials that way.
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


def _wire_path(target: str) -> str:
    """``target`` as it goes on the wire: what a request target cannot hold, percent-encoded.

    Braces (endpoint ids carry them), ``|``, spaces and non-ASCII characters (as UTF-8) are
    escaped, the way the reference client's HTTP library does; existing ``%XX`` escapes, ``:``
    and ``@`` are kept as they are.
    """
    return urllib.parse.quote(target, safe=_TARGET_SAFE)


def _is_secret_field(name: str) -> bool:
    return name.strip().lower() in SECRET_FIELDS


def _redact_pairs(text: str, marker: str) -> str:
    """Replace the values of secret ``name=value`` pairs in a query, fragment or form body."""

    def replace(match: re.Match[str]) -> str:
        name = urllib.parse.unquote_plus(match.group(2))
        if not _is_secret_field(name):
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}={marker}"

    return _URL_PAIR.sub(replace, text)


def _redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _REDACTED if _is_secret_field(str(k)) else _redact_json(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    return value


def redact_headers(headers: Headers) -> Headers:
    """Return ``headers`` with every credential-bearing value replaced by a marker.

    Values of :data:`SECRET_HEADERS` are hidden whole; URL-valued headers (``Location``) keep
    their URL with secret query fields hidden, as :func:`redact_url` does.
    """
    out: list[tuple[str, str]] = []
    for name, value in headers:
        key = name.lower()
        if key in SECRET_HEADERS:
            value = _REDACTED
        elif key in _URL_HEADERS:
            value = redact_url(value)
        out.append((name, value))
    return tuple(out)


def redact_url(url: str) -> str:
    """``url`` with the values of secret query and fragment fields, and any password, hidden.

    Everything else is kept exactly as written. Works on any string, parsable or not.
    """
    url = _URL_PASSWORD.sub(rf"\1{_REDACTED_IN_URL}\3", url, count=1)
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=-1)
    if cut < 0:
        return url
    return url[:cut] + _redact_pairs(url[cut:], _REDACTED_IN_URL)


def _redact_tag(match: re.Match[str]) -> str:
    tag = match.group(0)
    name_end = re.match(r"<[^\s/>]*", tag)
    split = name_end.end() if name_end else 1
    head, rest = tag[:split], tag[split:]
    attributes = {
        m.group(1).lower(): (m.group(3) or "").strip("\"'") for m in _ATTRIBUTE.finditer(rest)
    }
    if not any(_is_secret_field(attributes.get(key, "")) for key in ("name", "id")):
        return tag

    def replace(m: re.Match[str]) -> str:
        if m.group(1).lower() != "value" or m.group(3) is None:
            return m.group(0)
        quote = m.group(3)[0] if m.group(3)[0] in "\"'" else ""
        return f"{m.group(1)}{m.group(2)}{quote}{_REDACTED}{quote}"

    return head + _ATTRIBUTE.sub(replace, rest)


def _redact_script(match: re.Match[str]) -> str:
    quote = match.group(3)[0]
    return f"{match.group(1)}{quote}{_REDACTED}{quote}"


def _redact_text(text: str) -> str:
    """Redaction for bodies that are not JSON or a labelled form: SOAP, HTML, scripts, text."""
    text = _SOAP_SECRET.sub(rf"\1{_REDACTED}\4", text)
    text = _TAG.sub(_redact_tag, text)
    text = _SCRIPT_SECRET.sub(_redact_script, text)
    return _ASSIGNED_SECRET.sub(rf"\1{_REDACTED}", text)


def _is_json_type(kind: str) -> bool:
    return kind in ("application/json", "text/json") or kind.endswith("+json")


def _redact_body(body: bytes, content_type: str | None, limit: int) -> str:
    if not body:
        return ""
    text = body.decode("utf-8", "replace")
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        text = _redact_pairs(text, _REDACTED)
    elif _is_json_type(kind) or text.lstrip()[:1] in ("{", "["):
        try:
            text = json.dumps(_redact_json(json.loads(text)))
        except (ValueError, RecursionError):
            text = "<unparsable JSON body>" if _is_json_type(kind) else _redact_text(text)
    else:
        text = _redact_text(text)
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(body)} bytes)"
    return text


def describe(message: HttpRequest | HttpResponse, *, body_limit: int = 2000) -> str:
    """A multi-line, redacted rendering of a request or response, for traffic logs."""
    if isinstance(message, HttpRequest):
        first = f"{message.method} {redact_url(message.url)}"
    else:
        first = f"HTTP {message.status}" + (f" ({redact_url(message.url)})" if message.url else "")
    lines = [first]
    lines += [f"  {name}: {value}" for name, value in redact_headers(message.headers)]
    body = _redact_body(message.body, message.header("content-type"), body_limit)
    if body:
        lines.append(f"  {body}")
    return "\n".join(lines)


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
        if sum(x is not None for x in (json, form, content)) > 1:
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
        return cls(method.upper(), url, tuple(hdrs), body, timeout, long_poll=long_poll)

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
        return cls(event.status_code, headers, body, url)

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
