"""The websocket sub-flows against a wsproto server in memory."""

from __future__ import annotations

from typing import Any

import pytest
import wsproto
import wsproto.events as ws
from hypothesis import given
from hypothesis import strategies as st

from skyproto import LocalProtocolError, RemoteProtocolError, Stepper
from skyproto._flow import TIMED_OUT, CloseStream, OpenStream, ReceiveBytes, SendBytes
from skyproto.trouter._websocket import WebSocket, WebSocketRejected, connect

URL = "https://trouter.example:443/socket.io/1/websocket/sid?v=v4&sig=s"


class Server:
    """A wsproto server answering one client flow's stream effects."""

    def __init__(self, accept: bool = True, reject_status: int = 404, body: bytes = b"") -> None:
        self.conn = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        self.accept, self.reject_status, self.body = accept, reject_status, body
        self.out = bytearray()
        self.received: list[Any] = []
        self.closed = False
        self.request: ws.Request | None = None

    def answer(self, effect: Any) -> Any:
        if isinstance(effect, OpenStream):
            return "stream"
        if isinstance(effect, SendBytes):
            self.conn.receive_data(effect.data)
            for event in self.conn.events():
                if isinstance(event, ws.Request):
                    self.request = event
                    if self.accept:
                        self.out += self.conn.send(ws.AcceptConnection())
                    else:
                        has_body = bool(self.body)
                        self.out += self.conn.send(
                            ws.RejectConnection(status_code=self.reject_status, has_body=has_body)
                        )
                        if has_body:
                            self.out += self.conn.send(ws.RejectData(self.body))
                else:
                    self.received.append(event)
            return None
        if isinstance(effect, ReceiveBytes):
            if self.out:
                data = bytes(self.out[: effect.max_bytes])
                del self.out[: effect.max_bytes]
                return data
            return b"" if self.closed else TIMED_OUT
        if isinstance(effect, CloseStream):
            self.closed = True
            return None
        raise AssertionError(effect)

    def send(self, event: ws.Event) -> None:
        self.out += self.conn.send(event)


def run(flow: Any, server: Server) -> Any:
    step = Stepper(flow)
    while not step.done:
        step.send(server.answer(step.pending))
    return step.result


def open_socket(server: Server, max_message: int = 1000) -> WebSocket:
    headers = [("X-Skypetoken", "tok")]
    socket: WebSocket = run(connect(URL, headers, timeout=5, max_message=max_message), server)
    return socket


def test_upgrade_sends_the_target_host_and_headers() -> None:
    server = Server()
    socket = open_socket(server)
    assert server.request is not None
    assert server.request.target == "/socket.io/1/websocket/sid?v=v4&sig=s"
    assert server.request.host == "trouter.example:443"
    assert (b"x-skypetoken", b"tok") in [(k.lower(), v) for k, v in server.request.extra_headers]
    assert not socket.closed


def test_a_header_outside_latin_1_is_a_skyproto_error_naming_no_value() -> None:
    token = "tok-\u20ac-secret"
    flow = connect(URL, [("X-Skypetoken", token)], timeout=5, max_message=1024)
    with pytest.raises(LocalProtocolError) as caught:
        Stepper(flow)  # starting the flow is the act under test: nothing is opened
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(("status", "body"), [(401, b""), (404, b"gone"), (500, b"x" * 10_000)])
def test_a_refused_upgrade_carries_the_status(status: int, body: bytes) -> None:
    server = Server(accept=False, reject_status=status, body=body)
    with pytest.raises(WebSocketRejected) as info:
        open_socket(server)
    assert info.value.status == status
    assert "sig=" not in str(info.value)
    assert "sid" not in str(info.value)
    assert "sid" not in repr(info.value.response)
    assert str(info.value).endswith("at https://trouter.example:443")
    assert info.value.response is not None
    assert len(info.value.response.body) <= 4096
    assert server.closed


