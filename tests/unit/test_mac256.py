"""Mac256 and the LockAndKey header (docs/protocol.md §4): vectors, worked examples, input checks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from skyproto import LocalProtocolError
from skyproto.mac256 import APP_ID, MAC256_KEY, lock_and_key, mac256

VECTORS = Path(__file__).parents[1] / "vectors"
MAC256_VECTORS: list[dict[str, str]] = json.loads(
    (VECTORS / "mac256.json").read_text(encoding="utf-8")
)

WORKED_EXAMPLES = [
    ("1700000000", "abe5fadd8fa2021a9041e263584ea4ab"),  # 4 pad characters
    ("123456", "9853a9366c6d59908176a81baf7e68ec"),  # already a multiple of 8: 8 pad characters
    ("", "c1f99569e9acd693dbd11b16608bf367"),
    ("1462570297", "5ac181edee7f30db176aaef9a043bf8a"),
]


def test_vector_file_is_complete() -> None:
    assert len(MAC256_VECTORS) == 343
    assert len({case["challenge"] for case in MAC256_VECTORS}) == 343


@pytest.mark.parametrize(
    "case", MAC256_VECTORS, ids=[repr(case["challenge"])[:24] for case in MAC256_VECTORS]
)
def test_vectors(case: dict[str, str]) -> None:
    assert mac256(case["challenge"]) == case["response"]


@pytest.mark.parametrize(("challenge", "response"), WORKED_EXAMPLES)
def test_worked_examples(challenge: str, response: str) -> None:
    assert mac256(challenge) == response


def test_constants() -> None:
    assert APP_ID == "msmsgs@msnmsgr.com"
    assert MAC256_KEY == "Q1P7W2E4J9R8U3S5"


def test_vectors_cover_every_padding_case() -> None:
    lengths = [len(case["challenge"]) for case in MAC256_VECTORS]
    assert all(lengths.count(n) >= 2 for n in range(1, 41))
    # 1..8 pad characters: len(challenge + APP_ID) % 8 takes all eight values.
    assert {(n + len(APP_ID)) % 8 for n in lengths} == set(range(8))


def test_long_challenge_beyond_the_precomputed_unpackers() -> None:
    longest = max(MAC256_VECTORS, key=lambda case: len(case["challenge"]))
    assert len(longest["challenge"]) == 257
    assert mac256(longest["challenge"]) == longest["response"]


@pytest.mark.parametrize(
    "challenge", ["17000000é0", "\u2603", "abc\udcff", "\uff11\uff17\uff10\uff10"]
)
def test_non_ascii_is_refused(challenge: str) -> None:
    with pytest.raises(LocalProtocolError, match=r"^a Mac256 challenge must be ASCII text$"):
        mac256(challenge)


@pytest.mark.parametrize("challenge", [b"1700000000", 1700000000, None])
def test_non_text_is_refused(challenge: Any) -> None:
    with pytest.raises(LocalProtocolError, match="must be a str"):
        mac256(challenge)


def test_output_shape() -> None:
    response = mac256("1700000000")
    assert len(response) == 32
    assert response == response.lower()
    int(response, 16)


# -- lock_and_key ---------------------------------------------------------------------------------

EXPECTED_1700000000 = (
    "appId=msmsgs@msnmsgr.com; time=1700000000; lockAndKeyResponse=abe5fadd8fa2021a9041e263584ea4ab"
)


def test_lock_and_key_exact() -> None:
    when = dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert when.timestamp() == 1700000000
    assert lock_and_key(when) == EXPECTED_1700000000


@pytest.mark.parametrize("microsecond", [1, 500_000, 999_999])
def test_lock_and_key_truncates_fractional_seconds(microsecond: int) -> None:
    when = dt.datetime(2023, 11, 14, 22, 13, 20, microsecond, tzinfo=dt.UTC)
    assert lock_and_key(when) == EXPECTED_1700000000


def test_lock_and_key_uses_the_instant_not_the_zone() -> None:
    tokyo = dt.timezone(dt.timedelta(hours=9))
    when = dt.datetime(2023, 11, 15, 7, 13, 20, 250_000, tzinfo=tokyo)
    assert lock_and_key(when) == EXPECTED_1700000000


def test_lock_and_key_truncates_toward_zero_before_the_epoch() -> None:
    half_second_before = dt.datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=dt.UTC)
    assert lock_and_key(half_second_before) == (
        f"appId=msmsgs@msnmsgr.com; time=0; lockAndKeyResponse={mac256('0')}"
    )
    one_and_a_half_before = dt.datetime(1969, 12, 31, 23, 59, 58, 500_000, tzinfo=dt.UTC)
    assert "; time=-1; " in lock_and_key(one_and_a_half_before)


def test_lock_and_key_refuses_naive_datetimes() -> None:
    with pytest.raises(LocalProtocolError, match="aware datetime"):
        lock_and_key(dt.datetime(2023, 11, 14, 22, 13, 20))


@pytest.mark.parametrize("value", [1700000000, "1700000000", dt.date(2023, 11, 14)])
def test_lock_and_key_refuses_non_datetimes(value: Any) -> None:
    with pytest.raises(LocalProtocolError, match="aware datetime"):
        lock_and_key(value)
