"""The loopback server around :class:`~skyproto.emulator.core.Emulator`, and ``serve()``.

This module and the pytest plugin are the emulator's edge: sockets, threads, the clock, the
temporary directory holding the TLS certificates, signals and standard output live here and
nowhere else in the package.

Theory of operation
-------------------
* **Listeners.** Plain mode binds one port; every real host is a path prefix under it
  (``http://127.0.0.1:PORT/login.live.com``). TLS mode binds one port per real host, so each
  base is exactly ``https://127.0.0.1:<port>`` (the reference client parses registration
  ``Location`` values as ``https://<host>/v1/...``). Only loopback addresses are accepted. Each
  listens with a backlog of :data:`LISTEN_BACKLOG` (capped by the system's ``somaxconn``), so a
  burst of thousands of connects is queued, not reset.
* **One event loop.** Every connection is served by one asyncio event loop running in one
  background thread: a connection is a task reading with an h11 server connection, keep-alive
  (``start_next_cycle``), so thousands of idle long polls cost a task and a few buffers each,
  not a thread. The task owns the connection's stream reader and writer, which is also what a
  protocol upgrade (a websocket) would take over after its ``101`` answer.
* **One lock, one thread for the core.** The pure emulator is not thread-safe. Only the loop
  thread calls into it, under one :class:`threading.Condition` (:attr:`EmulatorServer.lock`)
  that a test may hold to look at the emulator. :meth:`EmulatorServer.queue_event` and the
  :attr:`EmulatorServer.scenario` setter, called from other threads, hop onto the loop thread
  (so a caller must not hold :attr:`~EmulatorServer.lock` while calling them).
* **Held polls.** A long poll with nothing to deliver waits, without the lock, on a future that
  every change which may deliver something resolves (a queued event, a new scenario, the
  server stopping), then checks again; it is answered when there is something to deliver or
  when the scenario's ``hold`` ends.
* **Shutdown.** :meth:`EmulatorServer.stop` hops onto the loop: it stops accepting, answers
  every held poll at once (with ``Connection: close``), drops idle connections, lets busy ones
  finish their response for up to a few seconds, then ends the loop and joins its thread.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import functools
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import types
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import h11

from .._http import HttpRequest, HttpResponse
from .._redact import describe
from ..errors import LocalProtocolError
from ..hosts import Hosts
from .core import LOG_SIZE, Emulator, check_log_size
from .profile import (
    DEFAULT_ACCOUNT,
    SERVED_HOSTS,
    Account,
    check_accounts,
    hosts_for,
    numbered_accounts,
    profile,
)
from .scenario import ROUTES, Scenario, parse_scenario
from .trouter import TrouterPeer

__all__ = ["EmulatorServer", "LoggedRequest", "serve"]

#: Largest request body accepted (bytes); larger ones get 413.
MAX_REQUEST_BODY = 4 * 1024 * 1024
#: Connections each listener lets wait to be accepted (capped by ``somaxconn``).
LISTEN_BACKLOG = 4096
_IDLE_LIMIT = 120.0  # seconds a keep-alive connection may stay idle
_IO_TIMEOUT = 10.0  # seconds for the TLS handshake and for writing one response
_PUMP_TICK = 0.05  # seconds a websocket pump waits for the client before asking the peer again
_JOIN_TIMEOUT = 5.0
_SOMAXCONN = "/proc/sys/net/core/somaxconn"

_T = TypeVar("_T")


def listen_backlog() -> int:
    """:data:`LISTEN_BACKLOG`, or the system's ``somaxconn`` when that is lower."""
    try:
        with open(_SOMAXCONN, encoding="ascii") as fh:
            cap = int(fh.read().strip())
    except (OSError, ValueError):
        cap = LISTEN_BACKLOG
    return max(1, min(LISTEN_BACKLOG, cap))


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


