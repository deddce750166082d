"""A small, real HTTP/1.1 server for tests: h11 over sockets, one thread per connection.

It listens on 127.0.0.1 (an ephemeral port), records every request exactly as h11 parsed it
(method, target, header lines in order with their original case, body, and which connection it
came on), and answers from a programmable handler::

    with H11Server(lambda req: Reply(302, [("Location", "/next")])) as server:
        ...  # send requests to server.url + "/path"
        assert server.received[0].method == "GET"

A :class:`Reply` can delay its answer, close the connection afterwards, replace the answer by
raw bytes (a truncated response, garbage, or ``b""`` for an abrupt close), or hang: stay silent
on an open connection once it has sent what it had (``Reply(raw=b"", hang=True)`` is a server
that accepts and never answers; ``raw=`` a head and ``hang=True``, one that stalls mid-answer). :class:`ThrowawayCA`
makes the certificates for an HTTPS server (``H11Server(..., tls=ca.server_context())``).

Without sockets, :func:`wire_bytes`, :func:`serve` and :func:`answer` pass a request or response
between an h11 client and an h11 server in memory, so a test sees what a real peer parses.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import h11

from skyproto import HttpRequest, HttpResponse
from skyproto.emulator.tls import generate

__all__ = [
    "H11Server",
    "Received",
    "Reply",
    "ThrowawayCA",
    "answer",
    "refused_url",
    "replies",
    "serve",
    "wire_bytes",
]

_POLL = 0.02  # how often idle threads look at the stop flag, in seconds
_CHUNK = 65536


@attrs.frozen
class Received:
    """One request as the server received it."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    connection: int  # 0 for the first connection accepted, 1 for the next, ...

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def header(self, name: str) -> str | None:
        values = self.header_all(name)
        return values[0] if values else None


@attrs.frozen
class Reply:
    """What the server answers.

    ``Content-Length`` is added unless ``headers`` frame the body themselves. ``delay`` seconds
    pass before anything is sent. With ``pace`` set, the answer goes out ``piece`` bytes at a
    time, ``pace`` seconds apart. With ``raw`` set, those bytes are sent verbatim instead of a
    response and the connection is closed. ``close`` closes it after a normal response. ``hang``
    keeps the connection open and silent after the answer (or ``raw``) until the server stops.
    """

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    delay: float = 0.0
    close: bool = False
    raw: bytes | None = None
    pace: float = 0.0
    piece: int = 8
    hang: bool = False


Handler = Callable[[Received], Reply]


def replies(*answers: Reply) -> Handler:
    """A handler that gives ``answers`` in order, then repeats the last one."""
    queue = list(answers)
    lock = threading.Lock()

    def handler(_: Received) -> Reply:
        with lock:
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


