"""Flows: protocol logic written as generators that yield effects.

A flow yields an *effect* and is resumed with its outcome:

============================  ===============================================
effect yielded                value sent back
============================  ===============================================
:class:`~skyproto.HttpRequest`  the :class:`~skyproto.HttpResponse` received
:class:`Sleep`                ``None``, once the time has passed
:class:`Now`                  the current time, an aware UTC ``datetime``
:class:`Shared`               the result of the sub-flow ``start()``, run once
                              per ``(owner, key)`` however many flows ask
:class:`Deliver`              ``None``, once ``handler(event)`` has returned
                              (and, if it returned an awaitable, that is done)
:class:`OpenStream`           a stream handle (opaque to the flow)
:class:`SendBytes`            ``None``, once every byte was written
:class:`ReceiveBytes`         up to ``max_bytes`` bytes; ``b""`` at end of
                              stream; :data:`TIMED_OUT` if nothing came in time
:class:`CloseStream`          ``None``
============================  ===============================================

The stream effects carry a byte stream (TCP, with TLS for ``https``) for protocols that outlive
one request, such as a websocket. A stream failure is thrown in as a
:class:`~skyproto.TransportError`, like a request's.

An exception raised by a :class:`Shared` sub-flow or by a :class:`Deliver` handler is thrown into
the flow at its ``yield``, like a transport failure.

A transport failure is thrown into the flow as :class:`~skyproto.TransportError` at the ``yield``
that asked for the request, so a flow may retry or give up. When the generator returns, its value
is the flow's result. Flows never sleep or read the clock themselves; that is the driver's job,
which keeps every policy here deterministic and testable with canned responses and a fake clock.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Callable, Generator, Hashable
from typing import Any, Final, Generic, TypeAlias, TypeVar

import attrs

from ._http import HttpRequest, HttpResponse
from .errors import LocalProtocolError

__all__ = [
    "TIMED_OUT",
    "CloseStream",
    "Deliver",
    "Effect",
    "Flow",
    "Now",
    "OpenStream",
    "ReceiveBytes",
    "SendBytes",
    "Shared",
    "Sleep",
    "Stepper",
    "TimedOut",
    "close_stream",
    "deliver",
    "now",
    "open_stream",
    "receive_bytes",
    "request",
    "send_bytes",
    "shared",
    "sleep",
]

T = TypeVar("T")


def _finite_seconds(_instance: object, _attribute: object, seconds: float) -> None:
    # An endless or undefined wait is a bug in the policy that asked for it.
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise LocalProtocolError(f"Sleep.seconds must be a number, not {type(seconds).__name__}")
    if not math.isfinite(seconds):
        raise LocalProtocolError("Sleep.seconds must be a finite number")


@attrs.frozen
class Sleep:
    """Ask the driver to wait ``seconds`` before resuming the flow."""

    seconds: float = attrs.field(validator=_finite_seconds)


@attrs.frozen
class Now:
    """Ask the driver for the current time (aware, UTC)."""


@attrs.frozen(eq=False)
class Shared:
    """Ask the driver for the result of the sub-flow ``start()``, shared per ``(owner, key)``.

    A sync driver simply runs ``start()`` to completion. An async driver runs it once per
    ``(owner, key)`` at a time: flows that ask while it is in flight all await the same result
    (or exception), so concurrent callers share one token refresh instead of starting one each.
    ``owner`` is held weakly and must support weak references.
    """

    owner: object
    key: Hashable
    start: Callable[[], Generator[Any, Any, Any]] = attrs.field(repr=False)


@attrs.frozen(eq=False)
class Deliver:
    """Ask the driver to call ``handler(event)`` (awaiting it when it returns an awaitable)."""

    event: object
    handler: Callable[[Any], object] = attrs.field(repr=False)


def _timeout(_instance: object, attribute: attrs.Attribute[float], seconds: float) -> None:
    # Every stream operation is bounded: a wait without end is a hang.
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise LocalProtocolError(f"{attribute.name} must be a positive, finite number of seconds")


def _stream_url(_instance: object, _attribute: object, url: str) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise LocalProtocolError("a stream URL is an absolute http or https URL")


class TimedOut(enum.Enum):
    """The type of :data:`TIMED_OUT`."""

    TIMED_OUT = "timed out"


#: What :class:`ReceiveBytes` gives when nothing arrived within its timeout (not an error:
#: the flow uses the timeout as its timer).
TIMED_OUT: Final = TimedOut.TIMED_OUT


@attrs.frozen
class OpenStream:
    """Ask the driver for a byte stream to the host and port of ``url`` (TLS for ``https``).

    Only the origin of ``url`` is used. The flow must have checked that the host is trusted
    before it asks (the Trouter client does, through :meth:`Hosts.require_trusted`).
    """

    url: str = attrs.field(validator=_stream_url, repr=False)
    #: Bounds connecting and the TLS handshake.
    timeout: float = attrs.field(validator=_timeout)


@attrs.frozen(eq=False)
class SendBytes:
    """Ask the driver to write all of ``data`` to ``stream`` within ``timeout`` seconds."""

    stream: object
    data: bytes = attrs.field(repr=False)
    timeout: float = attrs.field(validator=_timeout)


@attrs.frozen(eq=False)
class ReceiveBytes:
    """Ask the driver for at most ``max_bytes`` bytes from ``stream``, waiting ``timeout`` s."""

    stream: object
    max_bytes: int
    timeout: float = attrs.field(validator=_timeout)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int):
            raise LocalProtocolError("max_bytes must be a whole number")
        if self.max_bytes < 1:
            raise LocalProtocolError("max_bytes must be at least 1")


@attrs.frozen(eq=False)
class CloseStream:
    """Ask the driver to close ``stream`` (closing a closed stream does nothing)."""

    stream: object


Effect: TypeAlias = (
    HttpRequest
    | Sleep
    | Now
    | Shared
    | Deliver
    | OpenStream
    | SendBytes
    | ReceiveBytes
    | CloseStream
)
#: A flow yields effects, receives their outcomes and returns ``T``.
Flow: TypeAlias = Generator[Effect, Any, T]
EFFECT_TYPES = (
    HttpRequest,
    Sleep,
    Now,
    Shared,
    Deliver,
    OpenStream,
    SendBytes,
    ReceiveBytes,
    CloseStream,
)


def now() -> Generator[Effect, Any, dt.datetime]:
    """Sub-flow: the current time, as an aware UTC datetime."""
    value = yield Now()
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise LocalProtocolError("the driver must answer Now() with an aware datetime")
    return value.astimezone(dt.UTC)


def sleep(seconds: float) -> Generator[Effect, Any, None]:
    """Sub-flow: wait ``seconds`` (no effect when not positive).

    A duration that is not a finite number raises :class:`LocalProtocolError`: an endless or
    undefined wait is a bug in the policy that asked for it.
    """
    effect = Sleep(seconds)
    if effect.seconds > 0:
        yield effect


def shared(owner: object, key: Hashable, start: Callable[[], Flow[T]]) -> Flow[T]:
    """Sub-flow: the result of ``start()``, shared with concurrent flows asking for the same
    ``(owner, key)`` (see :class:`Shared`)."""
    result: T = yield Shared(owner, key, start)
    return result


def deliver(event: object, handler: Callable[[Any], object]) -> Flow[None]:
    """Sub-flow: hand ``event`` to ``handler`` through the driver (see :class:`Deliver`)."""
    yield Deliver(event, handler)


def request(req: HttpRequest) -> Generator[Effect, Any, HttpResponse]:
    """Sub-flow: send ``req`` and return the response."""
    response = yield req
    if not isinstance(response, HttpResponse):
        raise LocalProtocolError("the driver must answer an HttpRequest with an HttpResponse")
    return response


def open_stream(url: str, timeout: float) -> Flow[object]:
    """Sub-flow: a new byte stream to ``url``'s origin (see :class:`OpenStream`)."""
    stream = yield OpenStream(url, timeout)
    if stream is None:
        raise LocalProtocolError("the driver must answer OpenStream with a stream")
    return stream


