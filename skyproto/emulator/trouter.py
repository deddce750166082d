"""A pure Trouter peer: the session endpoint, the handshake, the websocket and the registrar.

Built from docs/trouter.md as an independent peer (it shares the frame grammar with the client,
nothing else). It is a function of what it is sent and the time it is told:

- HTTP: :meth:`TrouterPeer.handle` answers ``/v4/a``, ``/socket.io/1/``, the registrar
  (``POST`` and ``DELETE``) and ``GET /backlog`` (the events pushed so far, as a long-poll
  style ``{"eventMessages": […]}``, standing in for the REST listing a client catches up with).
- Streams: :meth:`connect`, :meth:`feed`, :meth:`read` and :meth:`close` are the server side of
  a byte stream, with wsproto for the websocket.
- Cues: :meth:`push` (a chat event to every registered, connected endpoint), :meth:`push_raw`
  (any payload to any path suffix), :meth:`drop` (close the sockets), :meth:`expire` (end the
  sessions), :meth:`report_loss` (send ``trouter.message_loss``), :meth:`revoke` (a token now
  gets 401), and :meth:`tick` (time passes: unanswered pushes past ``ack_timeout``).

Served beside an :class:`~skyproto.emulator.Emulator` (``owner``), the peer names the socket
host :data:`SOCKET_HOST` in its session answer and follows the scenario's ``trouter_*`` knobs:
``trouter_script`` (pushes it makes on its own, its chat messages also added to the emulator's
chat service), ``trouter_foreign`` and ``trouter_gzip``.

A push not answered ``3:::{"id":…,"status":200}`` is *held back*: when its socket goes away, or
``ack_timeout`` passes, it is redelivered on the next connection (``redeliver=True``), or dropped
and reported with ``trouter.message_loss`` (``redeliver=False``); either way it stays in the
backlog.

:class:`PeerDriver` runs a client flow against the peer in memory with a virtual clock, so tests
(and the audit-hook purity check) drive the whole sequence without a socket.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import gzip
import hashlib
import json
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs
import wsproto
import wsproto.events as ws
from wsproto.connection import ConnectionState
from wsproto.utilities import RemoteProtocolError as WsRemoteError

from .._flow import (
    TIMED_OUT,
    CloseStream,
    Deliver,
    Flow,
    Now,
    OpenStream,
    ReceiveBytes,
    SendBytes,
    Shared,
    Sleep,
    Stepper,
    TimedOut,
)
from .._http import HttpRequest, HttpResponse
from ..errors import LocalProtocolError, RemoteProtocolError, TransportError
from ..trouter._frames import (
    CONTENT_ENCODING_HEADER,
    Frame,
    FrameType,
    ack_frame,
    event_frame,
    parse_ack,
    parse_event,
    parse_frame,
)

if TYPE_CHECKING:
    from .core import Emulator

__all__ = ["FOREIGN_TROUTER", "SOCKET_HOST", "PeerDriver", "PeerLog", "TrouterPeer"]

#: The host the session answer names as ``socketio`` (and ``surl``), under a Trouter domain.
SOCKET_HOST: Final = "trouter2-emulator.trouter.teams.microsoft.com"
#: Where the ``trouter_foreign`` knob points ``socketio`` or ``surl`` (never mapped, never
#: trusted).
FOREIGN_TROUTER: Final = "https://evil.example"
#: The conversation the scripted messages arrive in (one the chat service lists).
_SCRIPT_CHAT: Final = "19:uni01_4f2a9c@thread.v2"
_SCRIPT_SENDER: Final = "8:live:.cid.b0b"

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_BACKLOG: Final = 1000
_TFL_RULE: Final = ("TeamsCDLWebWorker_2.6", "TFL")


def _millis(when: dt.datetime) -> int:
    return int((when - _EPOCH).total_seconds() * 1000)


@attrs.define
class _Session:
    id: str
    epid: str
    sig: str
    expires: dt.datetime
    socket_id: str | None = None
    expired: bool = False


@attrs.define
class _Push:
    request_id: int
    epid: str
    suffix: str
    body: str
    headers: dict[str, str]
    #: The chat message id the push carries, if any.
    message_id: str | None = None
    sent_at: dt.datetime | None = None


@attrs.define(eq=False)
class _Socket:
    conn: wsproto.WSConnection
    session: _Session | None = None
    accepted: bool = False
    out: bytearray = attrs.field(factory=bytearray)
    closed: bool = False
    #: Reset by the peer (``drop(reset=True)``): reading and writing fail.
    reset: bool = False
    #: Requests pushed on this socket and not answered yet, by request id.
    in_flight: dict[int, _Push] = attrs.field(factory=dict)
    packet: int = 0


@attrs.frozen
class PeerLog:
    """One thing the peer saw or did, for tests to check order and timing."""

    when: dt.datetime
    #: ``push`` and ``response`` (request id, message id), ``ping``, ``event``, ``activity``,
    #: ``answer lost`` (as ``response``; see :attr:`TrouterPeer.lose_answers`),
    #: ``register``, ``loss``, ``lost``, ``connect``, ``drop``, ``closed`` (by the client),
    #: ``ack``, ``heartbeat``, ``backlog`` (the message ids listed).
    what: str
    detail: Any = None


class TrouterPeer:
    """The Trouter side of the conversation. ``ttl`` is the session lifetime it hands out."""

    def __init__(
        self,
        *,
        ttl: int = 585731,
        ack_timeout: float = 10.0,
        redeliver: bool = True,
        require_tfl: bool = True,
        gzip_bodies: bool = False,
        owner: Callable[[], Emulator | None] | None = None,
    ) -> None:
        #: The emulator whose hosts, scenario (``trouter_*`` knobs) and chat service the peer
        #: uses, when it serves beside one (the server); ``None``: the peer alone.
        self.owner = owner
        self.ttl = ttl
        self.ack_timeout = ack_timeout
        self.redeliver = redeliver
        self.require_tfl = require_tfl
        self.gzip_bodies = gzip_bodies
        #: How many of the client's next ``3:::`` answers to lose (a slow or lost answer).
        self.lose_answers = 0
        self.log: list[PeerLog] = []
        self.revoked: set[str] = set()
        self.registrations: dict[str, dict[str, Any]] = {}
        self._sessions: dict[str, _Session] = {}
        self._by_socket_id: dict[str, _Session] = {}
        self._sockets: list[_Socket] = []
        self._held: dict[str, list[_Push]] = collections.defaultdict(list)
        self._losses: set[str] = set()
        self._backlog: collections.deque[dict[str, Any]] = collections.deque(maxlen=_BACKLOG)
        self._counter = 0
        self._event_id = 1000
        self._message_id = 1_700_000_000_000
        #: How many steps of the scenario's ``trouter_script`` were carried out.
        self.script_done = 0
        self._last_pushed: str | None = None

    def _emulator(self) -> Emulator | None:
        return self.owner() if self.owner is not None else None

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _note(self, now: dt.datetime, what: str, detail: Any = None) -> None:
        self.log.append(PeerLog(now, what, detail))

    # -- HTTP ---------------------------------------------------------------------------------

    @staticmethod
    def serves(path: str) -> bool:
        """Whether an HTTP request for ``path`` is the peer's to answer."""
        return path.endswith(("/v4/a", "/socket.io/1/", "/backlog")) or "/registrar/prod/" in path

    @staticmethod
    def is_upgrade(target: str, headers: Any) -> bool:
        """Whether a request (target, h11 header pairs) asks for the Trouter websocket."""
        path = target.partition("?")[0]
        upgrade = any(
            name.lower() == b"upgrade" and value.lower() == b"websocket" for name, value in headers
        )
        return upgrade and "/socket.io/1/websocket/" in path

    def handle(self, request: HttpRequest, now: dt.datetime) -> HttpResponse:
        """Answer one HTTP request to a Trouter route (404 for anything else)."""
        path = urllib.parse.urlsplit(request.url).path
        token = request.header("x-skypetoken")
        if path.endswith("/backlog") and request.method == "GET":
            self._note(now, "backlog", [e["resource"]["id"] for e in self._backlog])
            return HttpResponse.build(200, json={"eventMessages": list(self._backlog)})
        if token is None or token in self.revoked:
            return HttpResponse.build(401, json={"message": "Unauthorized"})
        if path.endswith("/v4/a") and request.method in ("GET", "POST"):
            return self._allocate(request, now)
        if path.endswith("/socket.io/1/") and request.method == "GET":
            return self._handshake(request, now)
        if "/registrar/prod/" in path.lower():
            return self._registrar(request, path, now)
        return HttpResponse.build(404, json={"message": "no such Trouter route"})

    def _allocate(self, request: HttpRequest, now: dt.datetime) -> HttpResponse:
        epid = dict(request.query()).get("epid")
        if not epid:
            return HttpResponse.build(400, json={"message": "epid is required"})
        sid = f"s{self._next():06d}"
        expires = now + dt.timedelta(seconds=self.ttl)
        sig = hashlib.sha256(f"{sid}:{epid}".encode()).hexdigest()[:32]
        self._sessions[sid] = _Session(sid, epid, sig, expires)
        base = request.url.partition("?")[0].rpartition("/v4/a")[0]
        socket_base = push_base = base
        emulator = self._emulator()
        if emulator is not None:
            mapped = emulator.hosts.url(f"https://{SOCKET_HOST}")
            if mapped != f"https://{SOCKET_HOST}":
                socket_base = push_base = mapped.rstrip("/")
            foreign = emulator.scenario.trouter_foreign
            if foreign == "socketio":
                socket_base = FOREIGN_TROUTER
            elif foreign == "surl":
                push_base = FOREIGN_TROUTER
        return HttpResponse.build(
            200,
            json={
                "socketio": f"{socket_base}/",
                "surl": f"{push_base}/v4/f/{sid}/",
                "url": f"{base}/",
                "ttl": str(self.ttl),
                "connectparams": {
                    "sr": sid,
                    "issuer": "prod-2",
                    "sp": "connect",
                    "se": _millis(expires),
                    "st": _millis(now),
                    "sig": sig,
                },
                "ccid": f"cc{sid}",
                "id": sid,
                "healthUrl": f"{base}/v4/h",
                "curlb": f"{base}/",
            },
        )

    def _live_session(self, query: dict[str, str], now: dt.datetime) -> _Session | None:
        session = self._sessions.get(query.get("sr", ""))
        if session is None or session.expired or now >= session.expires:
            return None
        if query.get("sig") != session.sig or query.get("epid") != session.epid:
            return None
        return session

    def _handshake(self, request: HttpRequest, now: dt.datetime) -> HttpResponse:
        query = dict(request.query())
        session = self._live_session(query, now)
        if session is None or query.get("v") != "v4":
            return HttpResponse.build(404, json={"message": "unknown or expired session"})
        socket_id = f"io{self._next():06d}"
        session.socket_id = socket_id
        self._by_socket_id[socket_id] = session
        return HttpResponse.build(
            200, content=f"{socket_id}:180:180:websocket,xhr-polling", content_type="text/plain"
        )

    def _registrar(self, request: HttpRequest, path: str, now: dt.datetime) -> HttpResponse:
        if request.method == "DELETE":
            self.registrations.pop(path.rstrip("/").rpartition("/")[2], None)
            return HttpResponse(202)
        if request.method != "POST" or not path.rstrip("/").endswith("/registrations"):
            return HttpResponse.build(404, json={"message": "no such registrar route"})
        try:
            body = request.json()
            description = body["clientDescription"]
            reg_id = body["registrationId"]
            (transport,) = body["transports"]["TROUTER"]
            entry = {
                "template": description["templateKey"],
                "context": description.get("productContext", ""),
                "path": transport["path"],
                "ttl": int(transport["ttl"]),
                "expires": now + dt.timedelta(seconds=int(transport["ttl"])),
            }
        except (RemoteProtocolError, KeyError, TypeError, ValueError):
            return HttpResponse.build(400, json={"message": "malformed registration"})
        if not isinstance(reg_id, str) or not reg_id:
            return HttpResponse.build(400, json={"message": "registrationId is required"})
        self.registrations[reg_id] = entry
        self._note(now, "register", reg_id)
        return HttpResponse(202)

    def _routes_to(self, session: _Session, now: dt.datetime) -> bool:
        """Whether a registration sends pushes to ``session``'s surl (the TFL rule)."""
        for entry in self.registrations.values():
            if not entry["path"].rstrip("/").endswith(f"/v4/f/{session.id}"):
                continue
            if now >= entry["expires"]:
                continue
            if self.require_tfl and (entry["template"], entry["context"]) != _TFL_RULE:
                continue
            return True
        return False

    # -- streams ------------------------------------------------------------------------------

    def connect(self, url: str, now: dt.datetime) -> object:
        """The server side of a new stream (the answer to an ``OpenStream``)."""
        sock = _Socket(wsproto.WSConnection(wsproto.ConnectionType.SERVER))
        self._sockets.append(sock)
        return sock

    def _socket(self, handle: object) -> _Socket:
        if not isinstance(handle, _Socket) or handle not in self._sockets:
            raise LocalProtocolError("not a stream of this peer")
        return handle

    def feed(self, handle: object, data: bytes, now: dt.datetime) -> None:
        """Bytes from the client."""
        sock = self._socket(handle)
        if sock.reset:
            raise TransportError("ConnectionResetError on the stream to the Trouter peer")
        if sock.closed:
            return
        try:
            sock.conn.receive_data(data)
            for event in sock.conn.events():
                self._on_ws_event(sock, event, now)
        except WsRemoteError:
            self._close_socket(sock, now, "bad framing")

    def read(self, handle: object, max_bytes: int, now: dt.datetime) -> bytes | TimedOut:
        """Bytes for the client: what is waiting, ``b""`` once closed, else ``TIMED_OUT``."""
        sock = self._socket(handle)
        if sock.reset:
            raise TransportError("ConnectionResetError on the stream to the Trouter peer")
        self.tick(now)
        if sock.out:
            data = bytes(sock.out[:max_bytes])
            del sock.out[:max_bytes]
            return data
        return b"" if sock.closed else TIMED_OUT

    def close(self, handle: object, now: dt.datetime) -> None:
        """The client closed its end."""
        sock = self._socket(handle)
        if sock.accepted and not sock.closed:
            self._note(now, "closed")
        self._close_socket(sock, now, None)
        self._sockets.remove(sock)

    def has_output(self, handle: object) -> bool:
        """Whether :meth:`read` would give bytes (or the end of the stream) now."""
        sock = self._socket(handle)
        return bool(sock.out) or sock.closed

    def _on_ws_event(self, sock: _Socket, event: ws.Event, now: dt.datetime) -> None:
        if isinstance(event, ws.Request):
            socket_id = event.target.partition("?")[0].rstrip("/").rpartition("/")[2]
            session = self._by_socket_id.get(socket_id)
            live = session is not None and not session.expired and now < session.expires
            if session is None or not live or "/socket.io/1/websocket/" not in event.target:
                sock.out += sock.conn.send(ws.RejectConnection(status_code=404))
                sock.closed = True
                return
            sock.out += sock.conn.send(ws.AcceptConnection())
            sock.accepted, sock.session = True, session
            self._note(now, "connect", session.id)
            self._send(sock, Frame(FrameType.CONNECT))
            sock.packet += 1
            connected = {"surl": f"/v4/f/{session.id}/", "ttl": self.ttl, "dur": 0}
            self._send(sock, event_frame("trouter.connected", [connected], ack_id=sock.packet))
        elif isinstance(event, ws.TextMessage):
            if not event.message_finished:  # pragma: no cover - the client sends whole frames
                return
            self._on_text(sock, event.data, now)
        elif isinstance(event, ws.Ping):
            sock.out += sock.conn.send(event.response())
        elif isinstance(event, ws.CloseConnection):
            if sock.conn.state is ConnectionState.REMOTE_CLOSING:
                sock.out += sock.conn.send(event.response())
            self._close_socket(sock, now, None)

    def _on_text(self, sock: _Socket, text: str, now: dt.datetime) -> None:
        try:
            frame = parse_frame(text)
            if frame.type is FrameType.MESSAGE:
                answer = json.loads(frame.data or "")
                if self.lose_answers > 0:
                    self.lose_answers -= 1
                    lost = sock.in_flight.get(answer["id"])
                    if lost is not None:
                        self._note(now, "answer lost", (lost.request_id, lost.message_id))
                    return
                push = sock.in_flight.pop(answer["id"], None)
                if answer.get("status") == 200 and push is not None:
                    self._note(now, "response", (push.request_id, push.message_id))
            elif frame.type is FrameType.EVENT:
                name, args = parse_event(frame.data)
                self._note(now, "ping" if name == "ping" else "event", name)
                if name == "user.activity":
                    self._note(now, "activity", args)
                if frame.wants_ack and frame.id is not None:
                    reply = ["pong"] if name == "ping" else []
                    self._send(sock, ack_frame(frame.id, reply))
            elif frame.type is FrameType.ACK:
                self._note(now, "ack", parse_ack(frame.data)[0] if frame.data else frame.id)
            elif frame.type is FrameType.HEARTBEAT:
                self._note(now, "heartbeat")
        except (RemoteProtocolError, ValueError, KeyError, TypeError):
            self._send(sock, Frame(FrameType.ERROR, data="malformed frame"))

    def _send(self, sock: _Socket, frame: Frame) -> None:
        if sock.closed or sock.conn.state is not ConnectionState.OPEN:
            return
        sock.out += sock.conn.send(ws.TextMessage(data=frame.encode()))

    def _close_socket(self, sock: _Socket, now: dt.datetime, why: str | None) -> None:
        if sock.closed:
            return
        if why is not None:
            self._note(now, "drop", why)
            if sock.conn.state is ConnectionState.OPEN:
                sock.out += sock.conn.send(ws.CloseConnection(code=1001, reason=why))
        sock.closed = True
        for push in sock.in_flight.values():
            self._hold(push, now)
        sock.in_flight.clear()

    def _hold(self, push: _Push, now: dt.datetime) -> None:
        """An unanswered push: keep it for the next connection, or report it lost."""
        if self.redeliver:
            self._held[push.epid].append(push)
        else:
            self._losses.add(push.epid)
            self._note(now, "lost", push.request_id)

    # -- cues ---------------------------------------------------------------------------------

    def _connected(self, now: dt.datetime) -> list[_Socket]:
        return [
            s
            for s in self._sockets
            if s.accepted
            and not s.closed
            and s.session is not None
            and self._routes_to(s.session, now)
        ]

    def tick(self, now: dt.datetime) -> None:
        """Let time pass: redeliver or report pushes unanswered for ``ack_timeout``, deliver
        what is held for endpoints that are connected and registered, report losses."""
        for sock in self._connected(now):
            assert sock.session is not None
            for push in list(sock.in_flight.values()):
                if (
                    push.sent_at is not None
                    and (now - push.sent_at).total_seconds() >= self.ack_timeout
                ):
                    del sock.in_flight[push.request_id]
                    self._hold(push, now)
            epid = sock.session.epid
            if epid in self._losses:
                self._losses.discard(epid)
                sock.packet += 1
                self._note(now, "loss", epid)
                args = [{"droppedIndicators": [{"tag": "chat"}]}]
                self._send(sock, event_frame("trouter.message_loss", args, ack_id=sock.packet))
            for push in self._held.pop(epid, []):
                self._deliver(sock, push, now)
        self._run_script(now)

    def _run_script(self, now: dt.datetime) -> None:
        """Carry out the next step of the scenario's ``trouter_script``, if one is due: an
        endpoint is connected and registered, and every push so far was answered."""
        emulator = self._emulator()
        if emulator is None:
            return
        script = emulator.scenario.trouter_script
        if self.script_done >= len(script) or any(self._held.values()):
            return
        connected = self._connected(now)
        if not connected or any(sock.in_flight for sock in connected):
            return
        step = script[self.script_done]
        self.script_done += 1
        self._note(now, "script", step)
        if step in ("message", "missed"):
            resource = emulator.teams.add_message(
                _SCRIPT_CHAT, _SCRIPT_SENDER, f"scripted {self.script_done}", now
            )
            if step == "message":
                self._push_event("NewMessage", resource, now)
                self._last_pushed = resource["id"]
        elif step == "typing":
            resource = {
                "id": str(self._message_id),
                "messagetype": "Control/Typing",
                "content": "",
                "from": f"https://msgapi.teams.live.com/v1/users/ME/contacts/{_SCRIPT_SENDER}",
                "conversationLink": (
                    f"https://msgapi.teams.live.com/v1/users/ME/conversations/{_SCRIPT_CHAT}"
                ),
            }
            self._push_event("NewMessage", resource, now, backlog=False)
        elif step == "presence":
            availability = {"availability": "Available", "activity": "Available"}
            payload = {"presence": [{"mri": _SCRIPT_SENDER, "etag": "1", "presence": availability}]}
            self.push_raw("TeamsUnifiedPresenceService", payload, now=now)
        elif step == "call":
            inner = json.dumps({"callerId": _SCRIPT_SENDER, "callId": "call-1"}).encode()
            wrapped = {"evt": 107, "callId": "call-1", "gp": base64.b64encode(inner).decode()}
            self.push_raw("NGCallManagerWin", wrapped, now=now)
        elif step == "again" and self._last_pushed is not None:
            self.push_again(self._last_pushed, now=now)
        elif step == "drop":
            self.drop(now)
        elif step == "loss":
            self.report_loss(now)

    def push(
        self,
        content: str = "hello",
        *,
        chat: str = "8:live:bob",
        sender: str = "8:live:bob",
        now: dt.datetime,
    ) -> int:
        """Push a new chat message to every connected, registered endpoint; its message id."""
        self._message_id += 1
        when = now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        base = "https://msgapi.teams.live.com/v1/users/ME/conversations"
        self._push_event(
            "NewMessage",
            {
                "id": str(self._message_id),
                "type": "Message",
                "messagetype": "RichText",
                "contenttype": "text",
                "content": content,
                "clientmessageid": str(self._message_id * 7 % 10**19),
                "originalarrivaltime": when,
                "composetime": when,
                "version": str(self._message_id),
                "from": f"https://msgapi.teams.live.com/v1/users/ME/contacts/{sender}",
                "conversationLink": f"{base}/{chat}",
                "imdisplayname": "Bob",
            },
            now,
        )
        return self._message_id

    def _push_event(
        self, kind: str, resource: dict[str, Any], now: dt.datetime, *, backlog: bool = True
    ) -> None:
        """Push an EventMessage of ``kind`` carrying ``resource`` (kept in the backlog)."""
        self._event_id += 1
        event = {
            "id": self._event_id,
            "time": now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "type": "EventMessage",
            "resourceType": kind,
            "resourceLink": f"{resource.get('conversationLink', '')}/messages/{resource['id']}",
            "resource": resource,
        }
        if backlog:
            self._backlog.append(event)
        self.push_raw("messaging", event, now=now)

    def push_again(self, message_id: int | str, *, now: dt.datetime) -> bool:
        """Push a chat event from the backlog once more (a duplicate); whether it was there."""
        for event in self._backlog:
            if event["resource"]["id"] == str(message_id):
                self.push_raw("messaging", event, now=now)
                return True
        return False

    def push_raw(self, suffix: str, payload: Any, *, now: dt.datetime) -> None:
        """Push ``payload`` (JSON) to ``surl + suffix`` of every connected, registered endpoint
        (an endpoint not connected misses it; it finds chat events in the backlog)."""
        body = json.dumps(payload, separators=(",", ":"))
        headers = {"Content-Type": "application/json; charset=utf-8", "MS-CV": "peer.1"}
        emulator = self._emulator()
        if self.gzip_bodies or (emulator is not None and emulator.scenario.trouter_gzip):
            body = base64.b64encode(gzip.compress(body.encode(), mtime=0)).decode("ascii")
            headers[CONTENT_ENCODING_HEADER] = "gzip"
        message_id = None
        if isinstance(payload, dict) and isinstance(payload.get("resource"), dict):
            message_id = payload["resource"].get("id")
        for sock in self._connected(now):
            assert sock.session is not None
            push = _Push(self._next(), sock.session.epid, suffix, body, headers, message_id)
            self._deliver(sock, push, now)

    def _deliver(self, sock: _Socket, push: _Push, now: dt.datetime) -> None:
        assert sock.session is not None
        push.sent_at = now
        sock.in_flight[push.request_id] = push
        request = {
            "id": push.request_id,
            "method": "POST",
            "url": f"/v4/f/{sock.session.id}/{push.suffix}",
            "headers": push.headers,
            "body": push.body,
        }
        self._note(now, "push", (push.request_id, push.message_id))
        self._send(sock, Frame(FrameType.MESSAGE, data=json.dumps(request, separators=(",", ":"))))

    def drop(self, now: dt.datetime, *, reset: bool = False) -> None:
        """Close every open socket with a close frame, or ``reset`` it (the client's next read
        or write fails); unanswered pushes are held back or reported lost."""
        for sock in list(self._sockets):
            if reset and not sock.closed:
                sock.out.clear()
                sock.reset = True
            self._close_socket(sock, now, "reset" if reset else "dropped")

    def expire(self, now: dt.datetime) -> None:
        """End every session: its sockets close and its handshake no longer works."""
        for session in self._sessions.values():
            session.expired = True
        for sock in list(self._sockets):
            self._close_socket(sock, now, "session expired")

    def report_loss(self, now: dt.datetime) -> None:
        """Send ``trouter.message_loss`` to every connected endpoint (at the next tick)."""
        for sock in self._connected(now):
            assert sock.session is not None
            self._losses.add(sock.session.epid)
        self.tick(now)

    def inject(self, text: str, now: dt.datetime) -> None:
        """Send ``text`` as it is, as one text message, on every open socket (any frame, or
        garbage)."""
        for sock in self._sockets:
            if sock.accepted and not sock.closed and sock.conn.state is ConnectionState.OPEN:
                sock.out += sock.conn.send(ws.TextMessage(data=text))

    def revoke(self, token: str) -> None:
        """From now on ``token`` gets 401."""
        self.revoked.add(token)

    # -- one call for every effect --------------------------------------------------------------

    def carry_out(self, effect: object, now: dt.datetime) -> Any:
        """The outcome of an HTTP or stream effect, as a driver would give it."""
        if isinstance(effect, HttpRequest):
            return self.handle(effect, now)
        if isinstance(effect, OpenStream):
            return self.connect(effect.url, now)
        if isinstance(effect, SendBytes):
            self.feed(effect.stream, effect.data, now)
            return None
        if isinstance(effect, ReceiveBytes):
            return self.read(effect.stream, effect.max_bytes, now)
        if isinstance(effect, CloseStream):
            if isinstance(effect.stream, _Socket) and effect.stream in self._sockets:
                self.close(effect.stream, now)
            return None
        raise LocalProtocolError(f"the peer does not carry out {type(effect).__name__}")