class H11Server:
    """The server; a context manager, started on entry and stopped (threads joined) on exit."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler: Handler = handler if handler is not None else (lambda _: Reply())
        self.tls = tls
        self.received: list[Received] = []
        #: Exceptions raised while serving (bad requests, handler errors), for tests to inspect.
        self.errors: list[BaseException] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> H11Server:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
                thread = threading.Thread(target=self._serve, args=(sock, index), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, index: int) -> None:
        try:
            sock.settimeout(_POLL)
            if self.tls is not None:
                sock.settimeout(5)
                sock = self.tls.wrap_socket(sock, server_side=True)
                sock.settimeout(_POLL)
            self._converse(sock, index)
        except OSError as exc:  # the peer went away, or refused our certificate
            self._record_error(exc)
        except h11.ProtocolError as exc:
            self._record_error(exc)
        finally:
            sock.close()

    def _converse(self, sock: socket.socket, index: int) -> None:
        conn = h11.Connection(our_role=h11.SERVER)
        while not self._stop.is_set():
            received = self._read_request(conn, sock, index)
            if received is None:
                return
            with self._lock:
                self.received.append(received)
            try:
                reply = self.handler(received)
            except Exception as exc:  # reported to the test through .errors
                self._record_error(exc)
                reply = Reply(500, body=f"handler failed: {type(exc).__name__}".encode())
            if reply.delay and self._stop.wait(reply.delay):
                return
            if reply.raw is not None:
                if self._send(sock, reply.raw, reply) and reply.hang:
                    self._stop.wait()
                return
            if not self._send(sock, _encode(conn, reply), reply):
                return
            if reply.hang:
                self._stop.wait()
                return
            if reply.close or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    def _read_request(
        self, conn: h11.Connection, sock: socket.socket, index: int
    ) -> Received | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = self._recv(sock)
                if data is None:
                    return None
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                return Received(
                    method=head.method.decode("ascii"),
                    target=head.target.decode("latin-1"),
                    headers=tuple(
                        (k.decode("latin-1"), v.decode("latin-1"))
                        for k, v in head.headers.raw_items()
                    ),
                    body=bytes(body),
                    connection=index,
                )
            else:  # ConnectionClosed, or PAUSED after a protocol switch: nothing more to serve
                return None

    def _send(self, sock: socket.socket, data: bytes, reply: Reply) -> bool:
        """Send ``data`` as ``reply`` paces it; ``False`` if the server stopped meanwhile."""
        if reply.pace <= 0:
            sock.sendall(data)
            return True
        for start in range(0, len(data), reply.piece):
            if start and self._stop.wait(reply.pace):
                return False
            sock.sendall(data[start : start + reply.piece])
        return True

    def _recv(self, sock: socket.socket) -> bytes | None:
        while not self._stop.is_set():
            try:
                return sock.recv(_CHUNK)
            except TimeoutError:
                continue
        return None

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(exc)


def _encode(conn: h11.Connection, reply: Reply) -> bytes:
    headers = list(reply.headers)
    names = {name.lower() for name, _ in headers}
    if not names & {"content-length", "transfer-encoding"}:
        headers.append(("Content-Length", str(len(reply.body))))
    if reply.close and "connection" not in names:
        headers.append(("Connection", "close"))
    out = conn.send(h11.Response(status_code=reply.status, headers=headers)) or b""
    if reply.body:
        out += conn.send(h11.Data(data=reply.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


def refused_url() -> str:
    """A URL on a loopback port where, right now, nothing listens."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class ThrowawayCA:
    """A certificate authority made up for one test run, and a server certificate it signed
    (made by the emulator's own generator).

    The server certificate is for ``127.0.0.1`` and ``localhost``. Files are written to
    ``directory`` (give it ``tmp_path``): ``ca_path`` is the CA in PEM, for clients that want a
    path (``requests``' ``verify``).
    """

    def __init__(self, directory: Path) -> None:
        material = generate(dt.datetime.now(dt.UTC), ("127.0.0.1", "localhost"))
        self.ca_pem = material.ca_pem
        self.ca_path = directory / "ca.pem"
        self.ca_path.write_bytes(self.ca_pem)
        self._chain_path = directory / "server.pem"
        self._chain_path.write_bytes(material.key_pem + material.cert_chain_pem)

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting the signed certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._chain_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts this CA (and only it)."""
        return ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))


# -- in memory: an h11 client and server pair, no sockets ----------------------------------------


def _message_body(conn: h11.Connection) -> bytes:
    """The body events ``conn`` has buffered, up to the end of the message."""
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.EndOfMessage):
            return body
        if not isinstance(event, h11.Data):
            raise AssertionError(f"unexpected event {event!r}")
        body += event.data


def wire_bytes(request: HttpRequest) -> bytes:
    """The bytes an h11 client puts on the wire for ``request``."""
    client = h11.Connection(h11.CLIENT)
    head, data = request.to_h11()
    out = client.send(head) or b""
    if data is not None:
        out += client.send(data) or b""
    out += client.send(h11.EndOfMessage()) or b""
    return out


def serve(raw: bytes, *, scheme: str = "http") -> HttpRequest:
    """What an h11 server makes of ``raw``, rebuilt with ``HttpRequest.from_h11``."""
    server = h11.Connection(h11.SERVER)
    server.receive_data(raw)
    head = server.next_event()
    assert isinstance(head, h11.Request)
    return HttpRequest.from_h11(head, _message_body(server), scheme=scheme)


def answer(response: HttpResponse) -> HttpResponse:
    """Send ``response`` from an h11 server to an h11 client, in answer to a ``GET``; return what
    the client reads."""
    client, server = h11.Connection(h11.CLIENT), h11.Connection(h11.SERVER)
    server.receive_data(client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")])))
    server.receive_data(client.send(h11.EndOfMessage()) or b"")
    assert isinstance(server.next_event(), h11.Request)
    assert isinstance(server.next_event(), h11.EndOfMessage)
    head, data = response.to_h11()
    raw = server.send(head) or b""
    if data is not None:
        raw += server.send(data) or b""
    raw += server.send(h11.EndOfMessage()) or b""
    client.receive_data(raw)
    got = client.next_event()
    assert isinstance(got, h11.Response)
    return HttpResponse.from_h11(got, _message_body(client), url=response.url)