class _Connection:
    """One connection's task, and whether it is waiting for the next request's bytes."""

    __slots__ = ("idle", "task")

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task
        self.idle = False


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
    ``log_size`` entries are kept. ``account`` is the main account and ``accounts`` more of them
    (see :class:`~skyproto.emulator.Emulator`); a login name shared by two raises
    LocalProtocolError here.
    """

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        account: Account | None = None,
        accounts: Sequence[Account] = (),
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
        self._accounts = check_accounts(self._account, accounts)[1:]
        self._seed = seed
        self._meetings = meetings
        self._clock = clock if clock is not None else _utc_now
        self._on_request = on_request
        self._scenario = scenario if scenario is not None else Scenario()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._listeners: list[_Listener] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._wake: asyncio.Future[None] | None = None  # resolved to wake held polls
        self._stopped: asyncio.Future[None] | None = None  # resolved to stop the loop
        self._connections: set[_Connection] = set()
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
                accounts=self._accounts,
                seed=self._seed,
                meetings=self._meetings,
                log_size=self._log_size,
            )
            self._loop = asyncio.new_event_loop()
            ready: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._thread = threading.Thread(
                target=self._run_loop, args=(ready,), name="skyproto-emulator", daemon=True
            )
            self._state = "running"
            self._thread.start()
            ready.result()
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
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop may have closed already
                loop.call_soon_threadsafe(self._stop_loop)
            if thread is not threading.current_thread():
                thread.join(3 * _JOIN_TIMEOUT)
        elif loop is not None and not loop.is_running():
            loop.close()
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.sock.close()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
        self._state = "stopped"

    def _stop_loop(self) -> None:
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

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
        """The main account."""
        return self._account

    @property
    def accounts(self) -> tuple[Account, ...]:
        """The accounts beside the main one, in the order given."""
        return self._accounts

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
        """``{"hosts": {real host: base}, "ca_bundle": path or None, "account": {...},
        "accounts": N}``: N is how many :func:`~skyproto.emulator.profile.numbered_accounts`
        the other accounts are (0 when there are none)."""
        return profile(self.hosts, self.ca_bundle, self._account, self._accounts)

    def profile_json(self) -> str:
        """:meth:`profile` as one line of JSON, as ``skyproto emulator`` prints it."""
        return json.dumps(self.profile())

    def url(self, real_url: str) -> str:
        """Map a real service URL onto this server."""
        return self.hosts.url(real_url)

    @property
    def emulator(self) -> Emulator:
        """The pure emulator inside. Hold :attr:`lock` while touching it from a test (and do not
        call :meth:`queue_event` or set :attr:`scenario` meanwhile)."""
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

        def install() -> None:
            with self._cond:
                self._scenario = value
                if self._core is not None:
                    self._core.set_scenario(value)
            self._notify()

        self._call_in_loop(install)

    def queue_event(self, event: str | Mapping[str, Any]) -> int:
        """Queue an event (a kind name or a raw envelope) and wake held polls.

        Returns how many subscribed endpoints will receive it (0: it waits for the next
        subscription).
        """
        core = self._running_core()

        def queue() -> int:
            with self._cond:
                count = core.queue_event(event, self._clock())
            self._notify()
            return count

        return self._call_in_loop(queue)

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
            sock.listen(listen_backlog())
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

    # -- internals: the event loop ----------------------------------------------------------

    def _run_loop(self, ready: concurrent.futures.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main(ready))
        except BaseException as exc:  # pragma: no cover - a bug in the loop itself
            if not ready.done():
                ready.set_exception(exc)
            raise
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        self._stopped = loop.create_future()
        servers: list[asyncio.Server] = []
        try:
            for listener in self._listeners:
                servers.append(
                    await asyncio.start_server(
                        functools.partial(self._connection, listener=listener),
                        sock=listener.sock,
                        ssl=self._ssl_context,
                        ssl_handshake_timeout=_IO_TIMEOUT if self._ssl_context else None,
                        backlog=listen_backlog(),
                    )
                )
        except BaseException as exc:
            for server in servers:
                server.close()
            ready.set_exception(exc)
            return
        ready.set_result(None)
        await self._stopped
        # Stop accepting, answer the held polls now (with Connection: close), drop idle
        # connections, and give the busy ones a moment to finish their response.
        for server in servers:
            server.close()
        self._notify()
        for conn in list(self._connections):
            if conn.idle:
                conn.task.cancel()
        tasks = {conn.task for conn in self._connections}
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=_JOIN_TIMEOUT)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=_JOIN_TIMEOUT)
        for server in servers:
            await server.wait_closed()

    def _call_in_loop(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` on the loop thread (or right here when there is no loop to hop to)."""
        loop = self._loop
        thread = self._thread
        if (
            loop is None
            or thread is None
            or not thread.is_alive()
            or thread is threading.current_thread()
            or self._wake is None
        ):
            return function()
        result: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            if result.set_running_or_notify_cancel():
                try:
                    result.set_result(function())
                except BaseException as exc:
                    result.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop closed meanwhile
            return function()
        return result.result()

    def _notify(self) -> None:
        """Wake every held poll (on the loop thread): each checks again whether to answer."""
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)
            self._wake = wake.get_loop().create_future()

    # -- internals: connections --------------------------------------------------------------

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, listener: _Listener
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = _Connection(task)
        self._connections.add(conn)
        try:
            await self._exchange_loop(reader, writer, conn, listener)
        except (OSError, TimeoutError, h11.ProtocolError, asyncio.CancelledError):
            pass  # the peer went away, stalled or spoke nonsense, or the server is stopping
        except Exception as exc:  # a bug here must show, not kill the server
            with self._cond:
                self._errors.append(exc)
        finally:
            self._connections.discard(conn)
            writer.close()

    async def _exchange_loop(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: _Connection,
        listener: _Listener,
    ) -> None:
        connection = h11.Connection(h11.SERVER)
        while not self._stopping.is_set():
            received = await self._read_request(reader, writer, connection, conn)
            if received is None:
                return
            head, body = received
            if TrouterPeer.is_upgrade(head.target.decode("latin-1"), head.headers):
                await self._pump_websocket(reader, writer, connection, head)
                return
            response = await self._answer(head, body, listener)
            await self._write_response(writer, connection, response)
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    async def _read_request(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: h11.Connection,
        conn: _Connection,
    ) -> tuple[h11.Request, bytes] | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as exc:
                await self._refuse(writer, connection, exc.error_status_hint)
                return None
            if event is h11.NEED_DATA:
                if self._stopping.is_set():
                    return None
                conn.idle = True
                try:
                    async with asyncio.timeout(_IDLE_LIMIT):
                        data = await reader.read(65536)
                except TimeoutError:
                    return None
                finally:
                    conn.idle = False
                connection.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
                if connection.they_are_waiting_for_100_continue:
                    await self._send(
                        writer,
                        connection.send(h11.InformationalResponse(status_code=100, headers=[])),
                    )
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_REQUEST_BODY:
                    await self._refuse(writer, connection, 413)
                    return None
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return head, bytes(body)
            else:  # ConnectionClosed or PAUSED: nothing more to read
                return None

    async def _refuse(
        self, writer: asyncio.StreamWriter, connection: h11.Connection, status: int
    ) -> None:
        if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        with contextlib.suppress(h11.ProtocolError, OSError, TimeoutError):
            head = h11.Response(
                status_code=status, headers=[("Content-Length", "0"), ("Connection", "close")]
            )
            await self._send(writer, connection.send(head) + connection.send(h11.EndOfMessage()))

    async def _send(self, writer: asyncio.StreamWriter, data: bytes | None) -> None:
        if data:
            writer.write(data)
            async with asyncio.timeout(_IO_TIMEOUT):
                await writer.drain()

    async def _write_response(
        self, writer: asyncio.StreamWriter, connection: h11.Connection, response: HttpResponse
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
        await self._send(writer, out)

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

    async def _pump_websocket(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: h11.Connection,
        head: h11.Request,
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
                    await self._send(writer, out)
                    continue
                try:
                    # The peer's pushes and timers wait at most this long for a turn.
                    async with asyncio.timeout(_PUMP_TICK):
                        data = await reader.read(65536)
                except TimeoutError:
                    continue
                with self._cond:
                    if not data:
                        return
                    self.trouter.feed(stream, data, self._clock())
        finally:
            with self._cond:
                self.trouter.close(stream, self._clock())

    async def _answer(self, head: h11.Request, body: bytes, listener: _Listener) -> HttpResponse:
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
            hold = self._scenario.hold
        if self._on_request is not None:
            try:
                self._on_request(entry)
            except Exception as exc:  # a broken hook must not take the server down
                with self._cond:
                    self._errors.append(exc)
        loop = asyncio.get_running_loop()
        if delay > 0 and self._stopped is not None:
            await asyncio.wait([self._stopped], timeout=delay)
        deadline = loop.time() + hold
        while True:
            with self._cond:
                if self._stopping.is_set() or not core.poll_would_wait(request, self._clock()):
                    break
            remaining = deadline - loop.time()
            if remaining <= 0 or self._wake is None:
                break
            await asyncio.wait([self._wake], timeout=remaining)
        with self._cond:
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
            "ca_bundle, account, accounts) and serves until SIGINT or SIGTERM. "
            f"Default account: user {account.user} (or {account.skype_name}), "
            f"password {account.password}. With --accounts N it also serves accounts number "
            "0 to N-1: user{i}@example.com (or live:user{i}), password user{i}-emulator-pass."
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
        "--accounts",
        type=int,
        default=0,
        metavar="N",
        help="also serve N numbered accounts (user0@example.com ... ; default 0)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log each request (redacted) to stderr"
    )
    return parser


def _log_request(entry: LoggedRequest) -> None:
    first_line = describe(entry.request).splitlines()[0]
    print(f"{entry.route or '-'}: {first_line}", file=sys.stderr, flush=True)


def serve(argv: list[str] | None = None) -> int:
    """``skyproto emulator [--host H] [--port N] [--scenario K=V ...] [--tls] [--accounts N]``.

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
            accounts=numbered_accounts(args.accounts),
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
