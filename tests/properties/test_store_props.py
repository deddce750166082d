"""Properties of the saved-state snapshot and of SkPy's token-file format."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from skyproto import Hosts, SkypeTokenException
from skyproto.paging import PagingState
from skyproto.registration import Registration
from skyproto.session import SessionState, dump_snapshot, load_snapshot
from skyproto.store import (
    format_skpy_token_file,
    load_state,
    parse_skpy_token_file,
    read_skpy_token_file,
)
from skyproto.tokens import RegistrationToken, SkypeToken

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
HOSTS = Hosts()
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TRUSTED_MESSENGERS = [
    "https://client-s.gateway.messenger.live.com/v1",
    "https://db3-client-s.gateway.messenger.live.com/v1",
    "https://azwus1-client-s.gateway.messenger.live.com/v1",
]
ZONES = [
    dt.UTC,
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
    dt.timezone(-dt.timedelta(hours=8)),
]
# Tokens go into headers: no control characters, no line or paragraph separators.
TOKEN_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
TOKENS = st.text(TOKEN_CHARS, min_size=1, max_size=40)
LINE_SAFE = st.text(TOKEN_CHARS, max_size=30)


def expiries(whole_seconds: bool = False) -> st.SearchStrategy[dt.datetime]:
    """Unexpired expiries at NOW (past the refresh leeway), in assorted offsets."""
    moments = st.datetimes(
        min_value=dt.datetime(2024, 6, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.just(dt.UTC),
    )
    if whole_seconds:
        moments = moments.map(lambda d: d.replace(microsecond=0))
    return st.builds(lambda d, zone: d.astimezone(zone), moments, st.sampled_from(ZONES))


def paging_states() -> st.SearchStrategy[PagingState]:
    """PagingState values built from its fields, whatever they are."""
    fields = attrs.fields(attrs.resolve_types(PagingState))
    return st.builds(
        lambda kwargs: PagingState(**kwargs),
        st.fixed_dictionaries({f.name: st.from_type(f.type) for f in fields if f.init}),  # type: ignore[arg-type]
    )


def registrations() -> st.SearchStrategy[Registration]:
    return st.builds(
        Registration,
        st.builds(RegistrationToken, TOKENS, expiries()),
        st.sampled_from(TRUSTED_MESSENGERS),
        st.none() | st.text(max_size=40),
    )


STATES = st.builds(
    SessionState,
    user_id=st.none() | st.text(max_size=30),
    skype_token=st.none() | st.builds(SkypeToken, TOKENS, expiries()),
    registration=st.none() | registrations(),
    endpoints=st.lists(st.text(max_size=40), max_size=4).map(tuple),
    paging=paging_states(),
    guest=st.booleans(),
)


def secrets_of(state: SessionState) -> list[str]:
    found = []
    if state.skype_token is not None:
        found.append(state.skype_token.token)
    if state.registration is not None:
        found.append(state.registration.token.token)
    return found


def assert_secret_free(error: SkypeTokenException, state: SessionState) -> None:
    # Only tokens long enough to be unmistakable: a one-letter token appears in any message.
    for secret in secrets_of(state):
        if len(secret) >= 12:
            assert secret not in str(error)
            assert secret not in repr(error)


def attempt(read: Callable[[], SessionState]) -> SessionState | SkypeTokenException:
    """The state ``read`` returns, or the SkypeTokenException it raises; anything else escapes."""
    try:
        return read()
    except SkypeTokenException as error:
        return error


# -- the snapshot -------------------------------------------------------------------------------


@given(STATES)
def test_snapshot_round_trip(state: SessionState) -> None:
    data = dump_snapshot(state)
    assert json.loads(data)["version"] == 1
    assert load_snapshot(data, now=NOW, hosts=HOSTS) == state
    assert load_snapshot(data.decode("utf-8"), now=NOW, hosts=HOSTS) == state


@given(STATES)
def test_every_truncation_is_a_token_error(state: SessionState) -> None:
    data = dump_snapshot(state)
    for end in range(len(data)):
        error = attempt(lambda: load_snapshot(data[:end], now=NOW, hosts=HOSTS))  # noqa: B023
        assert isinstance(error, SkypeTokenException), f"a snapshot cut at byte {end} loaded"
        assert str(error) == "saved state is not valid JSON (truncated?)"
        assert_secret_free(error, state)


@given(STATES, st.data())
def test_damaged_bytes_load_or_raise_a_token_error(
    state: SessionState, data: st.DataObject
) -> None:
    original = bytearray(dump_snapshot(state))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    outcome = attempt(lambda: load_snapshot(bytes(original), now=NOW, hosts=HOSTS))
    if isinstance(outcome, SkypeTokenException):
        assert_secret_free(outcome, state)
    else:
        assert isinstance(outcome, SessionState)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += json_paths(item, (*prefix, index))
    return paths


@given(STATES, st.data())
def test_any_value_anywhere_loads_or_raises_a_token_error(
    state: SessionState, data: st.DataObject
) -> None:
    document = json.loads(dump_snapshot(state))
    path = data.draw(st.sampled_from(json_paths(document)[1:]))
    replacement = data.draw(JSON_VALUES)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    outcome = attempt(lambda: load_snapshot(json.dumps(document), now=NOW, hosts=HOSTS))
    if isinstance(outcome, SkypeTokenException):
        assert_secret_free(outcome, state)
    else:
        assert isinstance(outcome, SessionState)


@given(JSON_VALUES)
def test_any_json_document_loads_or_raises_a_token_error(value: Any) -> None:
    outcome = attempt(lambda: load_snapshot(json.dumps(value), now=NOW, hosts=HOSTS))
    assert isinstance(outcome, SkypeTokenException), "a document without a version loaded"


# -- the token file -----------------------------------------------------------------------------

TOKEN_FILE_STATES = st.builds(
    lambda user_id, skype, registration: SessionState(
        user_id=user_id,
        skype_token=skype,
        registration=registration,
        guest=user_id.startswith("guest:"),
    ),
    st.one_of(LINE_SAFE, LINE_SAFE.map(lambda s: "guest:" + s)),
    st.builds(SkypeToken, TOKENS, expiries(whole_seconds=True)),
    st.builds(
        Registration,
        st.builds(RegistrationToken, TOKENS, expiries(whole_seconds=True)),
        st.sampled_from(TRUSTED_MESSENGERS),
    ),
)


@given(TOKEN_FILE_STATES)
def test_token_file_round_trip(state: SessionState) -> None:
    content = format_skpy_token_file(state)
    assert content.count(b"\n") == 6
    assert parse_skpy_token_file(content.decode("utf-8"), now=NOW, hosts=HOSTS) == state


@given(st.text(max_size=300))
def test_any_text_reads_or_raises_a_token_error(text: str) -> None:
    outcome = attempt(lambda: parse_skpy_token_file(text, now=NOW, hosts=HOSTS))
    if isinstance(outcome, SkypeTokenException):
        assert str(outcome).startswith(
            ("Token file is malformed: ", "Token file has expired", "Token file names")
        )
    else:
        assert outcome.skype_token is not None


@given(
    st.lists(
        st.text(TOKEN_CHARS | st.sampled_from("0123456789-+_ "), max_size=25),
        min_size=6,
        max_size=6,
    )
)
def test_six_arbitrary_lines_read_or_raise_a_token_error(lines: list[str]) -> None:
    outcome = attempt(lambda: parse_skpy_token_file("\n".join(lines), now=NOW, hosts=HOSTS))
    if isinstance(outcome, SessionState):
        assert outcome.user_id == lines[0]
        assert outcome.guest == lines[0].startswith("guest:")


@given(st.integers(min_value=-(10**16), max_value=10**16))
def test_expiry_epochs_are_utc_seconds(seconds: int) -> None:
    text = f"live:fred\nS\n4102444800\nregistrationToken=R\n{seconds}\n{TRUSTED_MESSENGERS[0]}\n"
    try:
        expected = EPOCH + dt.timedelta(seconds=seconds)
    except OverflowError:
        expected = None
    state = attempt(lambda: parse_skpy_token_file(text, now=NOW, hosts=HOSTS))
    if isinstance(state, SkypeTokenException):
        assert expected is None
        assert str(state) == "Token file is malformed: line 5 is out of range"
        return
    assert expected is not None
    if state.registration is None:
        assert expected <= NOW + dt.timedelta(minutes=5)
    else:
        assert state.registration.token.expiry == expected
        assert format_skpy_token_file(state).decode().splitlines()[4] == str(seconds)


# -- any bytes in a file ------------------------------------------------------------------------

#: Arbitrary bytes, and bytes near each format: a snapshot or a token file with noise spliced in.
ANY_BYTES = st.one_of(
    st.binary(max_size=600),
    st.builds(
        lambda state, cut, noise: dump_snapshot(state)[:cut] + noise,
        STATES,
        st.integers(0, 400),
        st.binary(max_size=20),
    ),
    st.builds(
        lambda state, cut, noise: format_skpy_token_file(state)[:cut] + noise,
        TOKEN_FILE_STATES,
        st.integers(0, 200),
        st.binary(max_size=20),
    ),
)


def read_bytes_from_a_file(data: bytes, read: Callable[[Path], SessionState]) -> Any:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "state.json"
        path.write_bytes(data)
        return attempt(lambda: read(path))


@given(ANY_BYTES)
def test_any_bytes_load_as_a_state_file_or_raise_a_token_error(data: bytes) -> None:
    outcome = read_bytes_from_a_file(data, lambda path: load_state(path, now=NOW, hosts=HOSTS))
    assert isinstance(outcome, SessionState | SkypeTokenException)
    assert str(outcome)
    direct = attempt(lambda: load_snapshot(data, now=NOW, hosts=HOSTS))
    assert type(direct) is type(outcome)
    if isinstance(outcome, SessionState):
        assert direct == outcome


@given(ANY_BYTES)
def test_any_bytes_read_as_a_token_file_or_raise_a_token_error(data: bytes) -> None:
    outcome = read_bytes_from_a_file(
        data, lambda path: read_skpy_token_file(path, now=NOW, hosts=HOSTS)
    )
    assert isinstance(outcome, SessionState | SkypeTokenException)
    if isinstance(outcome, SkypeTokenException):
        assert str(outcome).startswith(
            ("Token file is malformed: ", "Token file has expired", "Token file names")
        )
    else:
        assert outcome.skype_token is not None
    direct = attempt(lambda: parse_skpy_token_file(data, now=NOW, hosts=HOSTS))
    assert direct == outcome if isinstance(outcome, SessionState) else str(direct) == str(outcome)
