"""Redaction: what every ``repr``, error message and traffic log line goes through.

:func:`redact_headers`, :func:`redact_url` and :func:`describe` live here, in one place. Header
values named in :data:`SECRET_HEADERS` are hidden whole; URLs keep everything but the values of
query and fragment fields named in :data:`SECRET_FIELDS`, and a password in user info.

A body is shown the way the login flows read it, so that ``--verbose`` cannot print a secret a
flow uses. :func:`describe` reads at most a bounded prefix of the body (:data:`READ_LIMIT` bytes,
or eight times the display limit if that is more) and then:

1. runs the flows' own readers over it (``_load_json``'s JSON, with its BOM and UTF-16/32
   detection; the page scan, the PPFT scan and the SOAP parser of :mod:`skyproto.auth`; form
   fields) and collects every secret value they find, together with the secret values of the
   message's credential headers and URL;
2. hides secrets by place: JSON values under a secret field name at any depth (the body is shown
   re-serialised), form pairs by name, and in any other text (HTML, SOAP, scripts) every start
   tag whose ``name`` or ``id`` (any of them, decoded as the page scan decodes them) is a secret
   field, also where a script or style holds the markup; the ``Password``,
   ``BinarySecurityToken`` and ``BinarySecret`` elements; ``field: value`` and ``field=value``
   pairs; the session id of a socket.io handshake answer (``<sid>:<heartbeat>:<close>:…``,
   docs/trouter.md); and, to the end of the text, a tag or a value left unterminated;
3. hides every remaining occurrence of a collected value of at least six characters (at most
   32 of them), raw or JSON-, HTML-, XML- or URL-escaped, in the whole rendering;
4. only then cuts the body to the display limit, so a secret that straddles the cut is already
   a marker.

Every step takes time linear in the size of the prefix read: the scanners here use no
backtracking over server text, and after an unterminated value they stop. A secret that starts
in the shown part of a body and runs past the prefix read (tens of kilobytes) is found by no
reader; the unterminated-tag and unterminated-value rules of step 2 are what hide it.
"""

from __future__ import annotations

import collections
import contextlib
import html
import json
import re
import urllib.parse
from typing import TYPE_CHECKING, Any

from .errors import RemoteProtocolError

if TYPE_CHECKING:
    from ._http import Headers, HttpRequest, HttpResponse
    from .auth._pages import StartTag

__all__ = [
    "READ_LIMIT",
    "SECRET_FIELDS",
    "SECRET_HEADERS",
    "describe",
    "redact_headers",
    "redact_url",
]

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
        # OAuth device codes (v1 ``code``, v2 ``device_code``) and ID tokens (docs/teams.md)
        "code",
        "device_code",
        "id_token",
        "sig",  # the signature of Trouter's connectparams (docs/trouter.md)
    }
)

#: The bytes of a body that :func:`describe` reads, at least.
READ_LIMIT = 64 * 1024

#: Headers whose values are URLs: shown, but with secret query fields redacted.
_URL_HEADERS = frozenset({"location", "content-location", "referer"})
#: Elements whose text is a credential in SOAP messages.
_SOAP_SECRETS = ("password", "binarysecuritytoken", "binarysecret")
#: Attributes shown in a start tag that holds a secret; the others' values are hidden.
_SHOWN_ATTRIBUTES = frozenset({"name", "id", "type"})
#: Values shorter than this are hidden where they stand, not wherever they occur.
_MIN_VALUE = 6
#: At most this many distinct values are hidden wherever they occur (the flows use a handful).
_MAX_VALUES = 32

_REDACTED = "<redacted>"
_REDACTED_IN_URL = urllib.parse.quote(_REDACTED)

