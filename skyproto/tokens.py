"""Credential and token values shared by the login, registration and session code.

Secrets are attrs fields with ``repr=False``: a token's ``repr`` shows its expiry, never its value.
Every expiry is an aware UTC ``datetime``.
"""

from __future__ import annotations

import datetime as dt

import attrs

from .errors import LocalProtocolError

__all__ = ["Credentials", "RegistrationToken", "SkypeToken"]

#: Lifetime assumed when a login answer gives no expiry (the reference client crashes instead).
DEFAULT_TOKEN_LIFETIME = dt.timedelta(hours=24)
#: Lifetime of a guest token; the join service gives none.
GUEST_TOKEN_LIFETIME = dt.timedelta(hours=24)
#: A token this close to its expiry counts as expired, so a request never races the deadline
#: (less for a short-lived token: see :func:`refresh_leeway`).
REFRESH_LEEWAY = dt.timedelta(minutes=5)


def refresh_leeway(lifetime: dt.timedelta | None) -> dt.timedelta:
    """The leeway for a token that lives ``lifetime`` (its expiry minus the time it was issued):
    ``min(REFRESH_LEEWAY, lifetime / 2)``, so a 60 s token is renewed after 30 s rather than
    counting as expired at once. ``None`` (not known) gives :data:`REFRESH_LEEWAY`."""
    if lifetime is None:
        return REFRESH_LEEWAY
    if not isinstance(lifetime, dt.timedelta):
        raise LocalProtocolError(f"lifetime is a timedelta, not {type(lifetime).__name__}")
    return max(dt.timedelta(0), min(REFRESH_LEEWAY, lifetime / 2))


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC datetime; naive values are refused, not guessed."""
    if not isinstance(value, dt.datetime):
        raise LocalProtocolError(f"expected a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise LocalProtocolError("datetimes must be timezone-aware")
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise LocalProtocolError("the datetime is out of range in UTC") from None


def _expired(expiry: dt.datetime, now: dt.datetime, leeway: dt.timedelta) -> bool:
    if not isinstance(leeway, dt.timedelta):
        raise LocalProtocolError(f"leeway is a timedelta, not {type(leeway).__name__}")
    # A difference of two datetimes always fits a timedelta; ``expiry - leeway`` may not.
    return expiry - utc(now) <= leeway


def _token_text(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    # Only the type is named: the value is a secret.
    if not isinstance(value, str):
        raise LocalProtocolError(f"{attribute.name} must be a str, not {type(value).__name__}")


@attrs.frozen
class Credentials:
    """A user name and password. The password never appears in a ``repr``."""

    user: str
    password: str = attrs.field(repr=False, validator=_token_text)


@attrs.frozen
class SkypeToken:
    """The Skype token a login returns, with its expiry."""

    token: str = attrs.field(repr=False, validator=_token_text)
    expiry: dt.datetime = attrs.field(converter=utc)

    def expired(self, now: dt.datetime, leeway: dt.timedelta = REFRESH_LEEWAY) -> bool:
        """Whether the token is past, or within ``leeway`` of, its expiry at ``now``."""
        return _expired(self.expiry, now, leeway)


@attrs.frozen
class RegistrationToken:
    """The registration token: the whole ``registrationToken=…`` fragment, as sent back."""

    token: str = attrs.field(repr=False, validator=_token_text)
    expiry: dt.datetime = attrs.field(converter=utc)

    def expired(self, now: dt.datetime, leeway: dt.timedelta = REFRESH_LEEWAY) -> bool:
        """Whether the token is past, or within ``leeway`` of, its expiry at ``now``."""
        return _expired(self.expiry, now, leeway)
