"""socket.io 0.9 frames and pushed bodies (docs/trouter.md, "Frames")."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from skyproto import LocalProtocolError, RemoteProtocolError
from skyproto.trouter._frames import (
    CONTENT_ENCODING_HEADER,
    MAX_BODY_BYTES,
    Frame,
    FrameType,
    TrouterRequest,
    ack_frame,
    decode_body,
    event_frame,
    parse_ack,
    parse_event,
    parse_frame,
    parse_request,
    response_frame,
)


@pytest.mark.parametrize(
    ("text", "frame"),
    [
        ("1::", Frame(FrameType.CONNECT)),
        ("2::", Frame(FrameType.HEARTBEAT)),
        ("5:::", Frame(FrameType.EVENT, data="")),
        ("6:::1+[]", Frame(FrameType.ACK, data="1+[]")),
        ('5:3+::{"name":"ping"}', Frame(FrameType.EVENT, 3, True, "", '{"name":"ping"}')),
        ("6:7::", Frame(FrameType.ACK, 7, data="")),
        ("3:::a:b:c", Frame(FrameType.MESSAGE, data="a:b:c")),
        ("0::/x", Frame(FrameType.DISCONNECT, endpoint="/x")),
    ],
)
def test_frames_parse_and_encode_back(text: str, frame: Frame) -> None:
    assert parse_frame(text) == frame
    assert frame.encode() == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1:",
        "9::",
        "12::",
        "a::",
        "5:x::",
        "5:+::",
        "5:1++::",
        "5:-1::",
        "5:1234567890123456789::",
    ],
)
def test_malformed_frames_are_remote_errors(text: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_frame(text)
    assert str(info.value)


def test_frames_refuse_impossible_values() -> None:
    with pytest.raises(LocalProtocolError):
        Frame(FrameType.EVENT, None, True)
    with pytest.raises(LocalProtocolError):
        Frame(FrameType.EVENT, endpoint="a:b")
    with pytest.raises(LocalProtocolError):
        Frame(FrameType.EVENT, -1)
    with pytest.raises(LocalProtocolError):
        parse_frame(b"1::")  # type: ignore[arg-type]


def test_events_and_acks() -> None:
    assert parse_event('{"name":"ping"}') == ("ping", [])
    assert parse_event('{"name":"x","args":{"a":1}}') == ("x", [{"a": 1}])
    assert event_frame("ping", ack_id=4).encode() == '5:4+::{"name":"ping"}'
    assert (
        event_frame("user.authenticate", []).encode()
        == '5:::{"name":"user.authenticate","args":[]}'
    )
    assert ack_frame(3, ["pong"]).encode() == '6:::3+["pong"]'
    assert ack_frame(1).encode() == "6:::1+[]"
    assert parse_ack('3+["pong"]') == (3, ["pong"])
    assert parse_ack("3") == (3, [])
    for bad in (None, "", "x+[]", "3+[", "3+{}", "+[]"):
        with pytest.raises(RemoteProtocolError):
            parse_ack(bad)
    for bad in (None, "", "[]", '{"args":[]}', '{"name":1}', "[" * 100_000):
        with pytest.raises(RemoteProtocolError):
            parse_event(bad)


def _request(body: str, **headers: str) -> TrouterRequest:
    data = {
        "id": 5,
        "method": "POST",
        "url": "/v4/f/abc/messaging",
        "headers": headers,
        "body": body,
    }
    return parse_request(json.dumps(data))


def test_requests_and_responses() -> None:
    req = _request('{"a":1}', **{"X-Trouter": "1"})
    assert (req.id, req.method, req.kind, req.header("x-trouter")) == (5, "POST", "messaging", "1")
    assert "body" not in repr(req) or '{"a":1}' not in repr(req)
    assert json.loads(response_frame(5).data or "") == {
        "id": 5,
        "status": 200,
        "headers": {},
        "body": "",
    }
    assert response_frame(5).encode().startswith("3:::")
    for bad in (
        None,
        "[]",
        '{"id":"1"}',
        '{"id":-1}',
        '{"id":1,"body":3}',
        '{"id":1,"headers":[]}',
    ):
        with pytest.raises(RemoteProtocolError):
            parse_request(bad)


def _b64gzip(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, mtime=0)).decode()


def test_bodies_plain_gzip_and_wrapped() -> None:
    assert decode_body(_request('{"a":1}')) == {"a": 1}
    assert decode_body(_request("")) is None
    assert decode_body(_request(_b64gzip(b'{"a":2}'), **{CONTENT_ENCODING_HEADER: "gzip"})) == {
        "a": 2
    }
    wrapped = json.dumps({"cp": _b64gzip(b'{"a":3}')})
    assert decode_body(_request(wrapped)) == {"a": 3}
    wrapped = json.dumps({"evt": 107, "gp": base64.b64encode(b'{"a":4}').decode()})
    assert decode_body(_request(wrapped)) == {"a": 4}


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ("{", {}),
        ("not base64!", {CONTENT_ENCODING_HEADER: "gzip"}),
        (base64.b64encode(b"not gzip").decode(), {CONTENT_ENCODING_HEADER: "gzip"}),
        (_b64gzip(b"{")[:-8] + "AAAAAAA=", {CONTENT_ENCODING_HEADER: "gzip"}),
        ('{"a":1}', {CONTENT_ENCODING_HEADER: "br"}),
        (json.dumps({"cp": "%%%"}), {}),
        (json.dumps({"gp": base64.b64encode(b"{").decode()}), {}),
    ],
)
def test_bad_bodies_are_remote_errors(body: str, headers: dict[str, str]) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_body(_request(body, **headers))


def test_a_decompression_bomb_is_refused_without_inflating_it() -> None:
    bomb = _b64gzip(b"\0" * (MAX_BODY_BYTES + 1))
    assert len(bomb) < 10_000
    with pytest.raises(RemoteProtocolError, match="decompresses to more than"):
        decode_body(_request(bomb, **{CONTENT_ENCODING_HEADER: "gzip"}))
    with pytest.raises(RemoteProtocolError, match="decompresses to more than"):
        decode_body(_request(json.dumps({"cp": bomb})))
    exact = _b64gzip(b" " * (MAX_BODY_BYTES - 2) + b"{}")
    assert decode_body(_request(exact, **{CONTENT_ENCODING_HEADER: "gzip"})) == {}