_URL_PAIR = re.compile(r"(^|[?&;#])([^=&;#?]*)=([^&;#]*)")
# User info runs to the authority's last "@", the user to its first ":" (as urlsplit reads them).
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#:]*+:)([^/?#]*)(@)")
_FIELD_NAMES = "|".join(re.escape(name) for name in sorted(SECRET_FIELDS, key=len, reverse=True))
# `name: value`, `"name": value` and `name=value` in scripts, JSON-like text and URLs in pages.
_ASSIGNMENT = re.compile(rf"""(?<![\w$.-])(["']?)(?:{_FIELD_NAMES})\1\s*+[:=]\s*+""", re.IGNORECASE)
# The rest of a quoted value: possessive (atomic) runs, so a missing closing quote costs one pass.
_QUOTED_REST = {
    quote: re.compile(rf"[^{quote}\\]*+(?:\\.[^{quote}\\]*+)*+{quote}", re.DOTALL)
    for quote in "\"'"
}
_BARE_VALUE = re.compile(r"""[^\s&;,"'<>{}\[\]()]*+""")
#: A socket.io 0.9 handshake answer, ``<session id>:<heartbeat>:<close>:<transports>``
#: (docs/trouter.md): the session id opens the websocket, so it is a credential.
_HANDSHAKE = re.compile(
    r"\s*+([A-Za-z0-9._~-]{1,256})(:[0-9]{0,9}:[0-9]{0,9}:[A-Za-z0-9,_-]{0,200})\s*+"
)
_RAW_TEXT_END = re.compile(r"</(?:script|style)", re.IGNORECASE)
_SOAP_OPEN = re.compile(
    rf"<(?:[\w-]++:)?+({'|'.join(_SOAP_SECRETS)})\b[^<>]*+>", re.IGNORECASE | re.ASCII
)
_SOAP_CLOSE = {
    name: re.compile(rf"</(?:[\w-]++:)?+{name}\s*+>", re.IGNORECASE | re.ASCII)
    for name in _SOAP_SECRETS
}

Span = tuple[int, int, str]


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


# -- the secret values the flows' readers find --------------------------------------------------


def _json_secrets(data: Any, found: list[str]) -> None:
    """Strings under a secret field name at any depth, shallowest first (the flows read those)."""
    queue: collections.deque[tuple[Any, bool]] = collections.deque([(data, False)])
    while queue:
        value, secret = queue.popleft()
        if isinstance(value, dict):
            queue.extend((v, secret or _is_secret_field(str(k))) for k, v in value.items())
        elif isinstance(value, list):
            queue.extend((v, secret) for v in value)
        elif secret and isinstance(value, str):
            found.append(value)


def _body_secrets(head: bytes, found: list[str]) -> None:
    """What the flows would extract from ``head``, read with their own readers."""
    # Imported here: these modules import _http, which imports this module.
    from ._http import _load_json
    from .auth._pages import scan_page
    from .auth.live import find_ppft
    from .auth.soap import parse_xml

    with contextlib.suppress(RemoteProtocolError):
        _json_secrets(_load_json(head, "response"), found)
    text = head.decode("utf-8", "replace")  # HttpResponse.text, as the page readers see it
    try:
        scan = scan_page(text)
    except RemoteProtocolError:
        pass
    else:
        if scan.t_value:
            found.append(scan.t_value)
        found.extend(v for k, v in scan.inputs.items() if v and _is_secret_field(k))
    ppft = find_ppft(text)
    if ppft:
        found.append(ppft)
    try:
        root = parse_xml(head)
    except RemoteProtocolError:
        pass
    else:
        for element in root.iter():
            if element.tag.rsplit("}", 1)[-1].lower() in _SOAP_SECRETS and element.text:
                found.append(element.text.strip())
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
    found.extend(v for k, v in pairs if _is_secret_field(k))
    handshake = _HANDSHAKE.fullmatch(text)
    if handshake is not None:
        found.append(handshake.group(1))


