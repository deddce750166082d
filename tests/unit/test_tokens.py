"""Token and credential values (skyproto.tokens): expiry with leeway, aware times, hidden secrets."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skyproto import LocalProtocolError
from skyproto.tokens import (
    DEFAULT_TOKEN_LIFETIME,
    GUEST_TOKEN_LIFETIME,
    REFRESH_LEEWAY,
    Credentials,
    RegistrationToken,
    SkypeToken,
    utc,
)

EXPIRY = dt.datetime(2024, 5, 6, 12, 0, tzinfo=dt.UTC)
TICK = dt.timedelta(microseconds=1)
TOKEN_KINDS = [SkypeToken, RegistrationToken]


def test_constants() -> None:
    lifetimes = (DEFAULT_TOKEN_LIFETIME, GUEST_TOKEN_LIFETIME, REFRESH_LEEWAY)
    assert lifetimes == (dt.timedelta(hours=24), dt.timedelta(hours=24), dt.timedelta(minutes=5))


@pytest.mark.parametrize("kind", TOKEN_KINDS)
@pytest.mark.parametrize(
    ("now", "leeway", "expired"),
    [
        (EXPIRY - REFRESH_LEEWAY - TICK, REFRESH_LEEWAY, False),
        (EXPIRY - REFRESH_LEEWAY, REFRESH_LEEWAY, True),
        (EXPIRY, REFRESH_LEEWAY, True),
        (EXPIRY + dt.timedelta(days=400), REFRESH_LEEWAY, True),
        (EXPIRY - dt.timedelta(days=1), REFRESH_LEEWAY, False),
        (EXPIRY - TICK, dt.timedelta(0), False),
        (EXPIRY, dt.timedelta(0), True),
        (EXPIRY - dt.timedelta(hours=1), dt.timedelta(hours=1), True),
        (EXPIRY - dt.timedelta(hours=1) - TICK, dt.timedelta(hours=1), False),
        (EXPIRY + dt.timedelta(seconds=5), dt.timedelta(seconds=-10), False),
    ],
)
def test_expiry_with_leeway(
    kind: type[SkypeToken], now: dt.datetime, leeway: dt.timedelta, expired: bool
) -> None:
    assert kind("tok", EXPIRY).expired(now, leeway) is expired


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_default_leeway_is_refresh_leeway(kind: type[SkypeToken]) -> None:
    token = kind("tok", EXPIRY)
    assert token.expired(EXPIRY - REFRESH_LEEWAY - TICK) is False
    assert token.expired(EXPIRY - REFRESH_LEEWAY) is True


def test_other_zones_compare_by_instant() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    token = SkypeToken("tok", dt.datetime(2024, 5, 6, 14, 0, tzinfo=plus_two))
    assert token.expiry == EXPIRY
    assert token.expiry.tzinfo is dt.UTC
    assert token.expired(dt.datetime(2024, 5, 6, 13, 54, 59, tzinfo=plus_two)) is False
    assert token.expired(dt.datetime(2024, 5, 6, 11, 55, tzinfo=dt.UTC)) is True


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_extreme_expiries_do_not_overflow(kind: type[SkypeToken]) -> None:
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert kind("t", dt.datetime.min.replace(tzinfo=dt.UTC)).expired(now) is True
    assert kind("t", dt.datetime.max.replace(tzinfo=dt.UTC)).expired(now) is False
    assert kind("t", EXPIRY).expired(dt.datetime.max.replace(tzinfo=dt.UTC)) is True
    assert kind("t", EXPIRY).expired(dt.datetime.min.replace(tzinfo=dt.UTC)) is False


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_naive_datetimes_are_refused(kind: type[SkypeToken]) -> None:
    with pytest.raises(LocalProtocolError, match="timezone-aware"):
        kind("tok", dt.datetime(2024, 5, 6, 12, 0))
    token = kind("tok", EXPIRY)
    with pytest.raises(LocalProtocolError, match="timezone-aware"):
        token.expired(dt.datetime(2024, 5, 6, 12, 0))


class _NoOffset(dt.tzinfo):
    def utcoffset(self, _when: dt.datetime | None) -> None:
        return None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (dt.datetime(2024, 1, 1), "timezone-aware"),
        (dt.datetime(2024, 1, 1, tzinfo=_NoOffset()), "timezone-aware"),
        ("2024-01-01T00:00:00Z", "not str"),
        (dt.date(2024, 1, 1), "not date"),
        (1_700_000_000, "not int"),
        (None, "not NoneType"),
    ],
)
def test_utc_refuses_what_is_not_an_aware_datetime(value: Any, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        utc(value)


def test_utc_converts_to_utc() -> None:
    minus_five = dt.timezone(dt.timedelta(hours=-5))
    converted = utc(dt.datetime(2024, 5, 6, 7, 0, tzinfo=minus_five))
    assert converted == EXPIRY
    assert converted.tzinfo is dt.UTC
    assert utc(dt.datetime.max.replace(tzinfo=dt.UTC)) == dt.datetime.max.replace(tzinfo=dt.UTC)
    with pytest.raises(LocalProtocolError, match="out of range"):
        utc(dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-1))))


def test_leeway_must_be_a_timedelta() -> None:
    with pytest.raises(LocalProtocolError, match="timedelta"):
        SkypeToken("tok", EXPIRY).expired(EXPIRY, 300)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_reprs_hide_the_token(kind: type[SkypeToken]) -> None:
    token = kind("registrationToken=U2lnbmF0dXJlOjI6secret", EXPIRY)
    expected = (
        f"{kind.__name__}(expiry=datetime.datetime(2024, 5, 6, 12, 0, "
        "tzinfo=datetime.timezone.utc))"
    )
    assert repr(token) == expected
    assert str(token) == expected


def test_credentials_repr_hides_the_password() -> None:
    creds = Credentials("me@example.com", "hunter2-password")
    assert repr(creds) == "Credentials(user='me@example.com')"
    assert "hunter2" not in str(creds)
    assert creds.password == "hunter2-password"


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_token_text_must_be_str_and_is_not_echoed(kind: type[SkypeToken]) -> None:
    with pytest.raises(LocalProtocolError, match="token must be a str, not bytes") as caught:
        kind(b"secret-bytes", EXPIRY)  # type: ignore[arg-type]
    assert "secret-bytes" not in str(caught.value)
    with pytest.raises(LocalProtocolError, match="password must be a str, not NoneType"):
        Credentials("me", None)  # type: ignore[arg-type]


def test_tokens_are_frozen_values() -> None:
    token = SkypeToken("tok", EXPIRY)
    assert token == SkypeToken("tok", EXPIRY)
    assert token != SkypeToken("other", EXPIRY)
    with pytest.raises(AttributeError):
        token.token = "changed"  # type: ignore[misc]
