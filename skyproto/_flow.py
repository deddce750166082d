"""Flows: protocol logic written as generators that yield effects.

A flow yields an *effect* and is resumed with its outcome:

============================  ===============================================
effect yielded                value sent back
============================  ===============================================
:class:`~skyproto.HttpRequest`  the :class:`~skyproto.HttpResponse` received
:class:`Sleep`                ``None``, once the time has passed
:class:`Now`                  the current time, an aware UTC ``datetime``
============================  ===============================================

A transport failure is thrown into the flow as :class:`~skyproto.TransportError` at the ``yield``
that asked for the request, so a flow may retry or give up. When the generator returns, its value
is the flow's result. Flows never sleep or read the clock themselves; that is the driver's job,
which keeps every policy here deterministic and testable with canned responses and a fake clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from typing import Any, Generic, TypeAlias, TypeVar

import attrs

from ._http import HttpRequest, HttpResponse
from .errors import LocalProtocolError

__all__ = ["Effect", "Flow", "Now", "Sleep", "Stepper", "now", "sleep"]

T = TypeVar("T")


@attrs.frozen
class Sleep:
    """Ask the driver to wait ``seconds`` before resuming the flow."""

    seconds: float


@attrs.frozen
class Now:
    """Ask the driver for the current time (aware, UTC)."""


Effect: TypeAlias = HttpRequest | Sleep | Now
#: A flow yields effects, receives their outcomes and returns ``T``.
Flow: TypeAlias = Generator[Effect, Any, T]


def now() -> Generator[Effect, Any, dt.datetime]:
    """Sub-flow: the current time, as an aware UTC datetime."""
    value = yield Now()
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise LocalProtocolError("the driver must answer Now() with an aware datetime")
    return value.astimezone(dt.UTC)


def sleep(seconds: float) -> Generator[Effect, Any, None]:
    """Sub-flow: wait ``seconds`` (no effect when not positive)."""
    if seconds > 0:
        yield Sleep(seconds)


def request(req: HttpRequest) -> Generator[Effect, Any, HttpResponse]:
    """Sub-flow: send ``req`` and return the response."""
    response = yield req
    if not isinstance(response, HttpResponse):
        raise LocalProtocolError("the driver must answer an HttpRequest with an HttpResponse")
    return response


class Stepper(Generic[T]):
    """Drive a flow by hand: look at :attr:`pending`, answer it with :meth:`send`.

    ::

        step = Stepper(flow)
        while not step.done:
            step.send(answer_for(step.pending))
        result = step.result
    """

    def __init__(self, flow: Flow[T]) -> None:
        self._flow = flow
        self._pending: Effect | None = None
        self._done = False
        self._result: T | None = None
        self._advance(lambda: next(flow))

    def _advance(self, step: Any) -> None:
        try:
            self._pending = step()
        except StopIteration as stop:
            self._done = True
            self._pending = None
            self._result = stop.value
        except BaseException:
            self._done = True
            self._pending = None
            raise

    @property
    def done(self) -> bool:
        return self._done

    @property
    def pending(self) -> Effect:
        """The effect the flow is waiting on."""
        if self._pending is None:
            raise LocalProtocolError("the flow has finished; nothing is pending")
        return self._pending

    @property
    def result(self) -> T:
        """The flow's return value, once :attr:`done`."""
        if not self._done:
            raise LocalProtocolError("the flow has not finished")
        return self._result  # type: ignore[return-value]

    def send(self, value: Any) -> Effect | None:
        """Answer the pending effect; return the next one, or ``None`` when the flow finished."""
        if self._done:
            raise LocalProtocolError("the flow has finished")
        self._advance(lambda: self._flow.send(value))
        return self._pending

    def receive(self, response: HttpResponse) -> Effect | None:
        """Answer the pending request with ``response``."""
        if not isinstance(self.pending, HttpRequest):
            raise LocalProtocolError(f"the flow is waiting on {self.pending!r}, not a request")
        return self.send(response)

    def throw(self, exc: BaseException) -> Effect | None:
        """Raise ``exc`` inside the flow at its pending effect."""
        if self._done:
            raise LocalProtocolError("the flow has finished")
        self._advance(lambda: self._flow.throw(exc))
        return self._pending

    def close(self) -> None:
        self._flow.close()
        self._done = True
        self._pending = None
