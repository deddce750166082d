"""The Trouter client: push events over a websocket, as one long-running flow (docs/trouter.md).

One *connection* is the whole sequence (docs/trouter.md, "The sequence"):

1. ``POST /v4/a?epid=…`` with the skypetoken allocates a session: ``socketio`` (where to
   connect), ``surl`` (where pushes for this session are routed), ``ttl`` (seconds, as a
   string) and ``connectparams`` (a signed grant). Both URLs must pass :class:`~skyproto.Hosts`
   before anything is sent to them.
2. ``GET {socketio}socket.io/1/?…`` (the socket.io 0.9 handshake) answers
   ``<session id>:<heartbeat>:<close>:<transports>``.
3. The websocket at ``{socketio}socket.io/1/websocket/<session id>?…`` (same query).
4. On the server's ``1::``: register ``surl`` with the registrar, then send ``user.activity``.

Then, on the socket:

- every ``3:::`` request is answered ``3:::{"id": <same>, "status": 200}`` *before* its
  payload is delivered; ``messaging`` payloads become the typed events of
  :mod:`skyproto.events`, anything else an :class:`~skyproto.events.UnknownEvent` whose ``raw``
  is the decoded payload;
- every ``5:N+::`` event is acknowledged ``6:::N+[]`` (``["pong"]`` for ``ping``);
  ``trouter.message_loss`` registers again and catches up;
- ``2::`` is echoed; a ``ping`` event goes out every :attr:`TrouterPolicy.ping_interval`;
- events are de-duplicated by message id (other events by event id) across connections, in a
  bounded window.

Timers are deadlines computed from :func:`~skyproto.now`: the next ping, the registration's
renewal (``ttl`` minus a leeway), the session's end, the pong's deadline. The nearest is the
receive timeout, so one loop serves reading and timers.

Reconnection: a close, an error or the session's end runs the whole sequence again, after a
bounded exponential backoff with jitter (drawn from the ``rng`` given, so a seeded
``random.Random`` replays). After every connection that follows a registration (by this
client, in this run or an earlier one), and on ``trouter.message_loss``, the
``catch_up`` sub-flow given (a REST listing) is delivered through the same de-duplication, so a
gap loses nothing and delivers nothing twice. A 401 anywhere asks ``renew_token`` for a fresh
skypetoken once; a second 401 in a row ends the run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import string
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final, Protocol

import attrs

from .._flow import Flow, deliver, now, sleep
from .._http import HttpRequest, HttpResponse, encode_query
from .._runs import Seen, backoff, count, failed_again, positive, until_deadline
from ..calls import USER_AGENT, AuthKind, build_request, check_status
from ..errors import (
    LocalProtocolError,
    RemoteProtocolError,
    SkypeApiException,
    SkypeAuthException,
    SkypeRateLimitException,
    TransportError,
    UntrustedHostError,
)
from ..events import Event, MessageEvent, UnknownEvent, converter
from . import _websocket
from ._frames import (
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

__all__ = [
    "REGISTRAR_URL",
    "SESSION_URL",
    "TrouterClient",
    "TrouterPolicy",
    "TrouterSession",
    "TrouterStats",
    "dedupe_key",
    "events_from_messages",
    "parse_session",
    "registration_body",
]

logger = logging.getLogger("skyproto")

#: Session allocation for personal accounts (docs/trouter.md: the host is contested).
SESSION_URL: Final = "https://go.trouter.skype.com/v4/a"
#: The registrar personal clients use.
REGISTRAR_URL: Final = "https://edge.skype.com/registrar/prod/v2/registrations"
#: The client version sent in ``tc`` and the registration (a build of the personal web client).
CLIENT_VERSION: Final = "1415/26100101400"
_SESSION_ID = re.compile(r"[A-Za-z0-9._~-]{1,256}")
_CV_ALPHABET: Final = string.ascii_letters + string.digits + "+/"
_ACCEPTED: Final = frozenset({200, 201, 202, 204})


class HostsLike(Protocol):
    """What the client needs of :class:`~skyproto.Hosts`."""

    def url(self, real_url: str) -> str: ...

    def require_trusted(self, url: str, what: str) -> str: ...


@attrs.frozen
class TrouterPolicy:
    """The client's timings (seconds) and bounds."""

    #: Between ``ping`` events (two clients' code agrees on 30 s).
    ping_interval: float = attrs.field(default=30.0, validator=positive)
    #: How long a ``ping`` may go unacknowledged before the connection counts as dead.
    pong_timeout: float = attrs.field(default=45.0, validator=positive)
    #: The registration's ``ttl`` asked of the registrar.
    registration_ttl: int = attrs.field(default=86400, validator=count)
    #: Renew the registration this long before its ``ttl`` lapses.
    renew_leeway: float = attrs.field(default=10.0, validator=positive)
    #: Reconnect this long before the session's ``ttl`` lapses.
    session_leeway: float = attrs.field(default=60.0, validator=positive)
    #: Each HTTP request's timeout, and the bound on connecting and upgrading the socket.
    request_timeout: float = attrs.field(default=30.0, validator=positive)
    #: How long to wait for the server's ``1::`` after the upgrade.
    connect_timeout: float = attrs.field(default=30.0, validator=positive)
    #: Bound on writing one frame.
    send_timeout: float = attrs.field(default=30.0, validator=positive)
    #: First backoff delay, doubled after each failure in a row ...
    backoff_initial: float = attrs.field(default=1.0, validator=positive)
    #: ... up to this cap; each delay is drawn from [cap / 2, cap].
    backoff_max: float = attrs.field(default=64.0, validator=positive)
    #: A connection that lived this long resets the failure count when it ends.
    stable_after: float = attrs.field(default=60.0, validator=positive)
    #: Failures in a row (transport, protocol, 5xx, 429) before the run gives up.
    max_failures: int = attrs.field(default=10, validator=count)
    #: The longest ``Retry-After`` waited out; a longer one ends the run.
    max_retry_after: float = attrs.field(default=600.0, validator=positive)
    #: The largest websocket message accepted, in characters.
    max_message: int = attrs.field(default=4 * 1024 * 1024, validator=count)
    #: How many delivered keys are remembered for de-duplication.
    dedupe_window: int = attrs.field(default=10_000, validator=count)


