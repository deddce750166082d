"""The loopback server around :class:`~skyproto.emulator.core.Emulator`, and ``serve()``.

This module and the pytest plugin are the emulator's edge: sockets, threads, the clock, the
temporary directory holding the TLS certificates, signals and standard output live here and
nowhere else in the package.

Theory of operation
-------------------
* **Listeners.** Plain mode binds one port; every real host is a path prefix under it
  (``http://127.0.0.1:PORT/login.live.com``). TLS mode binds one port per real host, so each
  base is exactly ``https://127.0.0.1:<port>`` (the reference client parses registration
  ``Location`` values as ``https://<host>/v1/...``). Only loopback addresses are accepted.
* **Threads.** One acceptor thread waits on every listener with a selector (and a wake-up
  socket for shutdown); each accepted connection gets its own thread running an h11 server
  connection with keep-alive (``start_next_cycle``).
* **One lock.** The pure emulator is not thread-safe, so every call into it happens under one
  :class:`threading.Condition`. A long poll with nothing to deliver waits on that condition
  (which releases the lock) until :meth:`EmulatorServer.queue_event` notifies it, the
  scenario's ``hold`` ends, or the server stops.
* **Shutdown.** :meth:`EmulatorServer.stop` sets a flag, wakes the acceptor and every held poll,
  closes the listeners and joins every thread. Connection threads read with a short socket
  timeout so they notice the flag within a fraction of a second; a response being written is
  finished first (with ``Connection: close``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import json
import os
import selectors
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import h11

from .._http import HttpRequest, HttpResponse
from .._redact import describe
from ..errors import LocalProtocolError
from ..hosts import Hosts
from .core import LOG_SIZE, Emulator, check_log_size
from .profile import DEFAULT_ACCOUNT, SERVED_HOSTS, Account, hosts_for, profile
from .scenario import ROUTES, Scenario, parse_scenario
from .trouter import TrouterPeer

__all__ = ["EmulatorServer", "LoggedRequest", "serve"]

#: Largest request body accepted (bytes); larger ones get 413.
MAX_REQUEST_BODY = 4 * 1024 * 1024
_READ_TICK = 0.2  # seconds between checks of the stop flag while a connection is idle
_IDLE_LIMIT = 120.0  # seconds a keep-alive connection may stay idle
_IO_TIMEOUT = 10.0  # seconds for the TLS handshake and for writing one response
_JOIN_TIMEOUT = 5.0


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@attrs.frozen
class LoggedRequest:
    """A request the server received, the route it took (``None`` if unknown) and when."""

    route: str | None
    request: HttpRequest
    received: dt.datetime


@attrs.frozen
class _Listener:
    sock: socket.socket
    scheme: str
    authority: str
    real_host: str | None  # TLS mode: the host this port serves


def _loopback(host: str) -> str:
    """``host`` as a loopback IP address text; anything else is refused."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise LocalProtocolError(
            f"the emulator binds loopback addresses only (127.0.0.1, ::1), not {host!r}"
        )
    return str(address)