def _message_secrets(message: HttpRequest | HttpResponse) -> list[str]:
    """The secret values in the message's credential headers and URLs."""
    found: list[str] = []
    urls = [message.url]
    for name, value in message.headers:
        key = name.lower()
        if key in _URL_HEADERS:
            urls.append(value)
        if key not in SECRET_HEADERS:
            continue
        parts = value.split(";") if key == "cookie" else value.split(";", 1)[:1]
        for part in parts:
            _, sep, after = part.partition("=")
            words = (after if sep else part).split()
            if words:
                found.append(words[-1])
    for url in urls:
        query = url.partition("?")[2].replace("#", "&")
        found.extend(v for k, v in urllib.parse.parse_qsl(query) if _is_secret_field(k))
    return found


def _needles(values: list[str]) -> list[str]:
    """The forms in which ``values`` may be written, longest first."""
    distinct: dict[str, None] = {}
    for value in values:
        if len(value) >= _MIN_VALUE and len(distinct) < _MAX_VALUES:
            distinct[value] = None
    needles: set[str] = set()
    for value in distinct:
        needles.update(
            (
                value,
                html.escape(value),
                html.escape(value, quote=False),
                json.dumps(value)[1:-1],
                json.dumps(value, ensure_ascii=False)[1:-1],
                # A JSON string may hold a lone surrogate: quote it as the JSON reader read it.
                urllib.parse.quote(value, safe="", errors="surrogatepass"),
                urllib.parse.quote(value, errors="surrogatepass"),
                urllib.parse.quote_plus(value, errors="surrogatepass"),
            )
        )
    return sorted(needles, key=len, reverse=True)


def _mask(text: str, needles: list[str]) -> str:
    for needle in needles:
        text = text.replace(needle, _REDACTED)
    return text


# -- hiding secrets by place --------------------------------------------------------------------