@attrs.define
class TrouterStats:
    """What the client has done (over every run of one :class:`TrouterClient`)."""

    #: Connections that reached ``1::``.
    connections: int = 0
    #: Events handed to the handler.
    delivered: int = 0
    #: Events not delivered because their key was delivered before.
    duplicates: int = 0
    #: ``3:::`` requests answered.
    responses: int = 0
    #: ``5:N+::`` events acknowledged.
    acks: int = 0
    pings: int = 0
    registrations: int = 0
    catch_ups: int = 0
    #: ``trouter.message_loss`` reports received.
    losses: int = 0
    #: Failures that count towards :attr:`TrouterPolicy.max_failures`.
    failures: int = 0
    #: 401 answers that asked for a fresh skypetoken.
    token_renewals: int = 0
    #: Seconds of backoff asked of the driver.
    slept: float = 0.0


@attrs.frozen
class TrouterSession:
    """The answer to the session allocation (``/v4/a``)."""

    socketio: str
    surl: str
    #: ``ttl``: the session's lifetime in seconds (sent as a string).
    ttl: int
    connectparams: tuple[tuple[str, str], ...] = attrs.field(repr=False)
    ccid: str | None = None


def parse_session(response: HttpResponse) -> TrouterSession:
    """Read the session allocation's answer; :class:`RemoteProtocolError` when it is not one."""
    try:
        body = response.json()
    except (RemoteProtocolError, ValueError, RecursionError):
        raise RemoteProtocolError("Trouter session answer is not JSON") from None
    if body.__class__ is not dict:
        raise RemoteProtocolError("Trouter session answer is not a JSON object")
    socketio, surl, ttl = body.get("socketio"), body.get("surl"), body.get("ttl")
    if socketio.__class__ is not str or surl.__class__ is not str:
        raise RemoteProtocolError("Trouter session answer lacks socketio or surl")
    if ttl.__class__ is str and ttl.isascii() and ttl.isdigit() and len(ttl) <= 12:
        seconds = int(ttl)
    elif ttl.__class__ is int and 0 <= ttl < 10**12:
        seconds = ttl
    else:
        raise RemoteProtocolError("Trouter session ttl is missing or not a number of seconds")
    params = body.get("connectparams", {})
    if params.__class__ is not dict:
        raise RemoteProtocolError("Trouter connectparams is not a JSON object")
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value.__class__ is str:
            pairs.append((key, value))
        elif value.__class__ is int:
            pairs.append((key, str(value)))
        else:
            raise RemoteProtocolError("a Trouter connectparams value is not text or a number")
    ccid = body.get("ccid")
    if not socketio.endswith("/"):
        socketio += "/"
    return TrouterSession(
        socketio, surl, seconds, tuple(pairs), ccid if ccid.__class__ is str else None
    )


