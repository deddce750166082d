"""Helpers shared by the login flows: HTML scanning, the ``sErrTxt`` message, expiries, t-exchange.

HTML is read with the standard library's :class:`html.parser.HTMLParser`, which never raises on
bad markup and, like a browser, treats ``<script>`` contents as text: an ``<input>`` written
inside a JavaScript string is not an element. Every scan here takes linear time, so a hostile or
broken page cannot stall a login. Regular expressions are used only where docs/protocol.md
§2.2 defines a rule on the raw page text (``sErrTxt``, the two-factor marker, PPFT, opid).

Expiry policy: an answer's ``expiresIn``/``expires_in`` gives ``floor(now) + value`` seconds. The
value must be a non-negative integer, an integer-valued JSON number or a string of decimal digits;
anything else is a :class:`~skyproto.RemoteProtocolError`. An answer with no expiry at all gets
``now +`` :data:`~skyproto.tokens.DEFAULT_TOKEN_LIFETIME` (the reference client stores "unknown"
and later crashes on it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

import attrs

from .._flow import Flow, now
from .._http import HttpResponse
from ..calls import build_request
from ..errors import RemoteProtocolError, SkypeAuthException
from ..hosts import Hosts
from ..tokens import DEFAULT_TOKEN_LIFETIME, SkypeToken
from ._redirects import CookieJar, fetch_checked

__all__ = [
    "CLIENT_ID",
    "OAUTH_PARTNER",
    "REDIRECT_URI",
    "SITE_NAME",
    "Form",
    "PageScan",
    "error_text",
    "expiry_from",
    "json_object",
    "login_query",
    "parse_token_page",
    "require_text",
    "scan_page",
    "shorten",
    "t_exchange",
    "t_value_or_error",
]

CLIENT_ID = "578134"
REDIRECT_URI = "https://web.skype.com"
OAUTH_PARTNER = "999"
SITE_NAME = "lw.skype.com"

# sErrTxt:'<body>': a run of plain characters, then any number of backslash escapes each followed
# by a run of plain characters (docs/protocol.md §2.2 rule 2, in the looser form of §2.4).
_ERROR_TEXT = re.compile(r"sErrTxt:'([^'\\]*(?:\\.[^'\\]*)*)'")
_MAX_MESSAGE = 300
_MAX_EXPIRES_IN = 10 * 366 * 24 * 3600
_INTEGER = re.compile(r"[+-]?[0-9]+")


def shorten(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Server-supplied text cut to ``limit`` characters for an exception message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@attrs.frozen
class Form:
    """A ``<form>`` element's identifying attributes (``None`` when absent or valueless)."""

    name: str | None
    id: str | None
    action: str | None


@attrs.frozen
class PageScan:
    """What the login flows look up in a page, found in one pass."""

    #: Whether some element has ``id="t"``, and that first element's ``value`` attribute.
    has_t: bool = False
    t_value: str | None = attrs.field(default=None, repr=False)
    forms: tuple[Form, ...] = ()
    #: The ``value`` of the first ``<input>`` of each ``name``; ``None`` when it has no value.
    inputs: dict[str, str | None] = attrs.field(factory=dict, repr=False)


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.has_t = False
        self.t_value: str | None = None
        self.forms: list[Form] = []
        self.inputs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found: dict[str, str | None] = {}
        for key, value in attrs:
            found.setdefault(key, value)
        if not self.has_t and found.get("id") == "t":
            self.has_t = True
            self.t_value = found.get("value")
        if tag == "form":
            self.forms.append(Form(found.get("name"), found.get("id"), found.get("action")))
        elif tag == "input":
            name = found.get("name")
            if name is not None:
                self.inputs.setdefault(name, found.get("value"))


