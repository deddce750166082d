"""The ``skyproto`` command line.

Usage: ``skyproto [--hosts FILE] [--ca-bundle FILE] [--transport NAME] [--verbose] VERB ...``

Each verb is a :class:`Verb`: a name, a help line, a function that adds its arguments to its own
sub-parser, and a function ``run(args, ctx) -> int`` that does the work with a :class:`CliContext`.
``ctx.run(flow)`` builds the chosen transport and drives a flow with it, so a verb is usually a few
lines around one flow. A verb that runs several flows opens ``with ctx.runner() as runner:`` and
calls ``runner.run(flow)`` (and ``runner.pages(listing)``) inside it: one transport for all of them,
closed at the end (for ``httpx-async``, one event loop too). To add a verb, write those two
functions and list the verb in :data:`VERBS`; the session verbs live in :mod:`skyproto.commands`.

This module is the edge of the program: it reads files, talks to the network through a transport
and runs an event loop. Transports, drivers and ``asyncio`` are loaded with
:func:`importlib.import_module` when a command needs them, so importing the core (this module
included) pulls in no HTTP client and no event loop.

Exit codes: 0 success, 1 a :class:`~skyproto.SkypeException` (the last stderr line reads
``error: <ExceptionClass>: <message>``), 2 a usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar, cast

import attrs

from . import commands
from ._flow import Flow
from ._http import HttpRequest, HttpResponse, describe
from .calls import display_url
from .errors import LocalProtocolError, SkypeException
from .hosts import Hosts
from .mac256 import mac256

if TYPE_CHECKING:
    from .session import Listing

__all__ = ["TRANSPORTS", "VERBS", "CliContext", "FlowRunner", "Verb", "build_parser", "main"]

T = TypeVar("T")

#: ``--transport`` choices; the first is the default.
TRANSPORTS = ("requests", "httpx", "httpx-async", "stdlib")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# -- the shapes of the dynamically loaded transports and drivers ---------------------------------


class SyncSender(Protocol):
    def send(self, request: HttpRequest) -> HttpResponse: ...


class AsyncSender(Protocol):
    async def send(self, request: HttpRequest) -> HttpResponse: ...


class _ClosingSender(SyncSender, Protocol):
    def close(self) -> None: ...


class _ClosingAsyncSender(AsyncSender, Protocol):
    async def aclose(self) -> None: ...


class _Drivers(Protocol):
    """The part of ``skyproto.transports`` the CLI uses."""

    def run_sync(self, flow: Flow[T], transport: SyncSender) -> T: ...

    async def run_async(self, flow: Flow[T], transport: AsyncSender) -> T: ...

    def iterate_pages(self, listing: Listing, transport: SyncSender) -> Iterator[list[Any]]: ...

    def aiterate_pages(
        self, listing: Listing, transport: AsyncSender
    ) -> AsyncIterator[list[Any]]: ...


class _AsyncioRunner(Protocol):
    """The part of ``asyncio.Runner`` the CLI uses: one event loop for several calls."""

    def run(self, coro: Any) -> Any: ...

    def close(self) -> None: ...


class _AsyncioModule(Protocol):
    def Runner(self) -> _AsyncioRunner: ...  # asyncio.Runner, a class


def _load(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # The transport modules name the extra to install in their message.
        raise LocalProtocolError(f"cannot load {module}: {exc}") from None


# -- traffic tracing -------------------------------------------------------------------------------


class TracingTransport:
    """Wrap a sync transport and write each redacted exchange to ``stream``."""

    def __init__(self, inner: SyncSender, stream: TextIO) -> None:
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

    def __init__(self, inner: AsyncSender, stream: TextIO) -> None:
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
    def __init__(self, drivers: _Drivers, sender: SyncSender) -> None:
        self._drivers = drivers
        self._sender = sender

    def run(self, flow: Flow[T]) -> T:
        return self._drivers.run_sync(flow, self._sender)

    def pages(self, listing: Listing) -> Iterator[list[Any]]:
        return self._drivers.iterate_pages(listing, self._sender)


class _AsyncRunner:
    """Each flow is a separate call on one ``asyncio.Runner``: one event loop, one client."""

    def __init__(self, drivers: _Drivers, loop: _AsyncioRunner, sender: AsyncSender) -> None:
        self._drivers = drivers
        self._loop = loop
        self._sender = sender

    def run(self, flow: Flow[T]) -> T:
        result: T = self._loop.run(self._drivers.run_async(flow, self._sender))
        return result

    def pages(self, listing: Listing) -> Iterator[list[Any]]:
        pages = self._drivers.aiterate_pages(listing, self._sender)
        try:
            while True:
                try:
                    items: list[Any] = self._loop.run(_next_page(pages))
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

    def __init__(self, inner: _ClosingSender, client: Any) -> None:
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

    def __init__(self, inner: _ClosingAsyncSender, client: Any) -> None:
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


@attrs.define
class CliContext:
    """What every verb gets: the global options and the output streams."""

    hosts: Hosts = attrs.field(factory=Hosts)
    transport: str = TRANSPORTS[0]
    ca_bundle: str | None = None
    verbose: bool = False
    stdout: TextIO = attrs.field(factory=lambda: sys.stdout)
    stderr: TextIO = attrs.field(factory=lambda: sys.stderr)

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO) -> CliContext:
        """Build the context from the parsed global options (reads the hosts file)."""
        hosts = Hosts.from_file(args.hosts) if args.hosts else Hosts()
        return cls(
            hosts=hosts,
            transport=args.transport,
            ca_bundle=args.ca_bundle,
            verbose=args.verbose,
            stdout=stdout,
            stderr=stderr,
        )

    def out(self, text: str) -> None:
        """Print a line of the command's result on stdout."""
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def err(self, text: str) -> None:
        """Print a line of diagnostics on stderr."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    @property
    def is_async(self) -> bool:
        return self.transport == "httpx-async"

    def ssl_context(self) -> Any:
        """An ``ssl.SSLContext`` trusting ``--ca-bundle`` (or the system store without one)."""
        ssl = importlib.import_module("ssl")
        try:
            return ssl.create_default_context(cafile=self.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise LocalProtocolError(
                f"cannot load CA bundle {self.ca_bundle!r}: {reason}"
            ) from None

    def make_transport(self) -> Any:
        """A new transport of the chosen kind, with the TLS trust of ``--ca-bundle``.

        The caller closes it (``close()``, or ``await aclose()`` for ``httpx-async``).
        """
        if self.transport not in TRANSPORTS:
            raise LocalProtocolError(f"unknown transport {self.transport!r}")
        # Build the SSL context first even where it is not passed on: a bad bundle fails early.
        context = self.ssl_context() if self.ca_bundle else None
        if self.transport == "requests":
            module = _load("skyproto.transports.requests")
            transport = module.RequestsTransport()
            if self.ca_bundle:
                transport.session.verify = self.ca_bundle
            return transport
        if self.transport == "stdlib":
            module = _load("skyproto.transports.stdlib")
            return module.StdlibTransport(ssl_context=context)
        module = _load("skyproto.transports.httpx")
        httpx = _load("httpx")
        verify: Any = context if context is not None else True
        # A client we pass in is not the transport's to close, so the wrapper closes it.
        if self.is_async:
            client = httpx.AsyncClient(verify=verify, cookies=module.refusing_cookie_jar())
            return _OwningAsyncHttpxTransport(module.AsyncHttpxTransport(client), client)
        client = httpx.Client(verify=verify, cookies=module.refusing_cookie_jar())
        return _OwningHttpxTransport(module.HttpxTransport(client), client)

    @contextlib.contextmanager
    def runner(self) -> Iterator[FlowRunner]:
        """A :class:`FlowRunner` over one new transport of the chosen kind, closed at the end.

        Every flow of a verb goes through the same transport (and, for ``httpx-async``, the same
        event loop: the block is one ``asyncio.Runner``). ``--verbose`` traces its traffic.
        """
        drivers = cast(_Drivers, _load("skyproto.transports"))
        if not self.is_async:
            transport = self.make_transport()
            sender: SyncSender = transport
            if self.verbose:
                sender = TracingTransport(sender, self.stderr)
            try:
                yield _SyncRunner(drivers, sender)
            finally:
                cast(_ClosingSender, transport).close()
            return
        asyncio = cast(_AsyncioModule, _load("asyncio"))
        loop = asyncio.Runner()
        try:
            async_transport = self.make_transport()
            async_sender: AsyncSender = async_transport
            if self.verbose:
                async_sender = AsyncTracingTransport(async_sender, self.stderr)
            try:
                yield _AsyncRunner(drivers, loop, async_sender)
            finally:
                loop.run(cast(_ClosingAsyncSender, async_transport).aclose())
        finally:
            loop.close()

    def run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` to its result with a new transport of the chosen kind, then close it."""
        with self.runner() as runner:
            return runner.run(flow)


