"""Properties of the Trouter frame grammar: any text is a frame or a RemoteProtocolError."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from skyproto import RemoteProtocolError
from skyproto.trouter._frames import (
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


frame_texts = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda kind, ident, data: f"{kind}:{ident}::{data}",
        st.sampled_from(["0", "1", "2", "3", "5", "6", "7", "8"]),
        st.sampled_from(["", "1", "2+", "99+"]),
        st.one_of(
            st.text(max_size=40),
            st.builds(
                json.dumps,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "id": st.one_of(st.integers(-1, 5), st.text(max_size=3)),
                        "name": st.sampled_from(["ping", "trouter.message_loss", "x", 1]),
                        "args": st.lists(st.integers(), max_size=2),
                        "url": st.sampled_from(["/v4/f/x/messaging", "/v4/f/x/other", 3]),
                        "headers": st.one_of(
                            st.none(),
                            st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
                        ),
                        "body": st.one_of(st.none(), st.text(max_size=30), st.integers()),
                    },
                ),
            ),
        ),
    ),
)


@given(st.lists(frame_texts, min_size=1, max_size=4))
def test_whatever_the_server_sends_the_client_keeps_running(texts: list[str]) -> None:
    """Any frame (or garbage) from the server is handled, or ends that connection with a
    protocol error and a reconnection; the client never crashes."""
    import datetime as dt
    import random

    from skyproto import Hosts
    from skyproto.emulator.trouter import PeerDriver, TrouterPeer
    from skyproto.trouter import TrouterClient

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    peer = TrouterPeer()
    delivered: list[object] = []
    client = TrouterClient("t", "e", delivered.append, hosts=Hosts(), rng=random.Random(0))
    driver = PeerDriver(client.run(), peer, start)
    driver.settle()
    for text in texts:
        peer.inject(text, driver.now)
        driver.settle()
        driver.advance(70)
    assert not driver.done
    assert client.stats.connections >= 1
