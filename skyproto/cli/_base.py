"""The base of the command line: what every verb gets and how it runs flows.

A verb is a :class:`Verb`: a name, a help line, a function that adds its arguments to its own
sub-parser, and a function ``run(args, ctx) -> int`` that does the work with a :class:`CliContext`.
``ctx.run(flow)`` builds the chosen transport and drives a flow with it, so a verb is usually a few
lines around one flow. A verb that runs several flows opens ``with ctx.runner() as runner:`` and
calls ``runner.run(flow)`` (and ``runner.pages(listing)``) inside it: one transport for all of them,
closed at the end (for ``httpx-async``, one event loop too).

The verbs' modules import this one; :mod:`skyproto.cli._main` imports the verbs; nothing here
imports a verb. The drivers come from :mod:`skyproto.transports`; a transport's module is imported
when a command builds that transport, since its HTTP client is an optional extra.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import stat
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

import attrs

from .._flow import Flow
from .._http import HttpRequest, HttpResponse
from .._redact import describe
from ..calls import display_url
from ..errors import LocalProtocolError
from ..hosts import Hosts
from ..transports import (
    AsyncTransport,
    SyncTransport,
    aiterate_pages,
    iterate_pages,
    run_async,
    run_sync,
)

if TYPE_CHECKING:
    import httpx

    from ..session import Listing
    from ..transports.httpx import AsyncHttpxTransport, HttpxTransport
    from ..transports.requests import RequestsTransport
    from ..transports.stdlib import StdlibTransport

__all__ = [
    "DEFAULT_TRANSPORT",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "TRANSPORTS",
    "AsyncTracingTransport",
    "CliContext",
    "ConfigureVerb",
    "FlowRunner",
    "Progress",
    "RunVerb",
    "TracingTransport",
    "UsageError",
    "Verb",
    "read_hosts_profile",
]

T = TypeVar("T")

#: ``--transport`` choices.
TRANSPORTS = ("requests", "httpx", "httpx-async", "stdlib")
#: The transport used without ``--transport``: the standard library's (with h11, a dependency),
#: so that a plain ``pip install skyproto`` gives a command line that works; ``requests`` and
#: ``httpx`` are extras.
DEFAULT_TRANSPORT = "stdlib"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
#: Ctrl-C: the same in every verb (see :mod:`skyproto.cli`).
EXIT_INTERRUPTED = EXIT_OK


class UsageError(Exception):
    """A verb's arguments do not fit together: ``main`` reports it as argparse does, exit 2."""


@contextlib.contextmanager
def _extra(module: str) -> Iterator[None]:
    """Turn a missing optional client library into a one-line error naming ``module``."""
    try:
        yield
    except ImportError as exc:
        # The transport modules name the extra to install in their message.
        raise LocalProtocolError(f"cannot load {module}: {exc}") from None


# -- traffic tracing -------------------------------------------------------------------------------


class TracingTransport:
    """Wrap a sync transport and write each redacted exchange to ``stream``."""

    def __init__(self, inner: SyncTransport, stream: TextIO) -> None:
        self.inner = inner
        self.stream = stream

    def send(self, request: HttpRequest) -> HttpResponse:
        _trace(self.stream, "> ", describe(request))
        response = self.inner.send(request)
        _trace(self.stream, "< ", describe(response))
        return response

    def open_stream(self, url: str, timeout: float) -> Any:
        """The inner transport's byte stream (docs/transports.md), traced by origin only."""
        _trace(self.stream, "> ", f"STREAM {_origin(url)}")
        return _opener(self.inner)(url, timeout)


class AsyncTracingTransport:
    """Wrap an async transport and write each redacted exchange to ``stream``."""

    def __init__(self, inner: AsyncTransport, stream: TextIO) -> None:
        self.inner = inner
        self.stream = stream

    async def send(self, request: HttpRequest) -> HttpResponse:
        _trace(self.stream, "> ", describe(request))
        response = await self.inner.send(request)
        _trace(self.stream, "< ", describe(response))
        return response

    async def open_stream(self, url: str, timeout: float) -> Any:
        """The inner transport's byte stream, traced by origin only."""
        _trace(self.stream, "> ", f"STREAM {_origin(url)}")
        return await _opener(self.inner)(url, timeout)