def registration_body(
    endpoint_id: str, surl: str, ttl: int, client_version: str = CLIENT_VERSION
) -> dict[str, Any]:
    """The TFL registration: chat pushes for this endpoint go to ``surl``."""
    return {
        "clientDescription": {
            "appId": "TeamsCDLWebWorker",
            "aesKey": "",
            "languageId": "en-US",
            "platform": "edge",
            "templateKey": "TeamsCDLWebWorker_2.6",
            "platformUIVersion": client_version,
            "productContext": "TFL",
        },
        "registrationId": endpoint_id,
        "nodeId": "",
        "transports": {"TROUTER": [{"context": "", "path": surl, "ttl": ttl}]},
    }


class _Unauthorized(Exception):
    """A 401 somewhere in the sequence; the run asks for a fresh token."""

    def __init__(self, response: HttpResponse | None) -> None:
        super().__init__("401")
        self.response = response


def events_from_messages(messages: Sequence[Any]) -> list[Event]:
    """The events a push would have carried for chat messages from a REST listing.

    Each message (a JSON object as the chat service lists it) is wrapped as a ``NewMessage``
    EventMessage and decoded like a push, so a message delivered by either way has the same
    :func:`dedupe_key`. Its id (the message id, a number) serves as the event id and
    ``originalarrivaltime`` as its time; what cannot be read becomes an
    :class:`~skyproto.events.UnknownEvent`, as in a push.
    """
    wrapped: list[Any] = []
    for message in messages:
        if message.__class__ is not dict:
            wrapped.append(message)
            continue
        ident = message.get("id")
        number = ident
        if ident.__class__ is str and ident.isascii() and ident.isdigit() and len(ident) < 19:
            number = int(ident)
        wrapped.append(
            {
                "id": number,
                "time": message.get("originalarrivaltime") or message.get("composetime"),
                "type": "EventMessage",
                "resourceType": "NewMessage",
                "resource": message,
            }
        )
    events: list[Event] = converter.structure(wrapped, list[Event])
    return events


def dedupe_key(event: Event) -> Hashable | None:
    """What identifies ``event`` across pushes and catch-ups: the message id of a message
    event, else the event id; ``None`` when it has neither."""
    if isinstance(event, MessageEvent) and event.msg_id is not None:
        return ("message", type(event).__name__, event.msg_id)
    if event.id is not None:
        return ("event", event.id)
    return None


@attrs.define
class _Connection:
    socket: _websocket.WebSocket
    session: TrouterSession
    started: dt.datetime
    ends: dt.datetime
    next_ping: dt.datetime
    renew_at: dt.datetime
    packet: int = 0
    #: Our unacknowledged pings: packet id -> when the pong is due.
    pings: dict[int, dt.datetime] = attrs.field(factory=dict)

    def next_packet(self) -> int:
        self.packet += 1
        return self.packet


