"""A scripted peer for testing flows: canned answers, a fake clock and a record of the traffic.

:class:`Peer` is to skyproto's flows what h11's ``ConnectionPair`` is to h11: the other side of
the conversation, in memory, deterministic and pure (no socket, no clock, no file, no sleep). It

* answers each :class:`~skyproto.HttpRequest` from, in this order, a script of answers in order
  (``Peer(answers=...)``), the queue of its route or URL prefix (:meth:`Peer.on`), a standing
  answer for it (:meth:`Peer.always`), and finally the pure :class:`~skyproto.emulator.Emulator`
  it was given (with none, an unexpected request fails the test);
* answers ``Now`` from a fake :class:`Clock` and ``Sleep`` by moving that clock on;
* runs ``Shared`` sub-flows and ``Deliver`` handlers as the sync driver does (but an
  ``AssertionError``, a failing test, is never thrown into the flow), and throws a
  :class:`~skyproto.TransportError` answer into the flow as a transport would;
* runs a flow to its end (:meth:`Peer.run`), or step by step until it waits on a chosen effect
  (:meth:`Peer.advance`), for state machines that answer some requests themselves;
* records every request (:attr:`Peer.sent`), its route, the time it was sent and its answer, and
  keeps one journal of requests, sleeps and deliveries in order.

An answer is an :class:`~skyproto.HttpResponse` (its ``url`` becomes the request's), an exception
(raised by the transport: a ``TransportError`` reaches the flow), :data:`PASS` (let the emulator
answer), ``Took(seconds, answer)`` (the answer, after that much fake time), or a callable that
takes the request and returns one of these::

    from skyproto.emulator import DEFAULT_ACCOUNT, Emulator
    from skyproto.emulator.testing import Peer

    peer = Peer(Emulator())
    account = Credentials(DEFAULT_ACCOUNT.user, DEFAULT_ACCOUNT.password)
    session = Session(peer.hosts, credentials=account)
    peer.run(session.connect())
    peer.on("ping", HttpResponse.build(401))
    peer.run(session.ping())
    assert peer.routes[-1] == "ping"

The peer is also a sync transport (:meth:`Peer.send`), a clock (``peer.clock``) and a sleeper
(:meth:`Peer.sleep`), so a test that needs the real drivers can pass it to ``run_sync``.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import attrs

from .._flow import Deliver, Flow, Now, Shared, Sleep, Stepper
from .._http import HttpRequest, HttpResponse
from ..errors import LocalProtocolError, TransportError
from ..hosts import Hosts
from .core import Emulator

__all__ = ["PASS", "T0", "Answer", "Clock", "Pass", "Peer", "Took", "drive"]

#: Where a :class:`Clock` starts unless told otherwise.
T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
#: Effects :meth:`Peer.run` answers at most before it calls the flow stuck.
MAX_STEPS = 100_000

_ACK_ID = re.compile(r"/messages/([^/?]+)/ack(?:\?|$)")


class Pass:
    """Let the emulator answer."""

    def __repr__(self) -> str:
        return "PASS"


#: Let the emulator answer this request.
PASS = Pass()


@attrs.frozen
class Took:
    """Answer ``answer`` after ``seconds`` of fake time."""

    seconds: float
    answer: Any


#: An HttpResponse, an exception, PASS, a Took, or a callable of the request returning one.
Answer: TypeAlias = Any


class Clock:
    """A fake clock: call it for the time; :meth:`advance` moves it on."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` on."""
        self.now += dt.timedelta(seconds=seconds)


