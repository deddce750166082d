"""Building blocks shared by every flow: request construction, auth headers, status checks.

Every request the core sends is made by :func:`build_request`, so the ``User-Agent`` and the three
auth-header kinds are decided here once. Every status check goes through :func:`check_status`,
which is where 429 becomes :class:`~skyproto.SkypeRateLimitException` (with ``Retry-After``) and
anything else unexpected becomes :class:`~skyproto.SkypeApiException`.

Timeouts are decided here too. Every request :func:`build_request` makes carries a finite
``timeout``: the one given, or else the entry of :data:`TIMEOUTS` for its ``kind``. The policy,
in seconds for the whole exchange (connect to last byte), as the transports bound it:

==================  =======  =========================================================
kind                seconds  calls
==================  =======  =========================================================
``login page``      30       GET of a login or authorize page (§2), each redirect hop
``login form``      30       POST of the credentials or a page's form (§2)
``token exchange``  30       SOAP security token, edge and API token exchanges (§2)
``registration``    30       the registration-token handshake (§3)
``endpoint``        20       endpoint calls: configure, subscribe, presence, ping (§5)
``poll``            hold+15  the long poll (§5.6): the server's hold plus this margin
``ack``             10       acknowledging an event (§5.7)
``paging``          30       a page of a syncState listing (§6)
``profile``         20       the account's profile
``guest``           30       the guest join pages and calls
``call``            30       anything else (unauthenticated lookups, other API calls)
==================  =======  =========================================================

A caller may pass a shorter (or longer) ``timeout`` of its own (the event loop cuts the poll's
to the time left before its deadline); it must be positive and finite.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import math
import re
import urllib.parse
from collections.abc import Collection, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal

from ._flow import Flow, now, request
from ._http import HeaderInput, HttpRequest, HttpResponse
from ._version import __version__
from .errors import LocalProtocolError, SkypeApiException, SkypeRateLimitException

__all__ = ["AuthKind", "CallKind", "build_request", "external_call"]

#: What the core sends as ``User-Agent``: the package name and its version (``_version.py``).
USER_AGENT = f"skyproto/{__version__}"

#: Statuses accepted on authenticated and general calls.
DEFAULT_ACCEPTED: frozenset[int] = frozenset({200, 201, 202, 204, 207})
#: Statuses accepted on unauthenticated "external" calls (no 202).
EXTERNAL_ACCEPTED: frozenset[int] = frozenset({200, 201, 204, 207})
#: Statuses accepted by the registration handshake, which uses 404 for "go elsewhere".
REGISTRATION_ACCEPTED: frozenset[int] = frozenset({200, 201, 404})

#: The kinds of call :data:`TIMEOUTS` has a bound for.
CallKind = Literal[
    "login page",
    "login form",
    "token exchange",
    "registration",
    "endpoint",
    "poll",
    "ack",
    "paging",
    "profile",
    "guest",
    "call",
]

#: Seconds each kind of call may take, connect to last byte (the table in this module's
#: docstring). For ``"poll"`` it is the margin added to the server's hold time.
TIMEOUTS: Mapping[CallKind, float] = MappingProxyType(
    {
        "login page": 30.0,
        "login form": 30.0,
        "token exchange": 30.0,
        "registration": 30.0,
        "endpoint": 20.0,
        "poll": 15.0,
        "ack": 10.0,
        "paging": 30.0,
        "profile": 20.0,
        "guest": 30.0,
        "call": 30.0,
    }
)

# delta-seconds (RFC 9110 says digits; a decimal fraction is tolerated).
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class AuthKind(enum.Enum):
    """How a token is attached to a request."""

    SKYPE_TOKEN = "X-SkypeToken"
    AUTHORIZE = "Authorization"
    REG_TOKEN = "RegistrationToken"


def auth_header(kind: AuthKind, token: str) -> tuple[str, str]:
    """The header that carries ``token`` for ``kind``."""
    if kind is AuthKind.AUTHORIZE:
        return ("Authorization", f"skype_token {token}")
    return (kind._value_, token)  # the plain attribute: .value is a slower descriptor


def check_seconds(value: Any, what: str) -> float:
    """``value`` as a float if it is a positive, finite number of seconds, else
    :class:`LocalProtocolError` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LocalProtocolError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise LocalProtocolError(f"{what} must be positive and finite, not {value!r}")
    return float(value)


def call_timeout(kind: CallKind, *, hold: float = 0.0) -> float:
    """The timeout :data:`TIMEOUTS` gives a call of ``kind``; for ``"poll"``, ``hold`` plus it.

    An unknown ``kind``, or a ``hold`` that is negative or not finite, raises
    :class:`LocalProtocolError`.
    """
    if kind not in TIMEOUTS:
        raise LocalProtocolError(f"no timeout for calls of kind {kind!r}")
    if hold:
        check_seconds(hold, "hold")
    return TIMEOUTS[kind] + hold