# -- verbs -----------------------------------------------------------------------------------------


@attrs.frozen
class Verb:
    """One sub-command: ``configure`` adds its arguments, ``run`` does the work."""

    name: str
    help: str
    run: Callable[[argparse.Namespace, CliContext], int]
    configure: Callable[[argparse.ArgumentParser], None] = attrs.field(default=lambda parser: None)


def _configure_mac256(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("challenge", help="the challenge, usually a decimal Unix time")


def _run_mac256(args: argparse.Namespace, ctx: CliContext) -> int:
    ctx.out(mac256(args.challenge))
    return EXIT_OK


def _configure_emulator(parser: argparse.ArgumentParser) -> None:
    # The emulator parses its own options, and its --help names the default account, so this
    # sub-parser recognises no option at all: every argument after the verb is passed on as is.
    parser.prefix_chars = "\0"
    parser.add_argument(
        "emulator_args",
        nargs="*",
        metavar="ARG",
        help="[--host 127.0.0.1] [--port N] [--scenario KEY=VALUE ...] [--tls] [--seed N] [-v]",
    )


def _run_emulator(args: argparse.Namespace, ctx: CliContext) -> int:
    from .emulator.server import serve  # sockets, threads and TLS only for this verb

    argv = list(args.emulator_args)
    if ctx.verbose:  # the global --verbose: log each request the emulator receives
        argv.insert(0, "--verbose")
    with contextlib.redirect_stdout(ctx.stdout), contextlib.redirect_stderr(ctx.stderr):
        return serve(argv)


#: Every verb, in the order ``--help`` lists them.
VERBS: tuple[Verb, ...] = (
    Verb(
        "mac256",
        "print the lock-and-key response to a challenge",
        _run_mac256,
        _configure_mac256,
    ),
    Verb(
        "emulator",
        "run the loopback Skype emulator until Ctrl-C (see: skyproto emulator --help)",
        _run_emulator,
        _configure_emulator,
    ),
    *(Verb(*spec) for spec in commands.VERB_SPECS),
)


# -- entry point -----------------------------------------------------------------------------------


def build_parser(verbs: Sequence[Verb] | None = None) -> argparse.ArgumentParser:
    """The argument parser: global options, then one sub-parser per verb (default :data:`VERBS`)."""
    parser = argparse.ArgumentParser(
        prog="skyproto", description="Speak the Skype HTTP client protocol."
    )
    parser.add_argument(
        "--hosts", metavar="FILE", help="JSON hosts profile mapping service hosts to base URLs"
    )
    parser.add_argument(
        "--ca-bundle", metavar="FILE", help="PEM file of CA certificates to trust for HTTPS"
    )
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default=TRANSPORTS[0],
        help=f"HTTP stack to use (default: {TRANSPORTS[0]})",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="write the HTTP traffic, with secrets redacted, to stderr",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS if verbs is None else verbs:
        sub = subparsers.add_parser(verb.name, help=verb.help, description=verb.help)
        verb.configure(sub)
        sub.set_defaults(verb_run=verb.run)
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def main(
    argv: list[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line and return its exit code (streams default to ``sys``'s)."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    # The core's warnings (a skipped ack, a failed poll) go where the verb's diagnostics go.
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("skyproto")
    logger.addHandler(handler)
    if args.verbose:
        logger.setLevel(logging.INFO)
    try:
        ctx = CliContext.from_args(args, stdout=out, stderr=err)
        run: Callable[[argparse.Namespace, CliContext], int] = args.verb_run
        return run(args, ctx)
    except SkypeException as exc:
        err.write(f"error: {type(exc).__name__}: {_one_line(exc.message)}\n")
        err.flush()
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write("interrupted\n")
        err.flush()
        return EXIT_INTERRUPTED
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