class EmulatorServer:
    """The emulator on real sockets. Use as a context manager, or call :meth:`start`/:meth:`stop`.

    ``scenario`` may be replaced at any time through :attr:`scenario`. ``port`` 0 picks free
    ports; in TLS mode a non-zero ``port`` is the first of consecutive ports, one per host.
    ``clock`` returns the aware UTC time the emulator sees (tests may move it forward).
    ``log_size`` bounds :attr:`requests` (and the emulator's ``acknowledged``): only the latest
    ``log_size`` entries are kept.
    """

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        account: Account | None = None,
        seed: int | None = None,
        meetings: Mapping[str, str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        on_request: Callable[[LoggedRequest], None] | None = None,
        log_size: int = LOG_SIZE,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise LocalProtocolError(f"port must be between 0 and 65535, not {port!r}")
        if scenario is not None and not isinstance(scenario, Scenario):
            raise LocalProtocolError(f"expected a Scenario, not {type(scenario).__name__}")
        self._address = _loopback(host)
        self._port = port
        self._tls = tls
        self._account = account if account is not None else DEFAULT_ACCOUNT
        self._seed = seed
        self._meetings = meetings
        self._clock = clock if clock is not None else _utc_now
        self._on_request = on_request
        self._scenario = scenario if scenario is not None else Scenario()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._listeners: list[_Listener] = []
        self._threads_lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._acceptor: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._tls_dir: str | None = None
        self._core: Emulator | None = None
        self._log_size = check_log_size(log_size)
        self._log: deque[LoggedRequest] = deque(maxlen=self._log_size)
        #: The Trouter peer (docs/trouter.md); cue it while holding :attr:`lock`.
        self.trouter = TrouterPeer(owner=lambda: self._core)
        self._errors: list[BaseException] = []
        self._state = "new"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Bind the listeners and start serving; returns ``self``."""
        if self._state != "new":
            raise LocalProtocolError(f"this server cannot start: it is {self._state}")
        try:
            self._bind()
            bases = self._bases()
            if self._tls:
                self._set_up_tls()
            self._core = Emulator(
                hosts=hosts_for(bases),
                scenario=self._scenario,
                account=self._account,
                seed=self._seed,
                meetings=self._meetings,
                log_size=self._log_size,
            )
            self._wake_r, self._wake_w = socket.socketpair()
            self._acceptor = threading.Thread(
                target=self._accept_loop, name="skyproto-emulator-accept", daemon=True
            )
            self._state = "running"
            self._acceptor.start()
        except BaseException:
            self._state = "running"
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving: close listeners, wake held polls, join every thread. Idempotent."""
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopping"
        self._stopping.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        with self._cond:
            self._cond.notify_all()
        if self._acceptor is not None and self._acceptor is not threading.current_thread():
            self._acceptor.join(_JOIN_TIMEOUT)
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.sock.close()
        deadline = time.monotonic() + _JOIN_TIMEOUT
        while True:
            with self._threads_lock:
                threads = [t for t in self._threads if t is not threading.current_thread()]
            if not threads or time.monotonic() >= deadline:
                break
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
        self._state = "stopped"

    def __enter__(self) -> EmulatorServer:
        if self._state == "new":
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._state == "running"

    # -- what clients need -------------------------------------------------------------------

    @property
    def hosts(self) -> Hosts:
        """The :class:`~skyproto.Hosts` profile pointing every served host at this server."""
        return self._running_core().hosts

    @property
    def teams_hosts(self) -> Hosts:
        """The same bases as :attr:`hosts`, as a Teams Free profile (:meth:`Hosts.teams`)."""
        return Hosts.teams(self.hosts.overrides)

    @property
    def account(self) -> Account:
        return self._account

    @property
    def ca_bundle(self) -> str | None:
        """Path of the PEM file of the CA clients must trust in TLS mode, else ``None``."""
        if self._tls_dir is None:
            return None
        return os.path.join(self._tls_dir, "ca.pem")

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this server's CA (TLS mode only)."""
        if self.ca_bundle is None:
            raise LocalProtocolError("this server does not use TLS")
        return ssl.create_default_context(cafile=self.ca_bundle)

    def profile(self) -> dict[str, Any]:
        """``{"hosts": {real host: base}, "ca_bundle": path or None, "account": {...}}``."""
        return profile(self.hosts, self.ca_bundle, self._account)

    def profile_json(self) -> str:
        """:meth:`profile` as one line of JSON, as ``skyproto emulator`` prints it."""
        return json.dumps(self.profile())

    def url(self, real_url: str) -> str:
        """Map a real service URL onto this server."""
        return self.hosts.url(real_url)

    @property
    def emulator(self) -> Emulator:
        """The pure emulator inside. Hold :attr:`lock` while touching it from a test."""
        return self._running_core()

    @property
    def lock(self) -> threading.Condition:
        """The lock every request holds while the emulator answers it."""
        return self._cond

    # -- scenario, events, log ---------------------------------------------------------------

    @property
    def scenario(self) -> Scenario:
        with self._cond:
            return self._scenario

    @scenario.setter
    def scenario(self, value: Scenario) -> None:
        if not isinstance(value, Scenario):
            raise LocalProtocolError(f"expected a Scenario, not {type(value).__name__}")
        with self._cond:
            self._scenario = value
            if self._core is not None:
                self._core.set_scenario(value)
            self._cond.notify_all()

    def queue_event(self, event: str | Mapping[str, Any]) -> int:
        """Queue an event (a kind name or a raw envelope) and wake held polls.

        Returns how many subscribed endpoints will receive it (0: it waits for the next
        subscription).
        """
        with self._cond:
            count = self._running_core().queue_event(event, self._clock())
            self._cond.notify_all()
        return count

    @property
    def log_size(self) -> int:
        """How many requests :attr:`requests` keeps at most."""
        return self._log_size

    @property
    def requests(self) -> list[LoggedRequest]:
        """The requests received so far, in order (the latest ``log_size`` of them)."""
        with self._cond:
            return list(self._log)

    def routes(self) -> list[str | None]:
        """The route of each request in :attr:`requests`, in order."""
        with self._cond:
            return [entry.route for entry in self._log]

    def clear_requests(self) -> None:
        with self._cond:
            self._log.clear()

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised while answering (each also answered 500)."""
        with self._cond:
            return list(self._errors)

    # -- internals: set-up -------------------------------------------------------------------

    def _running_core(self) -> Emulator:
        if self._core is None:
            raise LocalProtocolError("the emulator server has not been started")
        return self._core

    def _listen(self, port: int, real_host: str | None) -> None:
        family = socket.AF_INET6 if ":" in self._address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._address, port))
            sock.listen(64)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        bound = sock.getsockname()[1]
        host = f"[{self._address}]" if family == socket.AF_INET6 else self._address
        scheme = "https" if self._tls else "http"
        self._listeners.append(_Listener(sock, scheme, f"{host}:{bound}", real_host))

    def _bind(self) -> None:
        if not self._tls:
            self._listen(self._port, None)
            return
        for index, real_host in enumerate(SERVED_HOSTS):
            port = self._port + index if self._port else 0
            if port > 65535:
                raise LocalProtocolError("not enough ports above the one given for TLS mode")
            self._listen(port, real_host)

    def _bases(self) -> dict[str, str]:
        if not self._tls:
            origin = f"http://{self._listeners[0].authority}"
            return {host: f"{origin}/{host}" for host in SERVED_HOSTS}
        return {
            listener.real_host: f"https://{listener.authority}"
            for listener in self._listeners
            if listener.real_host is not None
        }

    def _set_up_tls(self) -> None:
        from .tls import generate

        material = generate(self._clock())
        self._tls_dir = tempfile.mkdtemp(prefix="skyproto-emulator-")
        paths = {}
        for name, data in (
            ("ca.pem", material.ca_pem),
            ("cert.pem", material.cert_chain_pem),
            ("key.pem", material.key_pem),
        ):
            path = os.path.join(self._tls_dir, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            paths[name] = path
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(paths["cert.pem"], paths["key.pem"])
        self._ssl_context = context

    # -- internals: connections --------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            for listener in self._listeners:
                selector.register(listener.sock, selectors.EVENT_READ, listener)
            while not self._stopping.is_set():
                for key, _mask in selector.select():
                    listener = key.data
                    if listener is None or self._stopping.is_set():
                        return
                    try:
                        conn, _peer = listener.sock.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        if self._stopping.is_set():
                            return
                        continue
                    self._spawn(conn, listener)

    def _spawn(self, conn: socket.socket, listener: _Listener) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(conn, listener),
            name="skyproto-emulator-conn",
            daemon=True,
        )
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    def _serve_connection(self, conn: socket.socket, listener: _Listener) -> None:
        sock: socket.socket = conn
        try:
            conn.setblocking(True)
            if self._ssl_context is not None:
                sock = self._ssl_context.wrap_socket(
                    conn, server_side=True, do_handshake_on_connect=False
                )
                sock.settimeout(_IO_TIMEOUT)
                sock.do_handshake()
            self._exchange_loop(sock, listener)
        except (OSError, h11.ProtocolError):
            pass  # the peer went away or spoke nonsense; nothing to answer
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._threads_lock:
                self._threads.discard(threading.current_thread())

    def _exchange_loop(self, sock: socket.socket, listener: _Listener) -> None:
        connection = h11.Connection(h11.SERVER)
        while not self._stopping.is_set():
            received = self._read_request(sock, connection)
            if received is None:
                return
            head, body = received
            if TrouterPeer.is_upgrade(head.target.decode("latin-1"), head.headers):
                self._pump_websocket(sock, connection, head)
                return
            response = self._answer(head, body, listener)
            self._write_response(sock, connection, response)
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    def _read_request(
        self, sock: socket.socket, connection: h11.Connection
    ) -> tuple[h11.Request, bytes] | None:
        head: h11.Request | None = None
        body = bytearray()
        idle = 0.0
        sock.settimeout(_READ_TICK)
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(sock, connection, exc.error_status_hint)
                return None
            if event is h11.NEED_DATA:
                if self._stopping.is_set():
                    return None
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    idle += _READ_TICK
                    if idle >= _IDLE_LIMIT:
                        return None
                    continue
                idle = 0.0
                connection.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
                if connection.they_are_waiting_for_100_continue:
                    self._send(
                        sock,
                        connection.send(h11.InformationalResponse(status_code=100, headers=[])),
                    )
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_REQUEST_BODY:
                    self._refuse(sock, connection, 413)
                    return None
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return head, bytes(body)
            else:  # ConnectionClosed or PAUSED: nothing more to read
                return None

    def _refuse(self, sock: socket.socket, connection: h11.Connection, status: int) -> None:
        if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        with contextlib.suppress(h11.ProtocolError, OSError):
            head = h11.Response(
                status_code=status, headers=[("Content-Length", "0"), ("Connection", "close")]
            )
            self._send(sock, connection.send(head) + connection.send(h11.EndOfMessage()))

    def _send(self, sock: socket.socket, data: bytes | None) -> None:
        if data:
            sock.settimeout(_IO_TIMEOUT)
            sock.sendall(data)

    def _write_response(
        self, sock: socket.socket, connection: h11.Connection, response: HttpResponse
    ) -> None:
        head, data = response.to_h11()
        if self._stopping.is_set():
            head = h11.Response(
                status_code=head.status_code, headers=[*head.headers, (b"Connection", b"close")]
            )
        out = connection.send(head) or b""
        if data is not None:
            out += connection.send(data) or b""
        out += connection.send(h11.EndOfMessage()) or b""
        self._send(sock, out)

    def _request_value(self, head: h11.Request, body: bytes, listener: _Listener) -> HttpRequest:
        target = head.target.decode("latin-1")
        if not target.startswith("/"):
            # absolute-form (or *): keep only the path and query
            after_scheme = target.split("://", 1)[-1]
            slash = after_scheme.find("/")
            target = after_scheme[slash:] if slash >= 0 else "/"
        # The URL names the listener, not the Host header: the bases are keyed by the address
        # the server bound, and a client that connected through "localhost" is still served.
        url = f"{listener.scheme}://{listener.authority}{target}"
        return attrs.evolve(HttpRequest.from_h11(head, body), url=url)

    def _pump_websocket(
        self, sock: socket.socket, connection: h11.Connection, head: h11.Request
    ) -> None:
        """Hand a websocket upgrade to the Trouter peer and carry bytes both ways."""
        upgrade = h11.Connection(h11.CLIENT).send(head) or b""
        with self._cond:
            stream = self.trouter.connect("", self._clock())
            self.trouter.feed(stream, upgrade + connection.trailing_data[0], self._clock())
        try:
            while not self._stopping.is_set():
                with self._cond:
                    out = self.trouter.read(stream, 65536, self._clock())
                if out == b"":
                    return
                if isinstance(out, bytes):
                    self._send(sock, out)
                    continue
                try:
                    sock.settimeout(_READ_TICK / 4)  # the peer's pushes wait at most this long
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                with self._cond:
                    if not data:
                        return
                    self.trouter.feed(stream, data, self._clock())
        finally:
            with self._cond:
                self.trouter.close(stream, self._clock())

    def _answer(self, head: h11.Request, body: bytes, listener: _Listener) -> HttpResponse:
        request = self._request_value(head, body, listener)
        core = self._running_core()
        if TrouterPeer.serves(request.path):
            with self._cond:
                self._log.append(LoggedRequest(None, request, self._clock()))
                return self.trouter.handle(request, self._clock())
        with self._cond:
            route = core.route(request)
            entry = LoggedRequest(route, request, self._clock())
            self._log.append(entry)
            delay = self._scenario.delays(route)
        if self._on_request is not None:
            try:
                self._on_request(entry)
            except Exception as exc:  # a broken hook must not take the server down
                with self._cond:
                    self._errors.append(exc)
        if delay > 0:
            self._stopping.wait(delay)
        with self._cond:
            deadline = time.monotonic() + self._scenario.hold
            while not self._stopping.is_set() and core.poll_would_wait(request, self._clock()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            try:
                return core.handle(request, self._clock())
            except Exception as exc:
                self._errors.append(exc)
                return HttpResponse.build(
                    500,
                    json={"errorCode": 500, "message": f"emulator error: {type(exc).__name__}"},
                )


# -- the ``skyproto emulator`` verb -------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    account = DEFAULT_ACCOUNT
    parser = argparse.ArgumentParser(
        prog="skyproto emulator",
        description=(
            "Run the loopback Skype emulator. Prints one line of JSON (the profile: hosts, "
            "ca_bundle, account) and serves until SIGINT or SIGTERM. "
            f"Default account: user {account.user} (or {account.skype_name}), "
            f"password {account.password}."
        ),
        epilog=(
            "Scenario keys: host_redirect, endless_redirect, foreign_location, "
            "foreign_sync_state, wrong_password, "
            "two_factor, consent, fault=ROUTE:STATUS[:TIMES[:RETRY_AFTER]], malformed=ROUTES, "
            "delay=SECONDS, delay_routes=ROUTES, events=KINDS|all, event_count=N, "
            "events_per_poll=N, hold=SECONDS, token_lifetime=S, registration_lifetime=S, "
            "page_size=N. Teams Free: device_interval=S, device_slow_down=N, device_pending=N, "
            "device_outcome=approve|declined|expired, refresh_dead, "
            "refresh_refusal=invalid_grant|interaction_required, authz_shape=personal|work, "
            "chat_page_size=N, chat_quota=N, quota_code=429|803 (docs/teams.md). Trouter: "
            "trouter_script=STEPS (in order, of message, typing, presence, call, again, missed, "
            "drop, loss), "
            "trouter_foreign=socketio|surl, trouter_gzip (docs/trouter.md). "
            f"Routes: {', '.join(ROUTES)}. See docs/emulator.md."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port (0: pick a free one)")
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a scenario knob; repeat for several",
    )
    parser.add_argument(
        "--tls", action="store_true", help="serve HTTPS, one port per host, with a fresh CA"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for tokens and ids")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log each request (redacted) to stderr"
    )
    return parser


def _log_request(entry: LoggedRequest) -> None:
    first_line = describe(entry.request).splitlines()[0]
    print(f"{entry.route or '-'}: {first_line}", file=sys.stderr, flush=True)


def serve(argv: list[str] | None = None) -> int:
    """``skyproto emulator [--host H] [--port N] [--scenario K=V ...] [--tls]``.

    Prints the profile as one JSON line, then serves until SIGINT or SIGTERM; returns 0 after
    a clean shutdown, 2 for bad arguments and 1 when the server cannot start.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        scenario = parse_scenario(args.scenario)
        server = EmulatorServer(
            scenario,
            host=args.host,
            port=args.port,
            tls=args.tls,
            seed=args.seed,
            on_request=_log_request if args.verbose else None,
        )
    except LocalProtocolError as exc:
        print(f"skyproto emulator: error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        try:
            server.start()
        except (OSError, ImportError, LocalProtocolError) as exc:
            print(f"skyproto emulator: cannot start: {exc}", file=sys.stderr)
            return 1
        try:
            print(server.profile_json(), flush=True)
            while not stop.wait(0.2):
                pass
        finally:
            server.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
