"""The saved-state snapshot: versioned JSON, strict loading, clear errors without secrets."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from skyproto import Hosts, LocalProtocolError, SkypeTokenException
from skyproto._snapshot import (
    SNAPSHOT_VERSION,
    SessionState,
    dump_snapshot,
    load_snapshot,
    snapshot_converter,
)
from skyproto.paging import PagingState
from skyproto.registration import Registration
from skyproto.tokens import Credentials, RegistrationToken, SkypeToken

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
HOSTS = Hosts()
H = "https://db3-client-s.gateway.messenger.live.com/v1"
SKYPE_SECRET = "SKYPE-SECRET-b7e1"
REG_SECRET = "registrationToken=REG-SECRET-9f2c"
ENDPOINT = "{2ca2fe7c-1b9d-4f1a-9c2e-0123456789ab}"
LISTING = f"GET {H}/users/ME/conversations"
LINK = f"{H}/users/ME/conversations?syncState=abc"

STATE = SessionState(
    user_id="live:fred",
    skype_token=SkypeToken(SKYPE_SECRET, LATER),
    registration=Registration(RegistrationToken(REG_SECRET, LATER), H, ENDPOINT),
    endpoints=(ENDPOINT, "{00000000-0000-0000-0000-000000000001}"),
    paging=PagingState({LISTING: LINK}),
    guest=False,
)

GOLDEN = (
    b'{"version": 1, "user_id": "live:fred", '
    b'"skype_token": {"token": "SKYPE-SECRET-b7e1", "expiry": "2100-01-01T00:00:00+00:00"}, '
    b'"registration": {"token": {"token": "registrationToken=REG-SECRET-9f2c", '
    b'"expiry": "2100-01-01T00:00:00+00:00"}, '
    b'"messenger": "https://db3-client-s.gateway.messenger.live.com/v1", '
    b'"endpoint_id": "{2ca2fe7c-1b9d-4f1a-9c2e-0123456789ab}"}, '
    b'"endpoints": ["{2ca2fe7c-1b9d-4f1a-9c2e-0123456789ab}", '
    b'"{00000000-0000-0000-0000-000000000001}"], '
    b'"paging": {"links": {"GET https://db3-client-s.gateway.messenger.live.com/v1/users/ME/'
    b'conversations": "https://db3-client-s.gateway.messenger.live.com/v1/users/ME/'
    b'conversations?syncState=abc"}}, '
    b'"guest": false}'
)


def document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(dump_snapshot(STATE))
    return doc


def load_error(data: bytes | str, hosts: Hosts = HOSTS) -> SkypeTokenException:
    with pytest.raises(SkypeTokenException) as caught:
        load_snapshot(data, now=NOW, hosts=hosts)
    error = caught.value
    for text in (str(error), repr(error)):
        assert SKYPE_SECRET not in text
        assert "REG-SECRET" not in text
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None
    return error


def test_dump_is_the_documented_json() -> None:
    assert dump_snapshot(STATE) == GOLDEN
    assert SNAPSHOT_VERSION == 1


def test_round_trip_bytes_and_text() -> None:
    assert load_snapshot(GOLDEN, now=NOW, hosts=HOSTS) == STATE
    assert load_snapshot(GOLDEN.decode(), now=NOW, hosts=HOSTS) == STATE


def test_empty_state_round_trips() -> None:
    empty = SessionState()
    assert dump_snapshot(empty) == (
        b'{"version": 1, "user_id": null, "skype_token": null, "registration": null, '
        b'"endpoints": [], "paging": {"links": {}}, "guest": false}'
    )
    assert load_snapshot(dump_snapshot(empty), now=NOW, hosts=HOSTS) == empty


def test_guest_state_round_trips() -> None:
    guest = attrs.evolve(STATE, user_id="guest:fred_ab12cd34", guest=True)
    assert load_snapshot(dump_snapshot(guest), now=NOW, hosts=HOSTS) == guest


def test_no_password_is_ever_written() -> None:
    credentials = Credentials("fred", "hunter2-password")
    assert "hunter2" not in repr(credentials)
    assert {a.name for a in attrs.fields(SessionState)} == {
        "user_id",
        "skype_token",
        "registration",
        "endpoints",
        "paging",
        "guest",
        "teams",
    }
    assert b"password" not in dump_snapshot(STATE)


def test_repr_hides_the_tokens() -> None:
    assert SKYPE_SECRET not in repr(STATE)
    assert "REG-SECRET" not in repr(STATE)


def test_offsets_are_normalised_to_utc() -> None:
    doc = document()
    doc["skype_token"]["expiry"] = "2100-01-01T05:30:00+05:30"
    doc["registration"]["token"]["expiry"] = "2099-12-31T16:00:00-08:00"
    state = load_snapshot(json.dumps(doc), now=NOW, hosts=HOSTS)
    assert state == STATE
    assert state.skype_token is not None
    assert state.skype_token.expiry.tzinfo is dt.UTC


def test_z_suffix_is_accepted() -> None:
    doc = document()
    doc["skype_token"]["expiry"] = "2100-01-01T00:00:00Z"
    assert load_snapshot(json.dumps(doc), now=NOW, hosts=HOSTS) == STATE


# -- expiry and trust ---------------------------------------------------------------------------


def test_expired_skype_token_is_refused() -> None:
    doc = document()
    doc["skype_token"]["expiry"] = "2024-06-01T11:00:00+00:00"
    error = load_error(json.dumps(doc))
    assert str(error) == "saved Skype token expired at 2024-06-01T11:00:00+00:00; log in again"


def test_skype_token_inside_the_refresh_leeway_counts_as_expired() -> None:
    doc = document()
    doc["skype_token"]["expiry"] = "2024-06-01T12:01:00+00:00"
    assert "expired" in str(load_error(json.dumps(doc)))


def test_earliest_expiry_is_expired_not_a_crash() -> None:
    doc = document()
    doc["skype_token"]["expiry"] = "0001-01-01T00:00:00+00:00"
    assert str(load_error(json.dumps(doc))) == (
        "saved Skype token expired at 0001-01-01T00:00:00+00:00; log in again"
    )


def test_expired_registration_is_dropped() -> None:
    doc = document()
    doc["registration"]["token"]["expiry"] = "2024-06-01T12:00:00+00:00"
    state = load_snapshot(json.dumps(doc), now=NOW, hosts=HOSTS)
    assert state == attrs.evolve(STATE, registration=None)


def test_earliest_registration_expiry_is_dropped() -> None:
    doc = document()
    doc["registration"]["token"]["expiry"] = "0001-01-01T00:00:00+00:00"
    assert load_snapshot(json.dumps(doc), now=NOW, hosts=HOSTS).registration is None


def test_state_without_a_skype_token_loads() -> None:
    doc = document()
    doc["skype_token"] = None
    assert load_snapshot(json.dumps(doc), now=NOW, hosts=HOSTS) == attrs.evolve(
        STATE, skype_token=None
    )


@pytest.mark.parametrize(
    ("messenger", "host"),
    [
        ("https://evil.example/v1", "evil.example"),
        (
            "http://db3-client-s.gateway.messenger.live.com/v1",
            "db3-client-s.gateway.messenger.live.com",
        ),
        ("https://live.com.evil.example/v1", "live.com.evil.example"),
        ("not a url", "not a url"),
    ],
)
def test_untrusted_messenger_is_refused(messenger: str, host: str) -> None:
    doc = document()
    doc["registration"]["messenger"] = messenger
    error = load_error(json.dumps(doc))
    assert str(error) == f"saved state names messaging host {host!r}, which is not trusted"


def test_untrusted_messenger_of_an_expired_registration_is_just_dropped() -> None:
    doc = document()
    doc["registration"]["messenger"] = "https://evil.example/v1"
    doc["registration"]["token"]["expiry"] = "2001-01-01T00:00:00+00:00"
    assert load_snapshot(json.dumps(doc), now=NOW, hosts=HOSTS).registration is None


def test_trust_follows_the_hosts_profile() -> None:
    base = "http://127.0.0.1:8080/client-s.gateway.messenger.live.com"
    loopback = Hosts({"client-s.gateway.messenger.live.com": base})
    state = attrs.evolve(
        STATE, registration=Registration(RegistrationToken(REG_SECRET, LATER), base + "/v1")
    )
    assert load_snapshot(dump_snapshot(state), now=NOW, hosts=loopback) == state
    assert "not trusted" in str(load_error(dump_snapshot(state), hosts=HOSTS))
    assert "not trusted" in str(load_error(dump_snapshot(STATE), hosts=loopback))


# -- corrupt input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "saved state is not valid JSON (truncated?)"),
        (GOLDEN[:-1], "saved state is not valid JSON (truncated?)"),
        (GOLDEN[:40], "saved state is not valid JSON (truncated?)"),
        (GOLDEN + b"}", "saved state is not valid JSON (truncated?)"),
        (b"[" * 100_000, "saved state is not valid JSON (truncated?)"),
        (b'{"version": 1' + b"9" * 5000 + b"}", "saved state is not valid JSON (truncated?)"),
        (GOLDEN.replace(b"live:fred", b"live:\xc3"), "saved state is not valid UTF-8"),
        ("\ufeff" + GOLDEN.decode(), "saved state is not valid JSON (truncated?)"),
        (b"[]", "saved state is an array, not a JSON object"),
        (b"null", "saved state is null, not a JSON object"),
        (b'"SKYPE-SECRET-b7e1"', "saved state is a string, not a JSON object"),
        (b"{}", "saved state has no version"),
        (b'{"version": "1"}', "saved state version is a string, not an integer"),
        (b'{"version": true}', "saved state version is a boolean, not an integer"),
        (b'{"version": 1.0}', "saved state version is a number, not an integer"),
        (b'{"version": null}', "saved state version is null, not an integer"),
        (b'{"version": 7}', "saved state version 7 is not supported (expected 1)"),
        (b'{"version": 0}', "saved state version 0 is not supported (expected 1)"),
        (b'{"version": -1}', "saved state version -1 is not supported (expected 1)"),
        (
            b'{"version": 100000000000000000000}',
            "saved state version (out of range) is not supported (expected 1)",
        ),
    ],
)
def test_unreadable_documents(data: bytes | str, message: str) -> None:
    assert str(load_error(data)) == message


def test_a_version_in_the_body_twice_takes_the_last() -> None:
    data = GOLDEN.replace(b'{"version": 1, ', b'{"version": 1, "version": 2, ')
    assert str(load_error(data)) == "saved state version 2 is not supported (expected 1)"


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for name in parents:
        doc = doc[name]
    doc[last] = value


def drop_path(doc: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    for name in parents:
        doc = doc[name]
    del doc[last]


WRONG_VALUES: list[tuple[str, Any, str]] = [
    ("user_id", 1, "saved state field 'user_id': expected a string, got a number"),
    ("user_id", ["live:fred"], "saved state field 'user_id': expected a string, got an array"),
    (
        "skype_token",
        SKYPE_SECRET,
        "saved state field 'skype_token': expected an object, got a string",
    ),
    (
        "skype_token",
        [SKYPE_SECRET],
        "saved state field 'skype_token': expected an object, got an array",
    ),
    (
        "skype_token.token",
        123,
        "saved state field 'skype_token.token': expected a string, got a number",
    ),
    (
        "skype_token.token",
        None,
        "saved state field 'skype_token.token': expected a string, got null",
    ),
    ("skype_token.token", "", "saved state field 'skype_token.token': not a usable token"),
    (
        "skype_token.token",
        "SKYPE-SECRET-b7e1\r\nX: y",
        "saved state field 'skype_token.token': not a usable token",
    ),
    (
        "skype_token.expiry",
        None,
        "saved state field 'skype_token.expiry': expected an ISO 8601 date-time string, got null",
    ),
    (
        "skype_token.expiry",
        4102444800,
        "saved state field 'skype_token.expiry': expected an ISO 8601 date-time string, got a number",
    ),
    (
        "skype_token.expiry",
        "2100-01-01T00:00:00",
        "saved state field 'skype_token.expiry': date-time has no UTC offset",
    ),
    (
        "skype_token.expiry",
        "2100-01-01",
        "saved state field 'skype_token.expiry': date-time has no UTC offset",
    ),
    (
        "skype_token.expiry",
        "tomorrow",
        "saved state field 'skype_token.expiry': not an ISO 8601 date-time",
    ),
    (
        "skype_token.expiry",
        SKYPE_SECRET,
        "saved state field 'skype_token.expiry': not an ISO 8601 date-time",
    ),
    (
        "skype_token.expiry",
        "0001-01-01T00:00:00+05:00",
        "saved state field 'skype_token.expiry': date-time out of range",
    ),
    (
        "skype_token.expiry",
        "9999-12-31T23:59:59-05:00",
        "saved state field 'skype_token.expiry': date-time out of range",
    ),
    ("registration", "x", "saved state field 'registration': expected an object, got a string"),
    (
        "registration.token",
        REG_SECRET,
        "saved state field 'registration.token': expected an object, got a string",
    ),
    (
        "registration.token.token",
        False,
        "saved state field 'registration.token.token': expected a string, got a boolean",
    ),
    (
        "registration.token.token",
        "",
        "saved state field 'registration.token.token': not a usable token",
    ),
    (
        "registration.token.token",
        "registrationToken=REG-SECRET-9f2c\x00",
        "saved state field 'registration.token.token': not a usable token",
    ),
    (
        "registration.token.expiry",
        "soon",
        "saved state field 'registration.token.expiry': not an ISO 8601 date-time",
    ),
    (
        "registration.messenger",
        None,
        "saved state field 'registration.messenger': expected a string, got null",
    ),
    (
        "registration.endpoint_id",
        5,
        "saved state field 'registration.endpoint_id': expected a string, got a number",
    ),
    ("endpoints", "{abc}", "saved state field 'endpoints': expected an array, got a string"),
    ("endpoints", {"a": "b"}, "saved state field 'endpoints': expected an array, got an object"),
    ("endpoints", None, "saved state field 'endpoints': expected an array, got null"),
    (
        "endpoints",
        ["{a}", 2, None],
        "saved state field 'endpoints[1]': expected a string, got a number; saved state field 'endpoints[2]': expected a string, got null",
    ),
    ("paging", [], "saved state field 'paging': expected an object, got an array"),
    (
        "paging.links",
        [["a", "b"]],
        "saved state field 'paging.links': expected an object, got an array",
    ),
    (
        "paging.links",
        {SKYPE_SECRET: 1},
        "saved state field 'paging.links[…]': expected a string, got a number",
    ),
    ("guest", "false", "saved state field 'guest': expected a boolean, got a string"),
    ("guest", 0, "saved state field 'guest': expected a boolean, got a number"),
    ("guest", None, "saved state field 'guest': expected a boolean, got null"),
]


@pytest.mark.parametrize(("path", "value", "message"), WRONG_VALUES)
def test_wrong_values_name_the_field(path: str, value: Any, message: str) -> None:
    doc = document()
    set_path(doc, path, value)
    assert str(load_error(json.dumps(doc))) == message


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("user_id", "saved state field 'user_id': required field missing"),
        ("registration", "saved state field 'registration': required field missing"),
        ("guest", "saved state field 'guest': required field missing"),
        ("skype_token.token", "saved state field 'skype_token.token': required field missing"),
        ("skype_token.expiry", "saved state field 'skype_token.expiry': required field missing"),
        (
            "registration.token.expiry",
            "saved state field 'registration.token.expiry': required field missing",
        ),
    ],
)
def test_missing_fields_are_named(path: str, message: str) -> None:
    doc = document()
    drop_path(doc, path)
    assert str(load_error(json.dumps(doc))) == message


def test_every_missing_top_level_field_is_named() -> None:
    assert str(load_error(b'{"version": 1}')) == (
        "saved state field 'user_id': required field missing; "
        "saved state field 'skype_token': required field missing; "
        "saved state field 'registration': required field missing; "
        "and 3 more problem(s)"
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("password", "saved state: unexpected field(s) 'password'"),
        ("skype_token.refresh", "saved state field 'skype_token': unexpected field(s) 'refresh'"),
        ("registration.host", "saved state field 'registration': unexpected field(s) 'host'"),
        ("paging.pages", "saved state field 'paging': unexpected field(s) 'pages'"),
        (SKYPE_SECRET, "saved state: 1 unexpected field(s)"),
    ],
)
def test_unexpected_fields_are_refused(path: str, message: str) -> None:
    doc = document()
    set_path(doc, path, "x")
    assert str(load_error(json.dumps(doc))) == message


def test_swapped_tokens_are_a_shape_error() -> None:
    doc = document()
    doc["skype_token"], doc["registration"] = doc["registration"], doc["skype_token"]
    assert str(load_error(json.dumps(doc))) == (
        "saved state field 'skype_token.token': expected a string, got an object; "
        "saved state field 'skype_token.expiry': required field missing; "
        "saved state field 'skype_token': unexpected field(s) 'endpoint_id', 'messenger'; "
        "and 3 more problem(s)"
    )


# -- the converter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "raw", "expected"),
    [
        (int, 3, 3),
        (float, 3, 3.0),
        (float, 2.5, 2.5),
        (bool, True, True),
        (str, "x", "x"),
        (tuple[str, ...], ["a", "b"], ("a", "b")),
        (list[int], [1, 2], [1, 2]),
        (tuple[int, str], [1, "a"], (1, "a")),
    ],
)
def test_strict_primitives_accept_their_own_type(type_: Any, raw: Any, expected: Any) -> None:
    assert snapshot_converter.structure(raw, type_) == expected


@pytest.mark.parametrize(
    ("type_", "raw"),
    [
        (int, True),
        (int, "3"),
        (int, 3.0),
        (float, False),
        (float, "2.5"),
        (bool, 1),
        (str, 3),
        (tuple[str, ...], "ab"),
        (list[int], {"a": 1}),
        (tuple[int, str], [1]),
        (dt.datetime, 0),
    ],
)
def test_strict_primitives_refuse_coercion(type_: Any, raw: Any) -> None:
    with pytest.raises(ValueError, match=r"^expected"):
        snapshot_converter.structure(raw, type_)


def test_naive_datetimes_are_never_written() -> None:
    with pytest.raises(LocalProtocolError, match="timezone-aware"):
        snapshot_converter.unstructure(dt.datetime(2100, 1, 1), dt.datetime)


def test_resume_sends_nothing() -> None:
    # load_snapshot is a plain function: it cannot yield a request.
    loaded: Callable[..., SessionState] = load_snapshot
    assert isinstance(loaded(GOLDEN, now=NOW, hosts=HOSTS), SessionState)