class Peer:
    """The other side of a flow's conversation, scripted; see the module docstring.

    ``emulator`` answers whatever is not scripted. ``answers`` are used first, in order, for any
    request; :meth:`assert_used` checks none is left. ``durations`` gives the fake time a request
    on a route takes when its answer is not a :class:`Took` (a long poll, say). ``times``, if
    given, answer the first ``Now`` effects in order; then the clock does.
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        *,
        answers: Iterable[Answer] = (),
        start: dt.datetime = T0,
        durations: Mapping[str, float] | None = None,
        times: Iterable[dt.datetime] = (),
    ) -> None:
        self.emulator = emulator
        self.clock = Clock(start)
        self.times_told: deque[dt.datetime] = deque(times)
        self.durations = dict(durations or {})
        self.script: deque[Answer] = deque(answers)
        self.queues: dict[str, deque[Answer]] = {}
        self.standing: dict[str, Answer] = {}
        #: Every request, its route (``"?"`` when the emulator knows none), when it was sent,
        #: and the response it got (``None`` when the answer was an exception).
        self.sent: list[HttpRequest] = []
        self.routes: list[str] = []
        self.times: list[dt.datetime] = []
        self.answers: list[HttpResponse | None] = []
        #: Requests by route (``"ack 5"`` for the acknowledgement of message 5), ``"sleep"``
        #: and ``"deliver <id>"`` (see :meth:`handler`), in order.
        self.journal: list[str] = []
        self.sleeps: list[float] = []
        self.delivered: list[Any] = []

    def __repr__(self) -> str:
        return f"Peer(sent={len(self.sent)}, now={self.clock.now.isoformat()})"

    @property
    def hosts(self) -> Hosts:
        """The emulator's host profile (the default profile without an emulator)."""
        return self.emulator.hosts if self.emulator is not None else Hosts()

    # -- scripting ------------------------------------------------------------------------------

    def on(self, key: str, *answers: Answer) -> None:
        """Queue ``answers`` for the requests on route ``key``, or whose URL starts with ``key``
        when it holds ``://``; each is used once, in order."""
        self.queues.setdefault(key, deque()).extend(answers)

    def always(self, key: str, answer: Answer) -> None:
        """Answer every request on ``key`` (as in :meth:`on`) with ``answer`` once its queue is
        empty."""
        self.standing[key] = answer

    def assert_used(self) -> None:
        """Fail unless every answer given to the constructor was used."""
        assert not self.script, f"{len(self.script)} answer(s) left unused"

    def clear(self) -> None:
        """Forget what was recorded so far (the scripts stay)."""
        for record in (self.sent, self.routes, self.times, self.answers, self.journal):
            record.clear()
        self.sleeps.clear()
        self.delivered.clear()

    def set_scenario(self, **changes: Any) -> None:
        """Change the emulator's scenario (see :class:`~skyproto.emulator.Scenario`)."""
        assert self.emulator is not None, "this peer has no emulator"
        self.emulator.scenario = attrs.evolve(self.emulator.scenario, **changes)

    # -- looking at what happened ---------------------------------------------------------------

    def sent_to(self, route: str) -> list[HttpRequest]:
        """The requests sent on ``route``."""
        return [req for name, req in zip(self.routes, self.sent, strict=True) if name == route]

    def times_of(self, route: str) -> list[dt.datetime]:
        """When each request on ``route`` was sent."""
        return [at for name, at in zip(self.routes, self.times, strict=True) if name == route]

    def traffic(self) -> list[str]:
        """The journal without its sleeps and deliveries."""
        return [entry for entry in self.journal if not entry.startswith(("deliver", "sleep"))]

    # -- the transport, the clock and the sleeper -----------------------------------------------

    def route(self, request: HttpRequest) -> str:
        """``request``'s route name at the emulator, ``"?"`` when it has none."""
        found = self.emulator.route(request) if self.emulator is not None else None
        return found or "?"

    def send(self, request: HttpRequest) -> HttpResponse:
        """Answer ``request`` (see the module docstring); record it and its answer."""
        route = self.route(request)
        self.sent.append(request)
        self.routes.append(route)
        self.times.append(self.clock.now)
        found = _ACK_ID.search(request.url) if route == "ack" else None
        self.journal.append(f"ack {found.group(1)}" if found else route)
        self.answers.append(None)
        answer = self._answer(request, route)
        self.answers[-1] = answer
        return answer

    def sleep(self, seconds: float) -> None:
        """Sleep in fake time: record ``seconds`` as asked and move the clock on (not back)."""
        self.sleeps.append(seconds)
        self.journal.append("sleep")
        self.clock.advance(max(0.0, seconds))

    def handler(self, event: Any) -> None:
        """An event handler that records ``event`` (``"deliver <id>"`` in the journal)."""
        self.delivered.append(event)
        self.journal.append(f"deliver {getattr(event, 'id', '?')}")

    def _chosen(self, request: HttpRequest, route: str) -> Answer:
        if self.script:
            return self.script.popleft()
        keys = [key for key in self.queues if key == route or _prefix_of(key, request.url)]
        for key in keys:
            if self.queues[key]:
                return self.queues[key].popleft()
        for key, answer in self.standing.items():
            if key == route or _prefix_of(key, request.url):
                return answer
        return PASS

    def _answer(self, request: HttpRequest, route: str) -> HttpResponse:
        answer = self._chosen(request, route)
        for _ in range(100):  # a callable may return a callable; not for ever
            if not callable(answer) or isinstance(answer, BaseException | type):
                break
            answer = answer(request)
        if isinstance(answer, Took):
            self.clock.advance(answer.seconds)
            answer = answer.answer
        elif route in self.durations:
            self.clock.advance(self.durations[route])
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, Pass):
            assert self.emulator is not None, f"unexpected request {request!r}"
            return self.emulator.handle(request, self.clock.now)
        assert isinstance(answer, HttpResponse), f"not an answer: {type(answer).__name__}"
        return attrs.evolve(answer, url=request.url)

    # -- the driver -----------------------------------------------------------------------------

    def run(self, flow: Flow[Any], *, limit: int = MAX_STEPS) -> Any:
        """Run ``flow`` to its end against this peer, as ``run_sync`` would; return its result."""
        return self._drive(flow, limit)

    def advance(
        self, step: Stepper[Any], until: Callable[[Any], bool], *, limit: int = MAX_STEPS
    ) -> None:
        """Carry out ``step``'s effects until the one it waits on satisfies ``until`` (that one
        is left pending, for the test to answer or script) or the flow ends. An exception the
        flow raises propagates; read the result from ``step`` once it is done."""
        for _ in range(limit):
            if step.done or until(step.pending):
                return
            self._step(step)
        raise AssertionError(f"the flow did not stop within {limit} effects")

    def _drive(self, flow: Flow[Any], limit: int) -> Any:
        step = Stepper(flow)
        try:
            for _ in range(limit):
                if step.done:
                    return step.result
                self._step(step)
            raise AssertionError(f"the flow did not finish within {limit} effects")
        finally:
            step.close()

    def _step(self, step: Stepper[Any]) -> None:
        effect = step.pending
        if isinstance(effect, HttpRequest):
            try:
                response = self.send(effect)
            except TransportError as exc:
                step.throw(exc)
            else:
                step.receive(response)
        elif isinstance(effect, Now):
            step.send(self.times_told.popleft() if self.times_told else self.clock())
        elif isinstance(effect, Sleep):
            self.sleep(float(effect.seconds))
            step.send(None)
        elif isinstance(effect, Shared):
            try:
                outcome = self._drive(effect.start(), MAX_STEPS)
            except AssertionError:
                raise  # the test failed inside the sub-flow: not the flow's to handle
            except Exception as exc:
                step.throw(exc)
            else:
                step.send(outcome)
        elif isinstance(effect, Deliver):
            try:
                returned = effect.handler(effect.event)
            except AssertionError:
                raise
            except Exception as exc:
                step.throw(exc)
            else:
                if inspect.isawaitable(returned):
                    close = getattr(returned, "close", None)
                    if callable(close):
                        close()
                    raise LocalProtocolError("Peer.run needs a sync handler")
                step.send(None)
        else:
            raise LocalProtocolError(
                f"a flow yielded {type(effect).__name__}, which is not an effect"
            )


def _prefix_of(key: str, url: str) -> bool:
    return "://" in key and url.startswith(key)


def drive(
    flow: Flow[Any],
    answers: Iterable[Answer],
    *,
    sent: list[HttpRequest] | None = None,
    start: dt.datetime = T0,
    times: Iterable[dt.datetime] = (),
) -> Any:
    """Run ``flow`` on a peer without an emulator that answers with ``answers`` in order, and
    must use them all; return the flow's result.

    The requests go into ``sent`` as they are made (pass a list to look at them after an
    exception). ``Now`` is answered with ``times`` in order, then with ``start``.
    """
    peer = Peer(answers=answers, start=start, times=times)
    if sent is not None:
        peer.sent = sent
    result = peer.run(flow)
    peer.assert_used()
    return result
