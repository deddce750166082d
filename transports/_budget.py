"""Connection budgets: long polls and short calls never wait for each other's connections.

A long poll (:attr:`HttpRequest.long_poll <skyproto.HttpRequest.long_poll>`, the core's one
marker) may hold its connection for the server's whole hold time. Sent from the same pool as
everything else, a few hundred held polls fill the pool and every short call (an ack, a ping, a
login) then waits for a poll to end. So every transport keeps two budgets:

* ``connections``: short calls in flight at once (:data:`DEFAULT_CONNECTIONS`);
* ``poll_connections``: long polls in flight at once (:data:`DEFAULT_POLL_CONNECTIONS`).

A request first takes a slot in its budget, waiting at most ``pool_timeout`` seconds
(:data:`DEFAULT_POOL_TIMEOUT`); then its own ``timeout`` starts, connect to last byte. No slot
in time is a :class:`~skyproto.TransportTimeout` (``PoolTimeout``), which the core's retry and
backoff policies handle like any other timeout. The async budgets hand a freed slot to the
longest waiter; the sync ones (a lock and a condition) wake the longest waiter too, but a request
arriving just then may take the slot first, so order is not guaranteed there, only the bound.

The slots are counted here rather than left to the client library's pool, because that is the
cheap place to queue: httpcore scans every queued request against every connection on each
change of its pool, so a queue of a thousand requests in front of it costs quadratic CPU, while
a queue in front of a semaphore costs nothing. Each transport sizes the pools it creates to its
budgets, so the library never queues by itself.
"""

from __future__ import annotations

import threading
import time

from skyproto._http import HttpRequest
from skyproto.calls import check_seconds
from skyproto.errors import LocalProtocolError, TransportError

from ._drive import transport_error

__all__ = [
    "DEFAULT_CONNECTIONS",
    "DEFAULT_POLL_CONNECTIONS",
    "DEFAULT_POOL_TIMEOUT",
    "Budgets",
    "PoolTimeout",
    "budget_name",
    "check_connections",
    "pool_timeout_error",
]

#: Short calls (everything but long polls) one transport has in flight at once.
DEFAULT_CONNECTIONS = 32
#: Long polls one transport holds open at once: one per session sharing it.
DEFAULT_POLL_CONNECTIONS = 2048
#: Seconds a request may wait for a slot in its budget before it fails.
DEFAULT_POOL_TIMEOUT = 30.0


class PoolTimeout(TimeoutError):
    """No slot came free in a budget within the pool timeout."""


def check_connections(value: object, what: str) -> int:
    """``value`` if it is a positive whole number, else :class:`LocalProtocolError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LocalProtocolError(f"{what} must be a positive whole number, not {value!r}")
    return value


def budget_name(request: HttpRequest) -> str:
    """The budget ``request`` is sent from, as messages name it."""
    return "long-poll" if request.long_poll else "short-call"


def pool_timeout_error(request: HttpRequest) -> TransportError:
    """The :class:`TransportTimeout` for a request that found no slot in its budget in time."""
    reason = PoolTimeout(f"no free connection in the {budget_name(request)} budget")
    return transport_error(request, reason, timed_out=True)


class Budgets:
    """The two budgets of a sync transport (thread-safe); the async twin is in ``httpx.py``."""

    def __init__(self, connections: int, poll_connections: int, pool_timeout: float) -> None:
        self.connections = check_connections(connections, "connections")
        self.poll_connections = check_connections(poll_connections, "poll_connections")
        self.pool_timeout = check_seconds(pool_timeout, "pool_timeout")
        self._short = _Slots(self.connections)
        self._poll = _Slots(self.poll_connections)

    def slot(self, request: HttpRequest) -> _Slots:
        """A context manager holding a slot of ``request``'s budget while the exchange runs."""
        slots = self._poll if request.long_poll else self._short
        if not slots.take(self.pool_timeout):
            raise pool_timeout_error(request)
        return slots


class _Slots:
    """A counted set of slots: ``threading.BoundedSemaphore``'s job at a third of its cost.

    Every request takes and gives back a slot, and the semaphore's Python-level condition costs
    a few microseconds each way even when nobody waits. Here a free slot costs one C-level lock;
    the condition is used only while some thread waits. Leaving the context gives one back.
    """

    __slots__ = ("_free", "_lock", "_ready", "_size", "_waiting")

    def __init__(self, size: int) -> None:
        self._size = size
        self._free = size
        self._waiting = 0
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)

    def take(self, timeout: float) -> bool:
        """Take a slot, waiting up to ``timeout`` seconds; ``False`` if none came free."""
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return True
            deadline = time.monotonic() + timeout
            self._waiting += 1
            try:
                while self._free <= 0:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._ready.wait(left)
            finally:
                self._waiting -= 1
            self._free -= 1
            return True

    def give(self) -> None:
        """Give a slot back, waking one waiting thread if there is one."""
        with self._lock:
            if self._free >= self._size:
                raise LocalProtocolError("a budget slot was given back that was never taken")
            self._free += 1
            if self._waiting:
                self._ready.notify()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.give()
