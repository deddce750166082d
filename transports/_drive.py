"""The two drivers, which carry out a flow's effects, and the helpers the transports share.

:func:`run_sync` and :func:`run_async` are twins: a change to one is a change to both. For each
effect the flow yields they do one thing:

- :class:`~skyproto.HttpRequest`: ``transport.send(request)``; the response is sent back in. A
  :class:`~skyproto.TransportError` is thrown into the flow at its ``yield`` instead, so the flow
  may retry or give up; if the flow lets it propagate, it leaves the driver unchanged.
- :class:`~skyproto.Sleep`: ``sleep(seconds)``, as a float. Negative seconds count as 0 (a
  ``Sleep`` cannot hold a duration that is not a finite number).
- :class:`~skyproto.Now`: ``clock()``, an aware UTC datetime.
- :class:`~skyproto.Shared`: the result of running ``start()`` with the same transport, clock and
  sleeper. ``run_async`` runs it once per ``(owner, key)`` at a time and lets every flow that asks
  meanwhile await that one run; cancelling one waiter does not cancel the run.
- :class:`~skyproto.Deliver`: ``handler(event)``; ``run_async`` awaits what it returns when that is
  awaitable, and ``run_sync`` refuses an awaitable.
- The stream effects (:class:`~skyproto._flow.OpenStream`, ``SendBytes``, ``ReceiveBytes``,
  ``CloseStream``): ``transport.open_stream(url, timeout)`` gives a stream (see
  ``transports/_streams.py``) whose ``send``, ``receive`` and ``close`` carry out the rest. A
  flow may only name streams this run opened, and every stream it left open is closed when the
  run ends. A transport without ``open_stream`` is a :class:`~skyproto.LocalProtocolError`.

An exception from a shared sub-flow or a handler is thrown into the flow, like a transport error.

Anything else the flow yields is a bug in the flow, not something it could handle, so the driver
raises :class:`~skyproto.LocalProtocolError` itself rather than throwing it in. So does a
transport of the wrong colour (a coroutine from ``run_sync``'s transport, or a plain value from
``run_async``'s). Other exceptions from the transport, the clock or the sleeper propagate as they
are. Whatever happens, the flow is closed before the driver returns or raises, so its ``finally``
blocks run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import h11

from skyproto._flow import (
    CloseStream,
    Deliver,
    Flow,
    Now,
    OpenStream,
    ReceiveBytes,
    SendBytes,
    Shared,
    Sleep,
)
from skyproto._http import HttpRequest, HttpResponse
from skyproto._redact import redact_url
from skyproto.calls import check_seconds
from skyproto.errors import LocalProtocolError, TransportError, TransportTimeout

if TYPE_CHECKING:
    from skyproto.session import Listing

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_TIMEOUT",
    "AsyncTransport",
    "BoundedBody",
    "SyncTransport",
    "WireHeads",
    "aiterate_pages",
    "iterate_pages",
    "run_async",
    "run_sync",
    "transport_error",
    "utc_now",
    "wire_head",
    "wire_headers",
]

T = TypeVar("T")

#: Seconds a transport allows a request whose ``timeout`` is ``None`` (its ``default_timeout``).
#: The core never sends one: every request it builds has its own timeout.
DEFAULT_TIMEOUT = 60.0
#: Bytes a transport accepts in one response body (its ``max_body_size``): 16 MiB.
DEFAULT_MAX_BODY_SIZE = 16 * 1024 * 1024

_DIGITS = re.compile(r"[0-9]+")
# Answers that carry no body whatever their Content-Length says (RFC 9110 §6.4.1).
_BODILESS_STATUSES = frozenset({204, 304})


class SyncTransport(Protocol):
    """Anything that can carry one request and return its response, blocking."""

    def send(self, request: HttpRequest) -> HttpResponse: ...


class AsyncTransport(Protocol):
    """Anything that can carry one request and return its response, on an event loop."""

    async def send(self, request: HttpRequest) -> HttpResponse: ...


def utc_now() -> dt.datetime:
    """The wall clock, aware and in UTC."""
    return dt.datetime.now(dt.UTC)


def run_sync(
    flow: Flow[T],
    transport: SyncTransport,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Run ``flow`` to completion, blocking, and return its result."""
    streams: list[Any] = []
    try:
        outcome: Any = None
        failure: BaseException | None = None
        while True:
            try:
                effect = flow.send(outcome) if failure is None else flow.throw(failure)
            except StopIteration as stop:
                result: T = stop.value
                return result
            outcome, failure = None, None
            if isinstance(effect, HttpRequest):
                try:
                    outcome = transport.send(effect)
                except TransportError as exc:
                    failure = exc
                if outcome.__class__ is not HttpResponse and inspect.isawaitable(outcome):
                    _discard(outcome)
                    raise LocalProtocolError("run_sync needs a sync transport; use run_async")
            elif isinstance(effect, Sleep):
                sleep(_seconds(effect))
            elif isinstance(effect, Now):
                outcome = clock()
            elif isinstance(effect, Shared):
                try:
                    outcome = run_sync(effect.start(), transport, clock=clock, sleep=sleep)
                except Exception as exc:
                    failure = exc
            elif isinstance(effect, Deliver):
                try:
                    returned = effect.handler(effect.event)
                except Exception as exc:
                    failure = exc
                else:
                    if inspect.isawaitable(returned):
                        _discard(returned)
                        raise LocalProtocolError("run_sync needs a sync handler; use run_async")
            elif isinstance(effect, _STREAM_EFFECTS):
                try:
                    outcome = _stream_sync(effect, transport, streams)
                except TransportError as exc:
                    failure = exc
            else:
                raise _unknown(effect)
    finally:
        try:
            flow.close()
        finally:
            for stream in streams:
                stream.close()