def test_a_refusal_is_reported_once_its_kept_body_is_read() -> None:
    # A refusal whose body never ends must not keep the upgrade reading: what is kept of the
    # body (4 KiB) is all that is waited for.
    server = Server(accept=False, reject_status=503, body=b"x" * 3000)
    server.conn.send = _unfinished(server.conn.send)  # type: ignore[method-assign]
    with pytest.raises(WebSocketRejected) as info:
        run(connect(URL, [], timeout=5, max_message=1000), _Endless(server))
    assert info.value.status == 503
    assert info.value.response is not None
    assert len(info.value.response.body) == 4096
    assert server.closed


def _unfinished(send: Any) -> Any:
    def wrapped(event: ws.Event) -> bytes:
        if isinstance(event, ws.RejectData):
            event = ws.RejectData(event.data, body_finished=False)
        data: bytes = send(event)
        return data

    return wrapped


class _Endless:
    """The server, but the refusal's body keeps coming (3000 bytes a read, for 100 reads, then
    nothing: time enough to tell a client that waits for its end)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.reads = 0

    def answer(self, effect: Any) -> Any:
        if isinstance(effect, ReceiveBytes):
            self.reads += 1
        if self.reads > 100:
            return self.server.answer(effect) if not isinstance(effect, ReceiveBytes) else TIMED_OUT
        if isinstance(effect, ReceiveBytes) and not self.server.out and self.server.request:
            self.server.out += self.server.conn.send(
                ws.RejectData(b"x" * 3000, body_finished=False)
            )
        return self.server.answer(effect)


def test_text_control_frames_and_close() -> None:
    server = Server()
    socket = open_socket(server)
    server.send(ws.TextMessage("1::"))
    server.send(ws.Ping(b"p"))
    server.send(ws.TextMessage("part-", message_finished=False))
    server.send(ws.TextMessage("two"))
    assert run(socket.receive(1), server) == "1::"
    assert run(socket.receive(1), server) == "part-two"
    assert any(isinstance(e, ws.Pong) for e in server.received)
    assert run(socket.receive(1), server) is None  # nothing more: timed out
    run(socket.send_text("2::", 1), server)
    assert [e.data for e in server.received if isinstance(e, ws.TextMessage)] == ["2::"]
    server.send(ws.CloseConnection(1000))
    assert run(socket.receive(1), server) is None
    assert socket.closed
    assert any(isinstance(e, ws.CloseConnection) for e in server.received)
    with pytest.raises(RemoteProtocolError):
        run(socket.send_text("late", 1), server)
    run(socket.close(1), server)
    assert server.closed


def test_binary_and_oversized_messages_are_remote_errors() -> None:
    server = Server()
    socket = open_socket(server, max_message=10)
    server.send(ws.BytesMessage(b"\x00"))
    with pytest.raises(RemoteProtocolError, match="binary"):
        run(socket.receive(1), server)
    server = Server()
    socket = open_socket(server, max_message=10)
    server.send(ws.TextMessage("x" * 6, message_finished=False))
    server.send(ws.TextMessage("x" * 6))
    with pytest.raises(RemoteProtocolError, match="over 10"):
        run(socket.receive(1), server)


def test_the_end_of_the_stream_closes_the_socket() -> None:
    server = Server()
    socket = open_socket(server)
    server.closed = True
    assert run(socket.receive(1), server) is None
    assert socket.closed


@given(st.binary(max_size=200))
def test_any_upgrade_answer_is_a_socket_or_a_skyproto_error(answer: bytes) -> None:
    step = Stepper(connect(URL, [], timeout=5, max_message=100))
    try:
        while not step.done:
            effect = step.pending
            if isinstance(effect, ReceiveBytes):
                step.send(answer[: effect.max_bytes])
                answer = answer[effect.max_bytes :]
            else:
                step.send("stream" if isinstance(effect, OpenStream) else None)
    except (RemoteProtocolError, WebSocketRejected):
        pass