class TrouterClient:
    """Deliver push events to ``handler`` until stopped; :meth:`run` is the flow.

    ``skypetoken`` and ``endpoint_id`` (the persisted endpoint UUID) identify the client.
    ``hosts`` maps and trusts URLs (a :class:`~skyproto.Hosts`). ``renew_token()`` is a sub-flow
    giving a fresh skypetoken after a 401; ``catch_up()`` a sub-flow giving the events of a REST
    listing, delivered after a gap. ``rng`` draws the backoff jitter and the activity's
    correlation id.
    """

    def __init__(
        self,
        skypetoken: str,
        endpoint_id: str,
        handler: Callable[[Event], object],
        *,
        hosts: HostsLike,
        renew_token: Callable[[], Flow[str]] | None = None,
        catch_up: Callable[[], Flow[Sequence[Event]]] | None = None,
        policy: TrouterPolicy | None = None,
        rng: random.Random | None = None,
        client_version: str = CLIENT_VERSION,
        session_url: str = SESSION_URL,
        registrar_url: str = REGISTRAR_URL,
    ) -> None:
        if not isinstance(skypetoken, str) or not skypetoken:
            raise LocalProtocolError("a skypetoken is needed")
        if not isinstance(endpoint_id, str) or not endpoint_id:
            raise LocalProtocolError("an endpoint id is needed")
        self._token = skypetoken
        self.endpoint_id = endpoint_id
        self.handler = handler
        self.hosts = hosts
        self.renew_token = renew_token
        self.catch_up = catch_up
        self.policy = policy if policy is not None else TrouterPolicy()
        self.rng = rng if rng is not None else random.Random()  # noqa: S311 (jitter)
        self.client_version = client_version
        self.session_url = session_url
        self.registrar_url = registrar_url
        self.stats = TrouterStats()
        self._seen = Seen(self.policy.dedupe_window)
        self._stopping = False
        self._handler_failed = False
        self._handshakes = 0

    def __repr__(self) -> str:
        return f"TrouterClient(endpoint_id={self.endpoint_id!r}, stats={self.stats!r})"

    def stop(self) -> None:
        """End :meth:`run` at the next step boundary."""
        self._stopping = True

    # -- the run ------------------------------------------------------------------------------

    def run(
        self, *, max_events: int | None = None, deadline: dt.datetime | None = None
    ) -> Flow[TrouterStats]:
        """Flow: connect, deliver and reconnect until :meth:`stop`, ``deadline`` (aware), or at
        least ``max_events`` deliveries (checked between pushes: a push answered is always
        delivered whole)."""
        if max_events is not None and (
            isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 0
        ):
            raise LocalProtocolError("max_events must be a whole number, not negative")
        if deadline is not None and (
            not isinstance(deadline, dt.datetime) or deadline.utcoffset() is None
        ):
            raise LocalProtocolError("deadline must be a timezone-aware datetime")
        self._stopping = False
        self._handler_failed = False
        target = None if max_events is None else self.stats.delivered + max_events
        failures = 0
        renewed = False
        while not self._done(target):
            current = yield from now()
            if deadline is not None and current >= deadline:
                break
            conn: _Connection | None = None
            # Once anything was registered, pushes may have gone to a socket that is gone (even
            # one that failed before it was fully set up): the new connection catches up.
            gap = self.stats.registrations > 0
            try:
                conn = yield from self._connect(current)
                renewed = False
                if gap:
                    yield from self._catch_up()
                reason = yield from self._serve(conn, target, deadline)
                lived = ((yield from now()) - conn.started).total_seconds()
                yield from self._hang_up(conn)
                # The session's planned end reconnects at once, unless the session was so short
                # (a ttl of 0, say) that reconnecting at once would hammer the service.
                if reason == "stopped" or (
                    reason == "expired" and lived >= self.policy.backoff_initial
                ):
                    failures = 0
                    continue
                if lived >= self.policy.stable_after:
                    failures = 0
                ended = "session ended too soon" if reason == "expired" else "socket closed"
                failures = self._failing(failures, RemoteProtocolError(f"Trouter {ended}"))
                yield from self._back_off(failures, deadline)
            except _Unauthorized as exc:
                yield from self._abandon(conn)
                if self.renew_token is None or renewed:
                    raise SkypeAuthException(
                        "Trouter refused the skypetoken (401)", exc.response
                    ) from None
                self.stats.token_renewals += 1
                self._token = yield from self.renew_token()
                renewed = True
            except (UntrustedHostError, LocalProtocolError, SkypeAuthException):
                raise
            except SkypeRateLimitException as exc:
                if self._handler_failed:
                    raise
                yield from self._abandon(conn)
                failures = self._failing(failures, exc)
                if exc.retry_after is not None:
                    if exc.retry_after > self.policy.max_retry_after:
                        raise
                    yield from self._pause(exc.retry_after, deadline)
                else:
                    yield from self._back_off(failures, deadline)
            except (TransportError, SkypeApiException) as exc:
                if self._handler_failed:
                    raise
                yield from self._abandon(conn)
                if isinstance(exc, SkypeApiException) and _is_client_error(exc):
                    raise
                failures = self._failing(failures, exc)
                yield from self._back_off(failures, deadline)
        return self.stats

    def _done(self, target: int | None) -> bool:
        return self._stopping or (target is not None and self.stats.delivered >= target)

    # -- one connection -----------------------------------------------------------------------

    def _connect(self, current: dt.datetime) -> Flow[_Connection]:
        session = yield from self._allocate()
        query = self._query(session, current)
        sid = yield from self._handshake(session, query)
        url = f"{session.socketio}socket.io/1/websocket/{sid}"
        headers = [("User-Agent", USER_AGENT), ("X-Skypetoken", self._token)]
        try:
            socket = yield from _websocket.connect(
                _with_query(url, query),
                headers,
                timeout=self.policy.request_timeout,
                max_message=self.policy.max_message,
            )
        except _websocket.WebSocketRejected as exc:
            if exc.status == 401:
                raise _Unauthorized(exc.response) from None
            raise
        started = yield from now()
        conn = _Connection(
            socket,
            session,
            started,
            ends=started + dt.timedelta(seconds=self._lifetime(session.ttl)),
            next_ping=started + dt.timedelta(seconds=self.policy.ping_interval),
            renew_at=started,
        )
        try:
            yield from self._await_connected(conn)
            self.stats.connections += 1
            yield from self._register(conn)
            yield from self._send(
                conn, event_frame("user.activity", [self._activity()], ack_id=conn.next_packet())
            )
        except Exception:
            yield from self._abandon(conn)
            raise
        return conn

    def _lifetime(self, ttl: int) -> float:
        """How long to keep a session: its ``ttl`` less the leeway, or half of a ttl shorter
        than twice the leeway."""
        return max(ttl - self.policy.session_leeway, ttl / 2)

    def _allocate(self) -> Flow[TrouterSession]:
        url = self.hosts.require_trusted(
            self.hosts.url(self.session_url), "the Trouter session URL"
        )
        req = build_request(
            "POST",
            url,
            auth=(AuthKind.SKYPE_TOKEN, self._token),
            params={"epid": self.endpoint_id},
            content=b"",
            timeout=self.policy.request_timeout,
        )
        response = yield from self._call(req)
        session = parse_session(response)
        self.hosts.require_trusted(session.socketio, "the Trouter socket URL")
        self.hosts.require_trusted(session.surl, "the Trouter push URL")
        return session

    def _query(self, session: TrouterSession, current: dt.datetime) -> list[tuple[str, str]]:
        self._handshakes += 1
        tc = {"cv": "2024.23.01.2", "ua": "TeamsCDL", "hr": "", "v": self.client_version}
        millis = int(current.timestamp() * 1000)
        query = [("v", "v4"), *session.connectparams]
        query.append(("tc", json.dumps(tc, separators=(",", ":"))))
        query.append(("con_num", f"{millis}_{self._handshakes}"))
        query.append(("epid", self.endpoint_id))
        if session.ccid is not None:
            query.append(("ccid", session.ccid))
        query += [("auth", "true"), ("timeout", "40")]
        return query

    def _handshake(self, session: TrouterSession, query: list[tuple[str, str]]) -> Flow[str]:
        req = build_request(
            "GET",
            f"{session.socketio}socket.io/1/",
            auth=(AuthKind.SKYPE_TOKEN, self._token),
            params=query,
            timeout=self.policy.request_timeout,
        )
        response = yield from self._call(req)
        try:
            text = response.body.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError("Trouter handshake answer is not text") from None
        sid = text.strip().partition(":")[0]
        if not _SESSION_ID.fullmatch(sid):
            raise RemoteProtocolError("Trouter handshake answer holds no usable session id")
        return sid

    def _call(self, req: HttpRequest) -> Flow[HttpResponse]:
        response: HttpResponse = yield req
        if not isinstance(response, HttpResponse):
            raise LocalProtocolError("the driver must answer an HttpRequest with an HttpResponse")
        if response.status == 401:
            raise _Unauthorized(response)
        current = yield from now()
        return check_status(response, _ACCEPTED, method=req.method, url=req.url, now=current)

    def _register(self, conn: _Connection) -> Flow[None]:
        ttl = self.policy.registration_ttl
        registrar = self.hosts.require_trusted(
            self.hosts.url(self.registrar_url), "the Trouter registrar"
        )
        req = build_request(
            "POST",
            registrar,
            auth=(AuthKind.SKYPE_TOKEN, self._token),
            json=registration_body(self.endpoint_id, conn.session.surl, ttl, self.client_version),
            timeout=self.policy.request_timeout,
        )
        yield from self._call(req)
        self.stats.registrations += 1
        current = yield from now()
        conn.renew_at = current + dt.timedelta(
            seconds=max(self.policy.renew_leeway, ttl - self.policy.renew_leeway)
        )

    def _activity(self) -> dict[str, str]:
        cv = "".join(self.rng.choice(_CV_ALPHABET) for _ in range(21)) + self.rng.choice("AgQw")
        return {"state": "active", "cv": f"{cv}.0.1"}

    def _await_connected(self, conn: _Connection) -> Flow[None]:
        start = yield from now()
        limit = start + dt.timedelta(seconds=self.policy.connect_timeout)
        while True:
            current = yield from now()
            left = (limit - current).total_seconds()
            if left <= 0:
                raise RemoteProtocolError("Trouter did not confirm the connection in time")
            text = yield from conn.socket.receive(left)
            if text is None:
                if conn.socket.closed:
                    raise RemoteProtocolError("Trouter closed the socket before confirming it")
                continue
            frame = parse_frame(text)
            if frame.type is FrameType.CONNECT:
                return
            if frame.type is FrameType.HEARTBEAT:
                yield from self._send(conn, Frame(FrameType.HEARTBEAT))
            elif frame.type in (FrameType.ERROR, FrameType.DISCONNECT):
                raise RemoteProtocolError("Trouter refused the socket before confirming it")

    def _serve(
        self, conn: _Connection, target: int | None, deadline: dt.datetime | None
    ) -> Flow[str]:
        """Read and answer frames, run the timers; return why the connection ended."""
        while True:
            if self._done(target):
                return "stopped"
            current = yield from now()
            if deadline is not None and current >= deadline:
                return "stopped"
            if current >= conn.ends:
                return "expired"
            for due in conn.pings.values():
                if current >= due:
                    raise RemoteProtocolError("Trouter did not answer a ping in time")
            if current >= conn.renew_at:
                yield from self._register(conn)
            if current >= conn.next_ping:
                packet = conn.next_packet()
                yield from self._send(conn, event_frame("ping", ack_id=packet))
                self.stats.pings += 1
                conn.pings[packet] = current + dt.timedelta(seconds=self.policy.pong_timeout)
                conn.next_ping = current + dt.timedelta(seconds=self.policy.ping_interval)
            timers = [conn.ends, conn.renew_at, conn.next_ping, *conn.pings.values()]
            if deadline is not None:
                timers.append(deadline)
            wait = max(0.001, (min(timers) - current).total_seconds())
            text = yield from conn.socket.receive(wait)
            if conn.socket.closed:
                # What came with the close cannot be answered: Trouter sends it again or
                # reports it lost, and the catch-up after reconnecting finds it.
                return "closed"
            if text is None:
                continue
            if not (yield from self._on_frame(conn, parse_frame(text))):
                return "closed"

    def _on_frame(self, conn: _Connection, frame: Frame) -> Flow[bool]:
        """Handle one frame; ``False`` when it ends the connection."""
        kind = frame.type
        if kind is FrameType.MESSAGE:
            request = parse_request(frame.data)
            yield from self._send(conn, response_frame(request.id, 200))
            self.stats.responses += 1
            yield from self._hand_over(self._events_of(request))
        elif kind is FrameType.EVENT:
            name, _args = parse_event(frame.data)
            if frame.wants_ack and frame.id is not None:
                reply = ["pong"] if name == "ping" else []
                yield from self._send(conn, ack_frame(frame.id, reply))
                self.stats.acks += 1
            if name == "trouter.message_loss":
                self.stats.losses += 1
                yield from self._register(conn)
                yield from self._catch_up()
        elif kind is FrameType.ACK:
            packet, _ = parse_ack(frame.data) if frame.data else (frame.id or 0, [])
            conn.pings.pop(packet, None)
        elif kind is FrameType.HEARTBEAT:
            yield from self._send(conn, Frame(FrameType.HEARTBEAT))
        elif kind is FrameType.DISCONNECT:
            return False
        elif kind is FrameType.ERROR:
            raise RemoteProtocolError("Trouter sent an error frame")
        return True

    def _events_of(self, request: TrouterRequest) -> list[Event]:
        """The events a pushed request carries (a payload that cannot be read is one
        :class:`UnknownEvent` saying why)."""
        try:
            payload = decode_body(request)
        except RemoteProtocolError as exc:
            return [_unknown(request, None, str(exc))]
        if request.kind == "messaging":
            items = payload if payload.__class__ is list else [payload]
            events: list[Event] = converter.structure(items, list[Event])
            return events
        return [_unknown(request, payload, f"Trouter push to {request.kind or '/'}")]

    def _hand_over(self, events: Sequence[Event]) -> Flow[None]:
        for event in events:
            key = dedupe_key(event)
            if key is not None and key in self._seen:
                self.stats.duplicates += 1
                continue
            self._handler_failed = True
            yield from deliver(event, self.handler)
            self._handler_failed = False
            if key is not None:
                self._seen.add(key)
            self.stats.delivered += 1

    def _catch_up(self) -> Flow[None]:
        if self.catch_up is None:
            return
        events = yield from self.catch_up()
        self.stats.catch_ups += 1
        yield from self._hand_over(events)

    def _send(self, conn: _Connection, frame: Frame) -> Flow[None]:
        yield from conn.socket.send_text(frame.encode(), self.policy.send_timeout)

    def _hang_up(self, conn: _Connection) -> Flow[None]:
        try:
            yield from conn.socket.close(self.policy.send_timeout)
        except (TransportError, RemoteProtocolError) as exc:
            logger.debug("closing the Trouter socket failed: %s", exc)

    def _abandon(self, conn: _Connection | None) -> Flow[None]:
        if conn is not None:
            yield from self._hang_up(conn)

    # -- failures -----------------------------------------------------------------------------

    def _failing(self, failures: int, exc: BaseException) -> int:
        self.stats.failures += 1
        return failed_again(
            failures, exc, limit=self.policy.max_failures, what="Trouter connection"
        )

    def _back_off(self, failures: int, deadline: dt.datetime | None) -> Flow[None]:
        delay = backoff(failures, self.policy.backoff_initial, self.policy.backoff_max, self.rng)
        yield from self._pause(delay, deadline)

    def _pause(self, seconds: float, deadline: dt.datetime | None) -> Flow[None]:
        seconds = yield from until_deadline(seconds, deadline)
        self.stats.slept += seconds
        yield from sleep(seconds)


def _is_client_error(exc: SkypeApiException) -> bool:
    """A 4xx other than 404, 408 and 429 will not get better by reconnecting."""
    status = exc.status
    return status is not None and 400 <= status < 500 and status not in (404, 408, 429)


def _unknown(request: TrouterRequest, payload: Any, reason: str) -> UnknownEvent:
    return UnknownEvent(
        id=None, time=None, resource_type=request.kind or None, raw=payload, reason=reason
    )


def _with_query(url: str, query: Sequence[tuple[str, str]]) -> str:
    return f"{url}?{encode_query(query)}"