def scan_page(text: str) -> PageScan:
    """Scan ``text`` as HTML for the t element, the forms and the first input of each name."""
    scanner = _Scanner()
    try:
        # No close(): what it would add is an unterminated tag at the very end of the page, which
        # browsers drop too, and HTMLParser.close() takes quadratic time on such input.
        scanner.feed(text)
    except (AssertionError, ValueError):  # pragma: no cover - defensive: the parser is lenient
        raise RemoteProtocolError("login page is not parsable HTML") from None
    return PageScan(scanner.has_t, scanner.t_value, tuple(scanner.forms), scanner.inputs)


def _strip_tags(text: str) -> str:
    """``text`` without ``<…>`` runs (shortest match, within one line), in linear time.

    The next ``>`` is found once and kept until a ``<`` lies beyond it; a newline between a ``<``
    and that ``>`` means no tag starts before the newline. No stretch of text is searched more
    than twice, a text without any ``>`` after its first ``<`` costs a single search, and text
    is copied out only around the tags actually removed.
    """
    kept: list[str] = []
    position = 0  # start of the text not yet copied out
    cursor = 0  # where to look for the next '<'
    close = -1
    while (start := text.find("<", cursor)) >= 0:
        if close < start:
            close = text.find(">", start)
            if close < 0:
                break
        newline = text.rfind("\n", start, close)
        if newline >= 0:
            cursor = newline + 1
            continue
        kept.append(text[position:start])
        position = cursor = close + 1
    kept.append(text[position:])
    return "".join(kept)


def _readable(body: str) -> str:
    """An ``sErrTxt`` body as a message: tags removed, then ``\\'`` and ``\\\\`` unescaped."""
    return _strip_tags(body).replace("\\'", "'").replace("\\\\", "\\")


def error_text(text: str) -> str | None:
    """The readable ``sErrTxt`` message in a page, or ``None`` when the page has none.

    Tags are removed, then ``\\'`` and ``\\\\`` are unescaped; other escapes stay as written.
    A message that is empty or only whitespace once read is no message: every Live page carries
    ``sErrTxt:''``, successful ones included. The first message that is not blank counts.
    """
    for match in _ERROR_TEXT.finditer(text):
        message = _readable(match.group(1))
        if message.strip():
            return message
    return None


def t_value_or_error(response: HttpResponse, page: str) -> tuple[PageScan, str | None]:
    """Scan a page that may carry the ``t`` value: ``(scan, t)``, with ``t`` ``None`` when the
    page has neither a ``t`` element nor an error message.

    Raises :class:`~skyproto.SkypeAuthException` with the page's readable error message, and
    :class:`~skyproto.RemoteProtocolError` for a ``t`` element without a value.
    """
    text = response.text
    scan = scan_page(text)
    if scan.has_t:
        if not scan.t_value:
            raise RemoteProtocolError(f"the {page}'s t element has no value", response)
        return scan, scan.t_value
    message = error_text(text)
    if message is not None:
        raise SkypeAuthException(shorten(message), response)
    return scan, None


def json_object(response: HttpResponse, what: str) -> dict[str, Any]:
    """The JSON object in ``response``'s body; :class:`~skyproto.RemoteProtocolError` naming
    ``what`` when the body is not JSON or not an object."""
    try:
        data = response.json()
    except RemoteProtocolError:
        raise RemoteProtocolError(f"{what} response is not JSON", response) from None
    if not isinstance(data, dict):
        raise RemoteProtocolError(f"{what} response is not a JSON object", response)
    return data


def require_text(value: Any, what: str, response: HttpResponse) -> str:
    """``value`` if it is a non-empty string, else :class:`~skyproto.RemoteProtocolError`."""
    if not isinstance(value, str) or not value:
        raise RemoteProtocolError(f"{what} is missing or empty", response)
    return value


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        digits = value.strip()
        # A longer string is out of range anyway; this keeps int() cheap.
        return int(digits) if len(digits) <= 13 else _MAX_EXPIRES_IN + 1
    return None