def _origin(url: str) -> str:
    """Scheme, host and port of ``url``: a stream's path may hold a session id."""
    shown = display_url(url)
    scheme, _, rest = shown.partition("://")
    return f"{scheme}://{rest.partition('/')[0]}"


def _opener(inner: object) -> Any:
    """``inner.open_stream``; a transport without one cannot carry streams."""
    opener = getattr(inner, "open_stream", None)
    if opener is None:
        raise LocalProtocolError(f"{type(inner).__name__} cannot open streams")
    return opener


def _trace(stream: TextIO, marker: str, text: str) -> None:
    for line in text.splitlines():
        stream.write(marker + line + "\n")
    stream.flush()


# -- progress on a terminal ---------------------------------------------------------------------


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):  # a closed or odd stream is no terminal
        return False


class Progress:
    """A status line with a spinner on ``stream`` while a long wait lasts, if it is a terminal.

    ``with progress.showing("logging in"):`` draws ``| logging in`` and turns the spinner every
    :attr:`interval` seconds from a thread until the block ends, then wipes the line. On a stream
    that is not a terminal (a pipe, a file, a test's buffer) it writes nothing at all.
    :meth:`clear` wipes the line for a moment, so that other output does not run into it.
    """

    FRAMES = "|/-\\"

    def __init__(self, stream: TextIO, *, interval: float = 0.1) -> None:
        self.stream = stream
        self.interval = interval
        self.lock = threading.Lock()
        self._text: str | None = None

    @contextlib.contextmanager
    def showing(self, text: str) -> Iterator[None]:
        if self._text is not None or not _is_terminal(self.stream):
            yield
            return
        stop = threading.Event()
        self._text = text
        thread = threading.Thread(target=self._spin, args=(stop,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            with self.lock:
                self._wipe()
                self._text = None

    def clear(self) -> None:
        """Wipe the status line (it is drawn again at the next turn)."""
        if self._text is not None:
            self._wipe()

    def _spin(self, stop: threading.Event) -> None:
        turn = 0
        while True:
            with self.lock, contextlib.suppress(OSError, ValueError):
                frame = self.FRAMES[turn % len(self.FRAMES)]
                self.stream.write(f"\r{frame} {self._text}")
                self.stream.flush()
            turn += 1
            if stop.wait(self.interval):
                return

    def _wipe(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.write("\r" + " " * (len(self._text or "") + 2) + "\r")
            self.stream.flush()


# -- running several flows over one transport ------------------------------------------------------


class FlowRunner(Protocol):
    """Runs flows, one after another, over the one transport of a ``ctx.runner()`` block."""

    def run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` to its result."""
        ...

    def pages(self, listing: Listing) -> Iterator[list[Any]]:
        """Each page's items of a syncState ``listing`` until it ends."""
        ...


class _SyncRunner:
    def __init__(self, sender: SyncTransport) -> None:
        self._sender = sender

    def run(self, flow: Flow[T]) -> T:
        return run_sync(flow, self._sender)

    def pages(self, listing: Listing) -> Iterator[list[Any]]:
        return iterate_pages(listing, self._sender)


class _AsyncRunner:
    """Each flow is a separate call on one ``asyncio.Runner``: one event loop, one client."""

    def __init__(self, loop: asyncio.Runner, sender: AsyncTransport) -> None:
        self._loop = loop
        self._sender = sender

    def run(self, flow: Flow[T]) -> T:
        return self._loop.run(run_async(flow, self._sender))

    def pages(self, listing: Listing) -> Iterator[list[Any]]:
        pages = aiterate_pages(listing, self._sender)
        try:
            while True:
                try:
                    items = self._loop.run(_next_page(pages))
                except StopAsyncIteration:
                    return
                yield items
        finally:
            self._loop.run(_close_pages(pages))


async def _next_page(pages: AsyncIterator[list[Any]]) -> list[Any]:
    return await pages.__anext__()


async def _close_pages(pages: AsyncIterator[list[Any]]) -> None:
    close = getattr(pages, "aclose", None)
    if close is not None:
        await close()


class _OwningHttpxTransport:
    """An httpx transport and the client made for it, closed together."""

    def __init__(self, inner: HttpxTransport, client: httpx.Client) -> None:
        self.inner = inner
        self.client = client

    def send(self, request: HttpRequest) -> HttpResponse:
        return self.inner.send(request)

    def open_stream(self, url: str, timeout: float) -> Any:
        return _opener(self.inner)(url, timeout)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.client.close()


class _OwningAsyncHttpxTransport:
    """An async httpx transport and the client made for it, closed together."""

    def __init__(self, inner: AsyncHttpxTransport, client: httpx.AsyncClient) -> None:
        self.inner = inner
        self.client = client

    async def send(self, request: HttpRequest) -> HttpResponse:
        return await self.inner.send(request)

    async def open_stream(self, url: str, timeout: float) -> Any:
        return await _opener(self.inner)(url, timeout)

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self.client.aclose()


# -- context ---------------------------------------------------------------------------------------


#: The largest hosts profile the command line reads (a profile is a few hundred bytes).
MAX_HOSTS_FILE = 1024 * 1024


def read_hosts_profile(path: str) -> tuple[Hosts, str | None]:
    """The :class:`Hosts` of the profile at ``path``, and the CA bundle it names, if any.

    A relative ``ca_bundle`` is taken from the profile's own directory. Only a regular file of
    at most :data:`MAX_HOSTS_FILE` bytes is read (a link to one is followed), so a FIFO or a
    device named by mistake is an error, not a wait for ever."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise LocalProtocolError(f"hosts file {path!r} is not a regular file")
        if info.st_size > MAX_HOSTS_FILE:
            raise LocalProtocolError(f"hosts file {path!r} is larger than {MAX_HOSTS_FILE} bytes")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_HOSTS_FILE + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise LocalProtocolError(f"cannot read hosts file {path!r}: {reason}") from None
    hosts = Hosts.from_json(raw)  # checks the shape; the JSON parses below
    document = json.loads(raw)
    ca_bundle = document.get("ca_bundle") if "hosts" in document else None
    if ca_bundle is None:
        return hosts, None
    if not isinstance(ca_bundle, str) or not ca_bundle:
        raise LocalProtocolError(f"the 'ca_bundle' of hosts file {path!r} must be a file name")
    return hosts, os.path.join(os.path.dirname(os.path.abspath(path)), ca_bundle)


@attrs.define
class CliContext:
    """What every verb gets: the global options and the output streams."""

    hosts: Hosts = attrs.field(factory=Hosts)
    transport: str = DEFAULT_TRANSPORT
    ca_bundle: str | None = None
    #: The ``--hosts`` file (absolute), or ``None`` for the real services.
    hosts_file: str | None = None
    verbose: bool = False
    stdout: TextIO = attrs.field(factory=lambda: sys.stdout)
    stderr: TextIO = attrs.field(factory=lambda: sys.stderr)
    _progress: Progress = attrs.field(
        default=attrs.Factory(lambda self: Progress(self.stderr), takes_self=True),
        init=False,
        repr=False,
        eq=False,
    )

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO) -> CliContext:
        """Build the context from the parsed global options (reads the hosts file).

        Without ``--ca-bundle``, the ``ca_bundle`` of the ``--hosts`` profile (what ``skyproto
        emulator --tls`` prints) is trusted."""
        hosts, profile_ca = read_hosts_profile(args.hosts) if args.hosts else (Hosts(), None)
        return cls(
            hosts=hosts,
            transport=args.transport,
            ca_bundle=args.ca_bundle or profile_ca,
            hosts_file=os.path.abspath(args.hosts) if args.hosts else None,
            verbose=args.verbose,
            stdout=stdout,
            stderr=stderr,
        )

    def out(self, text: str) -> None:
        """Print a line of the command's result on stdout."""
        with self._progress.lock:
            self._progress.clear()
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def err(self, text: str) -> None:
        """Print a line of diagnostics on stderr."""
        with self._progress.lock:
            self._progress.clear()
            self.stderr.write(text + "\n")
            self.stderr.flush()

    def progress(self, text: str) -> contextlib.AbstractContextManager[None]:
        """A spinner and ``text`` on stderr while the block runs, if stderr is a terminal and
        ``--verbose`` does not trace there (see :class:`Progress`)."""
        if self.verbose:
            return contextlib.nullcontext()
        return self._progress.showing(text)

    @property
    def is_async(self) -> bool:
        return self.transport == "httpx-async"

    def ssl_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` trusting ``--ca-bundle`` (or the system store without one)."""
        try:
            return ssl.create_default_context(cafile=self.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise LocalProtocolError(
                f"cannot load CA bundle {self.ca_bundle!r}: {reason}"
            ) from None

    def make_transport(
        self,
    ) -> RequestsTransport | StdlibTransport | _OwningHttpxTransport | _OwningAsyncHttpxTransport:
        """A new transport of the chosen kind, with the TLS trust of ``--ca-bundle``.

        The caller closes it (``close()``, or ``await aclose()`` for ``httpx-async``).
        """
        if self.transport not in TRANSPORTS:
            raise LocalProtocolError(f"unknown transport {self.transport!r}")
        # Build the SSL context first even where it is not passed on: a bad bundle fails early.
        context = self.ssl_context() if self.ca_bundle else None
        if self.transport == "requests":
            with _extra("skyproto.transports.requests"):
                from ..transports.requests import RequestsTransport
            transport = RequestsTransport()
            if self.ca_bundle:
                transport.session.verify = self.ca_bundle
            return transport
        if self.transport == "stdlib":
            from ..transports.stdlib import StdlibTransport

            return StdlibTransport(ssl_context=context)
        with _extra("skyproto.transports.httpx"):
            import httpx

            from ..transports.httpx import (
                AsyncHttpxTransport,
                HttpxTransport,
                refusing_cookie_jar,
            )
        verify: ssl.SSLContext | bool = context if context is not None else True
        # A client we pass in is not the transport's to close, so the wrapper closes it.
        if self.is_async:
            aclient = httpx.AsyncClient(verify=verify, cookies=refusing_cookie_jar())
            return _OwningAsyncHttpxTransport(AsyncHttpxTransport(aclient), aclient)
        client = httpx.Client(verify=verify, cookies=refusing_cookie_jar())
        return _OwningHttpxTransport(HttpxTransport(client), client)

    @contextlib.contextmanager
    def runner(self) -> Iterator[FlowRunner]:
        """A :class:`FlowRunner` over one new transport of the chosen kind, closed at the end.

        Every flow of a verb goes through the same transport (and, for ``httpx-async``, the same
        event loop: the block is one ``asyncio.Runner``). ``--verbose`` traces its traffic.
        """
        if not self.is_async:
            transport = self.make_transport()
            assert not isinstance(transport, _OwningAsyncHttpxTransport)
            sender: SyncTransport = transport
            if self.verbose:
                sender = TracingTransport(sender, self.stderr)
            try:
                yield _SyncRunner(sender)
            finally:
                transport.close()
            return
        loop = asyncio.Runner()
        try:
            async_transport = self.make_transport()
            assert isinstance(async_transport, _OwningAsyncHttpxTransport)
            async_sender: AsyncTransport = async_transport
            if self.verbose:
                async_sender = AsyncTracingTransport(async_sender, self.stderr)
            try:
                yield _AsyncRunner(loop, async_sender)
            finally:
                loop.run(async_transport.aclose())
        finally:
            loop.close()

    def run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` to its result with a new transport of the chosen kind, then close it."""
        with self.runner() as runner:
            return runner.run(flow)


# -- verbs -----------------------------------------------------------------------------------------

#: A verb's ``run(args, ctx)``: the work, returning the exit code.
RunVerb = Callable[[argparse.Namespace, "CliContext"], int]
#: A verb's ``configure(parser)``: adds its arguments to its sub-parser.
ConfigureVerb = Callable[[argparse.ArgumentParser], None]


@attrs.frozen
class Verb:
    """One sub-command: ``configure`` adds its arguments, ``run`` does the work."""

    name: str
    help: str
    run: RunVerb
    configure: ConfigureVerb = attrs.field(default=lambda parser: None)
    #: The verb hands every argument after its name to a parser of its own (``emulator``), so its
    #: sub-parser takes no global option.
    passes_arguments_on: bool = attrs.field(default=False, kw_only=True)