async def run_async(
    flow: Flow[T],
    transport: AsyncTransport,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Run ``flow`` to completion on the running event loop and return its result."""
    streams: list[Any] = []
    try:
        outcome: Any = None
        failure: BaseException | None = None
        while True:
            try:
                effect = flow.send(outcome) if failure is None else flow.throw(failure)
            except StopIteration as stop:
                result: T = stop.value
                return result
            outcome, failure = None, None
            if isinstance(effect, HttpRequest):
                pending = transport.send(effect)
                if not inspect.isawaitable(pending):
                    raise LocalProtocolError("run_async needs an async transport; use run_sync")
                try:
                    outcome = await pending
                except TransportError as exc:
                    failure = exc
            elif isinstance(effect, Sleep):
                await sleep(_seconds(effect))
            elif isinstance(effect, Now):
                outcome = clock()
            elif isinstance(effect, Shared):
                try:
                    outcome = await _shared_async(effect, transport, clock, sleep)
                except Exception as exc:
                    failure = exc
            elif isinstance(effect, Deliver):
                try:
                    returned = effect.handler(effect.event)
                    if inspect.isawaitable(returned):
                        await returned
                except Exception as exc:
                    failure = exc
            elif isinstance(effect, _STREAM_EFFECTS):
                try:
                    outcome = await _stream_async(effect, transport, streams)
                except TransportError as exc:
                    failure = exc
            else:
                raise _unknown(effect)
    finally:
        try:
            flow.close()
        finally:
            for stream in streams:
                await stream.close()


_STREAM_EFFECTS = (OpenStream, SendBytes, ReceiveBytes, CloseStream)
_StreamEffect = OpenStream | SendBytes | ReceiveBytes | CloseStream


def _stream_of(effect: SendBytes | ReceiveBytes | CloseStream, streams: list[Any]) -> Any:
    for stream in streams:
        if stream is effect.stream:
            return stream
    if isinstance(effect, CloseStream):
        return None  # closed already: closing again does nothing
    raise LocalProtocolError(
        f"a flow used a stream this run did not open ({type(effect).__name__})"
    )


def _opener(transport: object) -> Callable[[str, float], Any]:
    opener = getattr(transport, "open_stream", None)
    if not callable(opener):
        raise LocalProtocolError(f"{type(transport).__name__} cannot open streams (no open_stream)")
    return opener  # type: ignore[no-any-return]


def _stream_sync(effect: _StreamEffect, transport: object, streams: list[Any]) -> Any:
    """Carry out one stream effect for :func:`run_sync`."""
    if isinstance(effect, OpenStream):
        stream = _opener(transport)(effect.url, effect.timeout)
        if inspect.isawaitable(stream):
            _discard(stream)
            raise LocalProtocolError("run_sync needs a sync transport; use run_async")
        streams.append(stream)
        return stream
    stream = _stream_of(effect, streams)
    if isinstance(effect, SendBytes):
        return stream.send(effect.data, effect.timeout)
    if isinstance(effect, ReceiveBytes):
        return stream.receive(effect.max_bytes, effect.timeout)
    if stream is not None:
        streams.remove(stream)
        stream.close()
    return None


async def _stream_async(effect: _StreamEffect, transport: object, streams: list[Any]) -> Any:
    """Carry out one stream effect for :func:`run_async`."""
    if isinstance(effect, OpenStream):
        pending = _opener(transport)(effect.url, effect.timeout)
        if not inspect.isawaitable(pending):
            raise LocalProtocolError("run_async needs an async transport; use run_sync")
        stream = await pending
        streams.append(stream)
        return stream
    stream = _stream_of(effect, streams)
    if isinstance(effect, SendBytes):
        return await stream.send(effect.data, effect.timeout)
    if isinstance(effect, ReceiveBytes):
        return await stream.receive(effect.max_bytes, effect.timeout)
    if stream is not None:
        streams.remove(stream)
        await stream.close()
    return None


# In-flight shared sub-flows of the async driver, per owner (weakly) and key.
_in_flight: weakref.WeakKeyDictionary[object, dict[Hashable, asyncio.Task[Any]]] = (
    weakref.WeakKeyDictionary()
)


async def _shared_async(
    effect: Shared,
    transport: AsyncTransport,
    clock: Callable[[], dt.datetime],
    sleep: Callable[[float], Awaitable[object]],
) -> Any:
    try:
        tasks = _in_flight.setdefault(effect.owner, {})
    except TypeError:
        raise LocalProtocolError(
            f"a Shared owner must support weak references ({type(effect.owner).__name__} does not)"
        ) from None
    loop = asyncio.get_running_loop()
    task = tasks.get(effect.key)
    if task is None or task.done() or task.get_loop() is not loop:
        task = loop.create_task(run_async(effect.start(), transport, clock=clock, sleep=sleep))
        tasks[effect.key] = task
        task.add_done_callback(_finished(tasks, effect.key))
    # Shielded: one waiter being cancelled must not cancel the refresh the others wait on.
    return await asyncio.shield(task)


def _finished(tasks: dict[Hashable, asyncio.Task[Any]], key: Hashable) -> Callable[[Any], None]:
    def forget(task: asyncio.Task[Any]) -> None:
        if tasks.get(key) is task:
            del tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved, so a failure nobody awaited any more is not reported

    return forget


def _seconds(effect: Sleep) -> float:
    return max(0.0, float(effect.seconds))  # Sleep itself refuses what is not a finite number


def _unknown(effect: object) -> LocalProtocolError:
    # Only the type: an arbitrary object's repr could carry a secret.
    return LocalProtocolError(f"a flow yielded {type(effect).__name__}, which is not an effect")


def _discard(awaitable: object) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()  # a coroutine never awaited would warn


def iterate_pages(
    listing: Listing,
    transport: SyncTransport,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    sleep: Callable[[float], object] = time.sleep,
) -> Iterator[list[Any]]:
    """Yield each page's items of ``listing`` (a :class:`~skyproto.paging.Listing`) until it
    ends."""
    while True:
        items = run_sync(listing.next_page(), transport, clock=clock, sleep=sleep)
        if items is None:
            return
        yield items


async def aiterate_pages(
    listing: Listing,
    transport: AsyncTransport,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> AsyncIterator[list[Any]]:
    """The async twin of :func:`iterate_pages`."""
    while True:
        items = await run_async(listing.next_page(), transport, clock=clock, sleep=sleep)
        if items is None:
            return
        yield items


# Shared by the transports.


def wire_head(request: HttpRequest) -> h11.Request:
    """The request line and header lines exactly as they go on the wire.

    They are what the core decided plus ``Host`` and ``Content-Length``, nothing else. Every
    transport sends these, so all four put the same bytes on the wire.
    """
    head, _ = request.to_h11()
    return head


#: Heads a :class:`WireHeads` keeps before it forgets the oldest.
WIRE_HEADS_SIZE = 64


class WireHeads(Generic[T]):
    """A transport's memory of the heads it sent, each kept in the form its client takes.

    A bot sends the same few heads again and again: every ping and every poll of a session is
    the same request line and the same header lines until its token changes. Working a head out
    (:func:`wire_head`: h11 checks every line) and then into the client's own form costs more
    than everything else the core adds to an exchange on loopback, so a transport does it once
    per distinct head. :meth:`get` gives ``prepare(request, wire_head(request))``, worked out the
    first time a head is seen and remembered under what decides it: the method, the URL, the
    header lines and the body's length (which decides ``Content-Length``).

    What ``prepare`` returns is shared by every request with that head, so it must not be
    changed by whoever uses it. At most ``size`` heads are kept, the oldest forgotten first (a
    transport shared by more sessions than that mostly misses, and a miss costs what a head
    always cost plus one dict entry);
    they hold the tokens their lines carry, so a transport calls :meth:`clear` when it closes.
    Safe to share between threads: a head two threads work out at once is worked out twice and
    kept once.
    """

    __slots__ = ("_heads", "_lock", "_prepare", "_size")

    def __init__(
        self, prepare: Callable[[HttpRequest, h11.Request], T], size: int = WIRE_HEADS_SIZE
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise LocalProtocolError(f"size must be a positive whole number, not {size!r}")
        self._prepare = prepare
        self._size = size
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...], int], T] = {}
        self._lock = threading.Lock()

    def get(self, request: HttpRequest) -> T:
        """``request``'s head in the transport's form; :class:`LocalProtocolError` as
        :func:`wire_head` raises it."""
        key = (request.method, request.url, request.headers, len(request.body))
        heads = self._heads
        prepared = heads.get(key)
        if prepared is None:
            prepared = self._prepare(request, wire_head(request))
            with self._lock:  # only a miss takes it: iterating needs the dict left alone
                while len(heads) >= self._size:
                    del heads[next(iter(heads))]
                heads[key] = prepared
        return prepared

    def __len__(self) -> int:
        return len(self._heads)

    def clear(self) -> None:
        """Forget every head."""
        with self._lock:
            self._heads.clear()


def wire_headers(head: h11.Request) -> list[tuple[str, str]]:
    """``head``'s header lines as text, names as given and in order."""
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in head.headers.raw_items()
    ]


