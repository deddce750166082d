"""Building blocks shared by every flow: request construction, auth headers, status checks.

Every request the core sends is made by :func:`build_request`, so the ``User-Agent`` and the three
auth-header kinds are decided here once. Every status check goes through :func:`check_status`,
which is where 429 becomes :class:`~skyproto.SkypeRateLimitException` (with ``Retry-After``) and
anything else unexpected becomes :class:`~skyproto.SkypeApiException`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import re
import urllib.parse
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ._flow import Flow, now, request
from ._http import HeaderInput, HttpRequest, HttpResponse
from .errors import LocalProtocolError, SkypeApiException, SkypeRateLimitException

__all__ = [
    "DEFAULT_ACCEPTED",
    "EXTERNAL_ACCEPTED",
    "REGISTRATION_ACCEPTED",
    "USER_AGENT",
    "AuthKind",
    "auth_header",
    "build_request",
    "check_status",
    "display_url",
    "external_call",
    "parse_retry_after",
]

USER_AGENT = "skyproto/0.1"

#: Statuses accepted on authenticated and general calls.
DEFAULT_ACCEPTED: frozenset[int] = frozenset({200, 201, 202, 204, 207})
#: Statuses accepted on unauthenticated "external" calls (no 202).
EXTERNAL_ACCEPTED: frozenset[int] = frozenset({200, 201, 204, 207})
#: Statuses accepted by the registration handshake, which uses 404 for "go elsewhere".
REGISTRATION_ACCEPTED: frozenset[int] = frozenset({200, 201, 404})

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
    return (kind.value, token)


def build_request(
    method: str,
    url: str,
    *,
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
    """Build a request with the project's ``User-Agent`` and, if given, an auth header.

    Header order: ``User-Agent``, the auth header, then ``headers``. A ``User-Agent`` in
    ``headers`` replaces the default one (a request never carries two).
    """
    given: list[tuple[str, str | None]] = []
    if headers is not None:
        given.extend(headers.items() if isinstance(headers, Mapping) else headers)
    extra: list[tuple[str, str | None]] = []
    if not any(isinstance(name, str) and name.lower() == "user-agent" for name, _ in given):
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
        timeout=timeout,
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
