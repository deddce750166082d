"""Mac256 properties: agreement with SkPy 0.11 on ASCII input, refusal of anything else."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from skyproto import LocalProtocolError
from skyproto.mac256 import lock_and_key, mac256

ascii_text = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=80)
digit_strings = st.text(alphabet="0123456789", min_size=0, max_size=60)
non_ascii_text = st.builds(
    lambda before, char, after: before + char + after,
    ascii_text,
    st.characters(min_codepoint=0x80),
    ascii_text,
)
aware_instants = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=st.timezones()
)


@pytest.fixture(scope="module")
def skpy_mac256() -> Callable[[str], str]:
    conn = pytest.importorskip("skpy.conn")
    reference: Callable[[str], str] = conn.SkypeRegistrationTokenProvider.getMac256Hash
    return reference


@pytest.mark.skpy
@given(challenge=st.one_of(digit_strings, ascii_text))
@example(challenge="")
@example(challenge="123456")
@example(challenge="1700000000")
def test_matches_skpy_on_ascii(skpy_mac256: Callable[[str], str], challenge: str) -> None:
    assert mac256(challenge) == skpy_mac256(challenge)


# Ten characters take their own path (every Unix time from 2001 to 2286 is ten digits long).
@pytest.mark.skpy
@given(
    challenge=st.one_of(
        st.text(alphabet="0123456789", min_size=10, max_size=10),
        st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=10, max_size=10),
    )
)
@example(challenge="0000000000")
@example(challenge="9999999999")
@example(challenge="\x7f" * 10)
def test_ten_character_challenges_match_skpy(
    skpy_mac256: Callable[[str], str], challenge: str
) -> None:
    assert mac256(challenge) == skpy_mac256(challenge)


@given(challenge=ascii_text)
def test_response_is_32_lower_case_hex_digits(challenge: str) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", mac256(challenge))


@given(challenge=non_ascii_text)
@example(challenge="\x80")
@example(challenge="1700000000\u00e9")
def test_non_ascii_raises_local_protocol_error(challenge: str) -> None:
    with pytest.raises(LocalProtocolError):
        mac256(challenge)


# From a day after the epoch, so that the whole-second floor computed by timegm equals truncation.
@given(when=aware_instants)
def test_lock_and_key_is_the_mac_of_the_whole_unix_second(when: dt.datetime) -> None:
    seconds = calendar.timegm(when.astimezone(dt.UTC).timetuple())
    assert lock_and_key(when) == (
        f"appId=msmsgs@msnmsgr.com; time={seconds}; lockAndKeyResponse={mac256(str(seconds))}"
    )
    assert lock_and_key(when) == lock_and_key(when.replace(microsecond=0))