def send_bytes(stream: object, data: bytes, timeout: float) -> Flow[None]:
    """Sub-flow: write ``data`` to ``stream`` (nothing is yielded for no data)."""
    if not isinstance(data, bytes | bytearray):
        raise LocalProtocolError("send_bytes takes bytes")
    if data:
        yield SendBytes(stream, bytes(data), timeout)


def receive_bytes(stream: object, max_bytes: int, timeout: float) -> Flow[bytes | TimedOut]:
    """Sub-flow: up to ``max_bytes`` bytes, ``b""`` at the end of the stream, or
    :data:`TIMED_OUT`."""
    data = yield ReceiveBytes(stream, max_bytes, timeout)
    if data is TIMED_OUT:
        return TimedOut.TIMED_OUT
    if not isinstance(data, bytes | bytearray) or len(data) > max_bytes:
        raise LocalProtocolError(
            "the driver must answer ReceiveBytes with at most max_bytes bytes or TIMED_OUT"
        )
    return bytes(data)


def close_stream(stream: object) -> Flow[None]:
    """Sub-flow: close ``stream``."""
    yield CloseStream(stream)


class Stepper(Generic[T]):
    """Drive a flow by hand: look at :attr:`pending`, answer it with :meth:`send`.

    ::

        step = Stepper(flow)
        while not step.done:
            step.send(answer_for(step.pending))
        result = step.result

    The flow starts at once. It is :attr:`done` when it returned, raised, or was closed; an
    exception it raises propagates out of the call that advanced it, and :attr:`result` then
    raises :class:`LocalProtocolError`. So does yielding something that is not an effect (the
    flow is closed first). Every misuse (answering a finished flow, reading the result too
    early) raises :class:`LocalProtocolError` and leaves the flow as it was.
    """

    def __init__(self, flow: Flow[T]) -> None:
        self._flow = flow
        self._pending: Effect | None = None
        self._outcome = "running"  # then "returned", "raised" or "closed"
        self._result: T | None = None
        self._advance(lambda: next(flow))

    def _advance(self, step: Any) -> None:
        try:
            effect = step()
        except StopIteration as stop:
            self._finish("returned")
            self._result = stop.value
            return
        except BaseException:
            self._finish("raised")
            raise
        if not isinstance(effect, EFFECT_TYPES):
            self._flow.close()
            self._finish("raised")
            # Only the type: an arbitrary object's repr could carry a secret.
            raise LocalProtocolError(f"the flow yielded {type(effect).__name__}, not an effect")
        self._pending = effect

    def _finish(self, outcome: str) -> None:
        self._pending = None
        self._outcome = outcome

    @property
    def done(self) -> bool:
        """Whether the flow has finished (returned, raised or been closed)."""
        return self._outcome != "running"

    @property
    def pending(self) -> Effect:
        """The effect the flow is waiting on."""
        if self._pending is None:
            raise LocalProtocolError("the flow has finished; nothing is pending")
        return self._pending

    @property
    def result(self) -> T:
        """The flow's return value, once it has returned."""
        if not self.done:
            raise LocalProtocolError("the flow has not finished")
        if self._outcome != "returned":
            raise LocalProtocolError(f"the flow {self._outcome} without a result")
        return self._result  # type: ignore[return-value]

    def send(self, value: Any) -> Effect | None:
        """Answer the pending effect; return the next one, or ``None`` when the flow finished."""
        if self.done:
            raise LocalProtocolError("the flow has finished")
        self._advance(lambda: self._flow.send(value))
        return self._pending

    def receive(self, response: HttpResponse) -> Effect | None:
        """Answer the pending request with ``response``."""
        if not isinstance(self.pending, HttpRequest):
            raise LocalProtocolError(
                f"the flow is waiting on {type(self.pending).__name__}, not a request"
            )
        if not isinstance(response, HttpResponse):
            raise LocalProtocolError(
                f"a request is answered by an HttpResponse, not {type(response).__name__}"
            )
        return self.send(response)

    def throw(self, exc: BaseException) -> Effect | None:
        """Raise ``exc`` inside the flow at its pending effect."""
        if self.done:
            raise LocalProtocolError("the flow has finished")
        if not isinstance(exc, BaseException):
            raise LocalProtocolError("throw takes an exception instance")
        self._advance(lambda: self._flow.throw(exc))
        return self._pending

    def close(self) -> None:
        """Stop the flow (its ``finally`` blocks run); closing a finished flow does nothing."""
        if self.done:
            return
        try:
            self._flow.close()
        finally:
            self._finish("closed")