def build_request(
    method: str,
    url: str,
    *,
    kind: CallKind = "call",
    auth: tuple[AuthKind, str] | None = None,
    params: Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None = None,
    headers: HeaderInput = None,
    json: Any = None,
    form: Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None = None,
    content: bytes | str | None = None,
    cookies: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
    user_agent: str = USER_AGENT,
) -> HttpRequest:
    """Build a request with the project's ``User-Agent``, a timeout and, if given, an auth header.

    Header order: ``User-Agent``, the auth header, then ``headers``. A ``User-Agent`` in
    ``headers`` replaces the default one (a request never carries two). The request's timeout is
    ``timeout`` when given (positive and finite, else :class:`LocalProtocolError`), otherwise
    the :data:`TIMEOUTS` entry for ``kind``: never ``None``. A ``"poll"`` is marked
    :attr:`~skyproto.HttpRequest.long_poll`, the one place the core decides which requests the
    transports send from their long-poll budget.
    """
    limit = call_timeout(kind) if timeout is None else check_seconds(timeout, "timeout")
    given: list[tuple[str, str | None]] = []
    if headers is not None:
        given.extend(headers.items() if isinstance(headers, Mapping) else headers)
    extra: list[tuple[str, str | None]] = []
    if not given or not any(
        isinstance(name, str) and name.lower() == "user-agent" for name, _ in given
    ):
        extra.append(("User-Agent", user_agent))
    if auth is not None:
        extra.append(auth_header(*auth))
    extra.extend(given)
    return HttpRequest.build(
        method,
        url,
        params=params,
        headers=extra,
        json=json,
        form=form,
        content=content,
        cookies=cookies,
        timeout=limit,
        long_poll=kind == "poll",
    )


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds, or an HTTP date given ``now``.

    ``None`` when the value is absent or unreadable, or is a date and ``now`` is not given. A
    date in the past gives 0. ``now`` must be timezone-aware (:class:`LocalProtocolError`).
    """
    if now is not None and (not isinstance(now, dt.datetime) or now.utcoffset() is None):
        raise LocalProtocolError("now must be a timezone-aware datetime")
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
        return seconds if seconds != float("inf") else None
    if now is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def _is_delta_seconds(value: str | None) -> bool:
    return value is not None and _DELTA_SECONDS.fullmatch(value.strip()) is not None


def display_url(url: str) -> str:
    """``url`` without its query, fragment and user info, as error messages show it."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_status(
    response: HttpResponse,
    accepted: Collection[int],
    *,
    method: str,
    url: str,
    now: dt.datetime | None = None,
) -> HttpResponse:
    """Return ``response`` if its status is accepted, else raise the matching exception.

    429 raises :class:`SkypeRateLimitException` carrying ``retry_after``; any other status
    raises :class:`SkypeApiException` ``"<status> response from <METHOD> <url>"`` (URL without
    its query, as the reference client words it).
    """
    if response.status in accepted:
        return response
    if response.status == 429:
        retry_after = parse_retry_after(response.header("retry-after"), now=now)
        hint = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        raise SkypeRateLimitException(f"Rate limit exceeded{hint}", response, retry_after)
    raise SkypeApiException(
        f"{response.status} response from {method.upper()} {display_url(url)}", response
    )


def external_call(
    method: str,
    url: str,
    *,
    params: Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None = None,
    headers: HeaderInput = None,
    json: Any = None,
    form: Mapping[str, str | None] | Iterable[tuple[str, str | None]] | None = None,
    accepted: Collection[int] = EXTERNAL_ACCEPTED,
    timeout: float | None = None,
) -> Flow[HttpResponse]:
    """An unauthenticated call (public lookups, config): no token is attached.

    Returns the response when its status is in ``accepted``; 429 raises
    :class:`SkypeRateLimitException`, anything else :class:`SkypeApiException`. Only a 429 whose
    ``Retry-After`` is an HTTP date makes the flow ask for the time (a :class:`~skyproto.Now`
    effect), to turn the date into seconds.
    """
    req = build_request(
        method, url, params=params, headers=headers, json=json, form=form, timeout=timeout
    )
    response = yield from request(req)
    current: dt.datetime | None = None
    retry_after = response.header("retry-after")
    if (
        response.status == 429
        and response.status not in accepted
        and retry_after is not None
        and not _is_delta_seconds(retry_after)
    ):
        current = yield from now()
    return check_status(response, accepted, method=method, url=url, now=current)
