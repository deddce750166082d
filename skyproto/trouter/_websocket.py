"""A websocket client as sub-flows over the stream effects, with wsproto doing the framing.

wsproto is to websockets what h11 is to HTTP: it turns bytes into events and events into bytes
and does no I/O. This module feeds it what :class:`~skyproto._flow.ReceiveBytes` brings and
writes what it produces with :class:`~skyproto._flow.SendBytes`. Only text messages matter to
Trouter; control frames are answered here (a ping with its pong, a close with its close).

Cleanup that needs an effect (closing the stream) runs on ``Exception`` only: a flow being
closed by its driver cannot yield, and the drivers close every stream the run opened anyway.
"""

from __future__ import annotations

import encodings.idna  # noqa: F401 (wsproto encodes the Host with it; loaded now, not mid-flow)
import urllib.parse
from collections.abc import Sequence
from typing import Final

import wsproto
import wsproto.events as ws
from wsproto.connection import ConnectionState
from wsproto.utilities import LocalProtocolError as WsLocalError
from wsproto.utilities import RemoteProtocolError as WsRemoteError

from .._flow import Flow, TimedOut, close_stream, open_stream, receive_bytes, send_bytes
from .._http import HttpResponse
from ..calls import display_url
from ..errors import LocalProtocolError, RemoteProtocolError, SkypeApiException

__all__ = ["WebSocket", "WebSocketRejected"]

#: Bytes asked of the stream per read.
_CHUNK: Final = 65536
#: How much of a refusal's body is kept.
_REFUSAL_BODY: Final = 4096


class WebSocketRejected(SkypeApiException):
    """The server answered the upgrade with an HTTP status instead of switching protocols."""


class WebSocket:
    """One client websocket over a stream. Build it with :func:`connect`."""

    def __init__(self, stream: object, connection: wsproto.WSConnection, max_message: int) -> None:
        self._stream = stream
        self._conn = connection
        self._max_message = max_message
        self._parts: list[str] = []
        self._size = 0
        self._ready: list[str] = []
        #: The peer closed the websocket, or the stream ended.
        self.closed = False

    def __repr__(self) -> str:
        return f"WebSocket(closed={self.closed})"

    def send_text(self, text: str, timeout: float) -> Flow[None]:
        """Sub-flow: send one text message."""
        if self.closed:
            raise RemoteProtocolError("the websocket is closed")
        try:
            data = self._conn.send(ws.TextMessage(data=text))
        except WsLocalError:
            raise RemoteProtocolError("the websocket is not open") from None
        yield from send_bytes(self._stream, data, timeout)

    def receive(self, timeout: float) -> Flow[str | None]:
        """Sub-flow: the next text message, or ``None`` when none is complete yet (nothing
        came within ``timeout``, or only part of a message); check :attr:`closed` then."""
        if self._ready:
            return self._ready.pop(0)
        if self.closed:
            return None
        data = yield from receive_bytes(self._stream, _CHUNK, timeout)
        if isinstance(data, TimedOut):
            return None
        if not data:
            self.closed = True
            return None
        try:
            self._conn.receive_data(data)
        except WsRemoteError:
            raise RemoteProtocolError("the websocket peer broke the framing") from None
        answer = self._absorb()
        if answer:
            yield from send_bytes(self._stream, answer, timeout)
        return self._ready.pop(0) if self._ready else None

    def close(self, timeout: float) -> Flow[None]:
        """Sub-flow: send a close frame (if the websocket is still open), then close the
        stream."""
        try:
            if not self.closed and self._conn.state is ConnectionState.OPEN:
                self.closed = True
                data = self._conn.send(ws.CloseConnection(code=1000))
                yield from send_bytes(self._stream, data, timeout)
        except Exception:
            self.closed = True
            yield from close_stream(self._stream)
            raise
        self.closed = True
        yield from close_stream(self._stream)

    def _absorb(self) -> bytes:
        """Process wsproto's pending events; return the bytes to send in answer."""
        out = b""
        try:
            for event in self._conn.events():
                if isinstance(event, ws.TextMessage):
                    self._size += len(event.data)
                    if self._size > self._max_message:
                        raise RemoteProtocolError(
                            f"a websocket message is over {self._max_message} characters"
                        )
                    self._parts.append(event.data)
                    if event.message_finished:
                        self._ready.append("".join(self._parts))
                        self._parts, self._size = [], 0
                elif isinstance(event, ws.BytesMessage):
                    raise RemoteProtocolError("the websocket peer sent a binary message")
                elif isinstance(event, ws.Ping):
                    out += self._conn.send(event.response())
                elif isinstance(event, ws.CloseConnection):
                    if self._conn.state is ConnectionState.REMOTE_CLOSING:
                        out += self._conn.send(event.response())
                    self.closed = True
        except WsRemoteError:
            raise RemoteProtocolError("the websocket peer broke the framing") from None
        return out


def connect(
    url: str, headers: Sequence[tuple[str, str]], *, timeout: float, max_message: int
) -> Flow[WebSocket]:
    """Sub-flow: open a stream to ``url``'s origin and upgrade it to a websocket.

    ``url`` is ``http`` or ``https``; its path and query are the request target. A refusal is
    :class:`WebSocketRejected` carrying the status and up to 4 KiB of the body (no more of the
    body is read: a refusal that never ends cannot hold the upgrade open).
    """
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    try:
        lines = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    except UnicodeEncodeError:
        # Never the value in the message: it is a token.
        raise LocalProtocolError(
            "a websocket header holds a character outside Latin-1; it cannot be sent"
        ) from None
    request = ws.Request(host=parts.netloc, target=target, extra_headers=lines)
    stream = yield from open_stream(url, timeout)
    try:
        return (yield from _upgrade(stream, conn, request, url, timeout, max_message))
    except Exception:
        yield from close_stream(stream)
        raise


def _upgrade(
    stream: object,
    conn: wsproto.WSConnection,
    request: ws.Request,
    url: str,
    timeout: float,
    max_message: int,
) -> Flow[WebSocket]:
    yield from send_bytes(stream, conn.send(request), timeout)
    status: int | None = None
    body = b""
    while True:
        data = yield from receive_bytes(stream, _CHUNK, timeout)
        if isinstance(data, TimedOut):
            raise RemoteProtocolError("the websocket upgrade was not answered in time")
        accepted = False
        try:
            conn.receive_data(data or None)
            for event in conn.events():
                if isinstance(event, ws.AcceptConnection):
                    accepted = True
                    break
                if isinstance(event, ws.RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise _rejected(status, body, url)
                elif isinstance(event, ws.RejectData) and status is not None:
                    body += event.data[: max(0, _REFUSAL_BODY - len(body))]
                    if event.body_finished or len(body) >= _REFUSAL_BODY:
                        raise _rejected(status, body, url)
        except WsRemoteError:
            raise RemoteProtocolError("the websocket upgrade answer is malformed") from None
        if accepted:
            socket = WebSocket(stream, conn, max_message)
            answer = socket._absorb()  # frames that came in with the upgrade's answer
            if answer:
                yield from send_bytes(stream, answer, timeout)
            return socket
        if not data:
            raise RemoteProtocolError("the stream ended during the websocket upgrade")


def _rejected(status: int, body: bytes, url: str) -> WebSocketRejected:
    # Only the origin: the path names the socket's session, which is as good as a credential.
    scheme, _, rest = display_url(url).partition("://")
    origin = f"{scheme}://{rest.partition('/')[0]}"
    return WebSocketRejected(
        f"{status} response to the websocket upgrade at {origin}",
        HttpResponse(status, (), body, origin),
    )