class PeerDriver:
    """Drive a flow against a :class:`TrouterPeer` in memory, on a virtual clock.

    :meth:`settle` answers effects until the flow waits to read and nothing is there;
    :meth:`advance` lets time pass, answering that wait with ``TIMED_OUT`` each time its timeout
    runs out (which is how the flow's timers fire). ``Sleep`` moves the clock at once. HTTP
    requests the peer does not serve go to ``other`` when given.
    """

    def __init__(
        self,
        flow: Flow[Any],
        peer: TrouterPeer,
        start: dt.datetime,
        *,
        other: Callable[[HttpRequest, dt.datetime], HttpResponse | None] | None = None,
        limit: int = 100_000,
    ) -> None:
        self.peer = peer
        self.now = start
        self.other = other
        self._limit = limit
        self._waiting_since: dt.datetime | None = None
        self.step = Stepper(flow)

    @property
    def done(self) -> bool:
        return self.step.done

    def _answer(self, effect: object) -> None:
        if isinstance(effect, Now):
            self.step.send(self.now)
        elif isinstance(effect, Sleep):
            self.now += dt.timedelta(seconds=max(0.0, effect.seconds))
            self.peer.tick(self.now)
            self.step.send(None)
        elif isinstance(effect, Deliver):
            try:
                effect.handler(effect.event)
            except Exception as exc:
                self.step.throw(exc)
            else:
                self.step.send(None)
        elif isinstance(effect, Shared):
            inner = PeerDriver(effect.start(), self.peer, self.now, other=self.other)
            try:
                result = inner.run_until_done()
            except Exception as exc:
                self.now = inner.now
                self.step.throw(exc)
            else:
                self.now = inner.now
                self.step.send(result)
        elif isinstance(effect, HttpRequest) and self.other is not None:
            answer = self.other(effect, self.now)
            self.step.send(answer if answer is not None else self.peer.handle(effect, self.now))
        else:
            try:
                outcome = self.peer.carry_out(effect, self.now)
            except TransportError as exc:  # as a driver does: thrown into the flow
                self.step.throw(exc)
            else:
                self.step.send(outcome)

    def _blocked(self) -> ReceiveBytes | None:
        """The pending read, when it would have to wait."""
        effect = self.step.pending
        if isinstance(effect, ReceiveBytes) and not self.peer.has_output(effect.stream):
            self.peer.tick(self.now)
            if not self.peer.has_output(effect.stream):
                return effect
        return None

    def settle(self) -> None:
        """Answer effects until the flow finishes or waits on a read with nothing to read."""
        for _ in range(self._limit):
            if self.step.done:
                return
            blocked = self._blocked()
            if blocked is not None:
                if self._waiting_since is None:
                    self._waiting_since = self.now
                return
            self._waiting_since = None
            self._answer(self.step.pending)
        raise AssertionError("the flow did not settle")

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing the flow's read timeouts as they run out."""
        target = self.now + dt.timedelta(seconds=seconds)
        for _ in range(self._limit):
            self.settle()
            if self.step.done:
                return
            blocked = self._blocked()
            assert blocked is not None
            assert self._waiting_since is not None
            expires = self._waiting_since + dt.timedelta(seconds=blocked.timeout)
            if expires > target:
                self.now = target
                self.peer.tick(self.now)
                self.settle()
                return
            self.now = max(self.now, expires)
            self._waiting_since = None
            self.step.send(TIMED_OUT)
        raise AssertionError("the flow did not come to rest")

    def run_until_done(self, max_seconds: float = 10**7) -> Any:
        """Advance until the flow finishes; its result (or its exception)."""
        start = self.now
        while not self.step.done:
            if (self.now - start).total_seconds() > max_seconds:
                raise AssertionError("the flow did not finish in time")
            self.advance(3600)
        return self.step.result
