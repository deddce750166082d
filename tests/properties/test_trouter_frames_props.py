"""Properties of the Trouter frame grammar: any text is a frame or a RemoteProtocolError."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from skyproto import RemoteProtocolError
from skyproto.trouter import (
    Frame,
    FrameType,
    TrouterRequest,
    decode_body,
    parse_ack,
    parse_event,
    parse_frame,
    parse_request,
)

frames = st.builds(
    Frame,
    st.sampled_from(list(FrameType)),
    st.one_of(st.none(), st.integers(0, 10**18 - 1)),
    st.just(False),
    st.text().map(lambda s: s.replace(":", "")),
    st.one_of(st.none(), st.text()),
)
acked = st.builds(
    Frame,
    st.sampled_from(list(FrameType)),
    st.integers(0, 10**18 - 1),
    st.just(True),
    st.just(""),
    st.one_of(st.none(), st.text()),
)
framelike = st.one_of(
    st.text(),
    st.builds(
        lambda *parts: ":".join(parts),
        st.sampled_from(["0", "1", "3", "5", "6", "9", "x", ""]),
        st.sampled_from(["", "1", "1+", "+", "01", "a"]),
        st.text(max_size=5),
        st.text(),
    ),
)


@given(st.one_of(frames, acked))
def test_encode_then_parse_round_trips(frame: Frame) -> None:
    assert parse_frame(frame.encode()) == frame


@given(framelike)
def test_any_text_is_a_frame_or_a_remote_error(text: str) -> None:
    try:
        frame = parse_frame(text)
    except RemoteProtocolError as exc:
        message = str(exc)
        assert message
    else:
        assert parse_frame(frame.encode()) == frame


@given(
    st.one_of(
        st.none(),
        st.text(),
        st.builds(
            json.dumps,
            st.recursive(
                st.none() | st.integers() | st.text(),
                lambda c: st.lists(c) | st.dictionaries(st.text(), c),
            ),
        ),
    )
)
def test_payload_parsers_give_a_value_or_a_remote_error(data: str | None) -> None:
    for parse in (parse_event, parse_ack, parse_request):
        try:
            parse(data)
        except RemoteProtocolError as exc:
            message = str(exc)
            assert message


@given(
    st.text(),
    st.dictionaries(
        st.sampled_from(["X-Microsoft-Skype-Content-Encoding", "x"]),
        st.sampled_from(["gzip", "", "GZIP", "br"]),
    ),
)
def test_bodies_decode_or_raise_a_remote_error(body: str, headers: dict[str, str]) -> None:
    try:
        decode_body(TrouterRequest(1, "POST", "/v4/f/x/messaging", headers, body))
    except RemoteProtocolError as exc:
        message = str(exc)
        assert message