def transport_error(
    request: HttpRequest, exc: BaseException, *, timed_out: bool = False
) -> TransportError:
    """The :class:`TransportError` (:class:`TransportTimeout` if ``timed_out``) for ``exc``.

    The message names the method, the URL (secret query fields redacted), the kind of ``exc`` and
    the first operating-system error among its causes, never a header or the body.
    """
    kinds = type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    for _ in range(10):  # chains of causes are short, but never trust one to end
        if cause is None:
            break
        if isinstance(cause, OSError):  # the system's word: refused, reset, timed out, TLS
            kinds = f"{kinds} ({type(cause).__name__})"
            break
        cause = cause.__cause__ or cause.__context__
    kind = TransportTimeout if timed_out else TransportError
    return kind(f"{kinds}: {request.method} {redact_url(request.url)}")


def check_body_size(value: object) -> int:
    """``value`` if it is a positive whole number of bytes, else :class:`LocalProtocolError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LocalProtocolError(f"max_body_size must be a positive whole number, not {value!r}")
    return value


def check_limits(default_timeout: object, max_body_size: object) -> tuple[float, int]:
    """A transport constructor's ``default_timeout`` and ``max_body_size``, checked.

    The pair as given if ``default_timeout`` is a positive finite number of seconds and
    ``max_body_size`` a positive whole number of bytes, else :class:`LocalProtocolError`
    naming the first that is not.
    """
    return check_seconds(default_timeout, "default_timeout"), check_body_size(max_body_size)


class BoundedBody:
    """One exchange's deadline and its response body, collected under a size limit.

    The deadline is ``request.timeout`` seconds from now, or ``default_timeout`` when the request
    has none. :meth:`left` is what remains of it; once it has passed, :meth:`left` raises
    :class:`TransportTimeout`. :meth:`declared` rejects a ``Content-Length`` over ``limit``
    before any of the body is read, and :meth:`add` keeps count as the chunks arrive, so a body
    over ``limit`` raises :class:`TransportError` (naming the limit) without ever being held.
    """

    def __init__(self, request: HttpRequest, default_timeout: float, limit: int) -> None:
        self.request = request
        timeout = default_timeout if request.timeout is None else request.timeout
        self.timeout = check_seconds(timeout, "the request's timeout")
        self.deadline = time.monotonic() + self.timeout
        self.limit = limit
        self._chunks: list[bytes] = []
        self._size = 0

    def left(self) -> float:
        """Seconds until the deadline; :class:`TransportTimeout` once it has passed."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise transport_error(self.request, TimeoutError("deadline passed"), timed_out=True)
        return remaining

    def declared(self, status: int, content_length: str | None) -> None:
        """Refuse an answer whose ``Content-Length`` is over the limit (bodiless ones aside)."""
        if content_length is None or self.request.method == "HEAD":
            return
        if status < 200 or status in _BODILESS_STATUSES:
            return
        # A list of equal values ("10, 10") is legal; the client itself rejects unequal ones.
        for value in content_length.split(","):
            value = value.strip()
            if _DIGITS.fullmatch(value) and int(value) > self.limit:
                raise self._too_large("declares")

    def add(self, chunk: bytes) -> None:
        """Keep ``chunk``; :class:`TransportError` if the body is now over the limit."""
        self._size += len(chunk)
        if self._size > self.limit:
            raise self._too_large("sent")
        if chunk:
            self._chunks.append(chunk)

    def body(self) -> bytes:
        """The body collected so far."""
        return b"".join(self._chunks)

    def _too_large(self, verb: str) -> TransportError:
        return TransportError(
            f"the response {verb} a body over the {self.limit}-byte limit (max_body_size): "
            f"{self.request.method} {redact_url(self.request.url)}"
        )