def _redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _REDACTED if _is_secret_field(str(k)) else _redact_json(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    return value


def _render_tag(tag: StartTag) -> str:
    parts = [f"<{tag.name}"]
    for key, value in tag.attributes:
        if value is None:
            parts.append(key)
        else:
            shown = html.escape(value) if key in _SHOWN_ATTRIBUTES else _REDACTED
            parts.append(f'{key}="{shown}"')
    return " ".join(parts) + ">"


def _tag_spans(
    text: str, offset: int = 0, *, nested: bool = False, last: bool = True
) -> list[Span]:
    """Start tags naming a secret field, as the page scan reads them, and an unread tail.

    Markup written inside a ``<script>`` or ``<style>`` is not a tag to the page scan, but is
    read here too (one level deep), as pages build forms from such strings. ``last`` tells
    whether ``text`` runs to the end of the body read, where a cut may have split a tag.
    """
    from .auth._pages import start_tags  # imported here: it imports _http, which imports us

    tags, stop = start_tags(text)
    spans: list[Span] = []
    for tag in tags:
        if any(
            k in ("name", "id") and v is not None and _is_secret_field(v) for k, v in tag.attributes
        ):
            spans.append((offset + tag.start, offset + tag.end, _render_tag(tag)))
        if tag.name in ("script", "style") and not nested:
            close = _RAW_TEXT_END.search(text, tag.end)
            end = close.start() if close else len(text)
            inner = text[tag.end : end]
            spans += _tag_spans(inner, offset + tag.end, nested=True, last=close is None)
    if last and text.startswith("<", stop):
        # An unterminated tag (or markup the parser gave up on) at the end: it may hold a value
        # the cut of the body split in two.
        spans.append((offset + stop, offset + len(text), _REDACTED))
    return spans


def _soap_spans(text: str) -> list[Span]:
    """The text of ``Password``, ``BinarySecurityToken`` and ``BinarySecret`` elements."""
    spans: list[Span] = []
    position = 0
    while (opening := _SOAP_OPEN.search(text, position)) is not None:
        position = opening.end()
        if opening.group(0).endswith("/>"):
            continue
        closing = _SOAP_CLOSE[opening.group(1).lower()].search(text, position)
        if closing is None:
            spans.append((position, len(text), _REDACTED))
            break
        spans.append((position, closing.start(), _REDACTED))
        position = closing.end()
    return spans


def _assignment_spans(text: str) -> list[Span]:
    """The values of ``field: value`` and ``field=value`` pairs naming a secret field."""
    spans: list[Span] = []
    position = 0
    while (key := _ASSIGNMENT.search(text, position)) is not None:
        start = key.end()
        quote = text[start : start + 1]
        if quote in ("'", '"'):
            rest = _QUOTED_REST[quote].match(text, start + 1)
            if rest is None:  # unterminated: everything after it may be the secret
                spans.append((start + 1, len(text), _REDACTED))
                break
            spans.append((start + 1, rest.end() - 1, _REDACTED))
            position = rest.end()
        else:
            bare = _BARE_VALUE.match(text, start)
            end = bare.end() if bare else start
            if end > start:
                spans.append((start, end, _REDACTED))
            position = end  # > key.start(): the key itself is not empty
    return spans


def _apply(text: str, spans: list[Span]) -> str:
    """``text`` with each span replaced; overlapping spans merge into one marker."""
    merged: list[Span] = []
    for start, end, replacement in sorted(spans, key=lambda span: (span[0], -span[1])):
        if merged and start < merged[-1][1]:
            last_start, last_end, _ = merged[-1]
            if end > last_end:
                merged[-1] = (last_start, end, _REDACTED)
            continue
        merged.append((start, end, replacement))
    out: list[str] = []
    position = 0
    for start, end, replacement in merged:
        out += [text[position:start], replacement]
        position = end
    out.append(text[position:])
    return "".join(out)


def _redact_text(text: str) -> str:
    """Redaction for bodies that are not JSON or a labelled form: SOAP, HTML, scripts, text."""
    return _apply(text, _tag_spans(text) + _soap_spans(text) + _assignment_spans(text))


def _is_json_type(kind: str) -> bool:
    return kind in ("application/json", "text/json") or kind.endswith("+json")


def _redact_body(head: bytes, content_type: str | None, whole: bool) -> str:
    text = head.decode(json.detect_encoding(head), "replace")  # as _load_json decodes it
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return _redact_pairs(text, _REDACTED)
    if _is_json_type(kind) or text.lstrip()[:1] in ("{", "["):
        try:
            if whole:
                return json.dumps(_redact_json(json.loads(text)))
        except (ValueError, RecursionError):
            if _is_json_type(kind):
                return "<unparsable JSON body>"
    handshake = _HANDSHAKE.fullmatch(text)
    if handshake is not None:
        return _REDACTED + handshake.group(2)
    return _redact_text(text)


def describe(message: HttpRequest | HttpResponse, *, body_limit: int = 2000) -> str:
    """A multi-line, redacted rendering of a request or response, for traffic logs.

    The body is cut to ``body_limit`` characters after redaction (see the module notes).
    """
    from ._http import HttpRequest  # imported here: _http imports this module

    if isinstance(message, HttpRequest):
        first = f"{message.method} {redact_url(message.url)}"
    else:
        first = f"HTTP {message.status}" + (f" ({redact_url(message.url)})" if message.url else "")
    lines = [first]
    lines += [f"  {name}: {value}" for name, value in redact_headers(message.headers)]
    body, shown = message.body, ""
    head = body[: max(READ_LIMIT, 8 * body_limit)]
    values: list[str] = []
    if head:
        _body_secrets(head, values)  # first: what the flows use must not be crowded out
    needles = _needles(values + _message_secrets(message))
    if head:
        whole = len(head) == len(body)
        shown = _mask(_redact_body(head, message.header("content-type"), whole), needles)
        if len(shown) > body_limit or not whole:
            shown = f"{shown[:body_limit]}... ({len(body)} bytes)"
    text = _mask("\n".join(lines), needles)
    return f"{text}\n  {shown}" if shown else text