def expiry_from(
    fields: Mapping[str, Any], key: str, current: dt.datetime, response: HttpResponse
) -> dt.datetime:
    """The expiry that member ``key`` of a login answer gives at ``current``.

    An absent member gives the default lifetime; a present one must be a whole number of
    seconds (see the module notes), else :class:`~skyproto.RemoteProtocolError`.
    """
    if key not in fields:
        return current + DEFAULT_TOKEN_LIFETIME
    value = fields[key]
    if value is None:
        raise RemoteProtocolError(f"{key} in the login answer has no value", response)
    seconds = _seconds(value)
    if seconds is None:
        raise RemoteProtocolError(
            f"{key} in the login answer is not an integer number of seconds", response
        )
    if not 0 <= seconds <= _MAX_EXPIRES_IN:
        raise RemoteProtocolError(f"{key} in the login answer is out of range", response)
    return current.replace(microsecond=0) + dt.timedelta(seconds=seconds)


def login_query() -> list[tuple[str, str | None]]:
    """The ``client_id`` and ``redirect_uri`` query of the login.skype.com calls."""
    return [("client_id", CLIENT_ID), ("redirect_uri", REDIRECT_URI)]


def parse_token_page(response: HttpResponse, current: dt.datetime) -> SkypeToken:
    """Read the t-exchange answer: the ``skypetoken`` and ``expires_in`` inputs (§2.2)."""
    inputs = scan_page(response.text).inputs
    if "skypetoken" not in inputs:
        raise RemoteProtocolError("Couldn't retrieve Skype token from login response", response)
    token = require_text(inputs["skypetoken"], "the skypetoken input's value", response)
    return SkypeToken(token, expiry_from(inputs, "expires_in", current, response))


def t_exchange(t: str, *, hosts: Hosts, jar: CookieJar) -> Flow[SkypeToken]:
    """Sub-flow: trade the ``t`` value of a Live or refresh page for a Skype token (§2.2)."""
    url = hosts.login + "/microsoft"
    form = [
        ("t", t),
        ("client_id", CLIENT_ID),
        ("oauthPartner", OAUTH_PARTNER),
        ("site_name", SITE_NAME),
        ("redirect_uri", REDIRECT_URI),
    ]
    req = build_request("POST", url, kind="token exchange", params=login_query(), form=form)
    current = yield from now()
    response = yield from fetch_checked(req, hosts=hosts, jar=jar, now=current)
    return parse_token_page(response, current)


@attrs.frozen
class StartTag:
    """One start tag as :func:`scan_page` reads it, and the span of its text in the page."""

    name: str
    #: Every attribute in order, duplicates kept, names lower-cased and values decoded.
    attributes: tuple[tuple[str, str | None], ...] = attrs.field(repr=False)
    start: int
    end: int


class _TagLister(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text = text
        self.tags: list[StartTag] = []
        self._line, self._line_start = 1, 0

    def position(self) -> int:
        """The index in the text of the construct being read."""
        line, offset = self.getpos()
        while self._line < line:  # positions only move forward: linear over the whole page
            newline = self.text.find("\n", self._line_start)
            if newline < 0:  # pragma: no cover - defensive: the parser counts the same newlines
                break
            self._line_start = newline + 1
            self._line += 1
        return min(self._line_start + offset, len(self.text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self.position()
        raw = self.get_starttag_text() or ""
        self.tags.append(StartTag(tag, tuple(attrs), start, start + len(raw)))


def start_tags(text: str) -> tuple[list[StartTag], int]:
    """Every start tag in ``text``, read with the same parser and settings as :func:`scan_page`,
    and the index where reading stopped: ``len(text)``, or the start of what the parser left
    unread (an unterminated construct at the end) or could not parse.
    """
    lister = _TagLister(text)
    try:
        lister.feed(text)
    except (AssertionError, ValueError):
        # The parser gives up on some markup (``<![`` in Python 3.11): reading stopped there.
        return lister.tags, lister.position()
    return lister.tags, len(text) - len(lister.rawdata)
