"""The twin drivers, run_sync and run_async, against fake transports, clocks and sleepers.

Every behaviour is checked on both twins through one harness, so a difference between them fails.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import inspect
import math
import threading
import warnings
from collections.abc import Generator
from typing import Any

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st
from skyproto.transports import WireHeads, check_limits, run_async, run_sync, wire_head
from skyproto.transports._drive import utc_now

from skyproto import (
    Flow,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    Now,
    Sleep,
    TransportError,
    TransportTimeout,
)
from skyproto._flow import deliver, now, request, shared, sleep

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
REQ = HttpRequest("GET", "https://api.skype.com/users/self/profile")
OK = HttpResponse(200, (("Content-Type", "text/plain"),), b"fine", REQ.url)
Answer = HttpResponse | BaseException


class Harness:
    """One twin, with a scripted transport, a fake clock and a recording sleeper."""

    def __init__(self, twin: str, answers: list[Answer] | None = None) -> None:
        self.twin = twin
        self.answers = list(answers or [])
        self.sent: list[HttpRequest] = []
        self.slept: list[float] = []
        self.clock_reads = 0

    def _answer(self, req: HttpRequest) -> HttpResponse:
        self.sent.append(req)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _clock(self) -> dt.datetime:
        self.clock_reads += 1
        return T0 + dt.timedelta(seconds=sum(self.slept))

    async def run(self, flow: Flow[Any]) -> Any:
        if self.twin == "sync":
            harness = self

            class SyncFake:
                def send(self, req: HttpRequest) -> HttpResponse:
                    return harness._answer(req)

            return run_sync(flow, SyncFake(), clock=self._clock, sleep=self.slept.append)

        harness = self

        class AsyncFake:
            async def send(self, req: HttpRequest) -> HttpResponse:
                await asyncio.sleep(0)
                return harness._answer(req)

        async def fake_sleep(seconds: float) -> None:
            self.slept.append(seconds)

        return await run_async(flow, AsyncFake(), clock=self._clock, sleep=fake_sleep)


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Tracked:
    """Wraps a flow function so a test can see how the generator ended."""

    def __init__(self) -> None:
        self.finally_ran = False
        self.caught: list[BaseException] = []
        self.gen: Generator[Any, Any, Any] | None = None

    def closed(self) -> bool:
        assert self.gen is not None
        return inspect.getgeneratorstate(self.gen) == inspect.GEN_CLOSED


def one_request(track: Tracked) -> Flow[bytes]:
    try:
        response = yield from request(REQ)
        return response.body
    finally:
        track.finally_ran = True


def retrying(track: Tracked, attempts: int) -> Flow[str]:
    for attempt in range(attempts):
        try:
            response = yield from request(REQ)
        except TransportError as exc:
            track.caught.append(exc)
            continue
        return f"{response.status} after {attempt + 1}"
    return "gave up"


def start(track: Tracked, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    track.gen = gen
    return gen


async def test_request_and_response_round_trip(twin: str) -> None:
    track = Tracked()
    harness = Harness(twin, [OK])
    assert await harness.run(start(track, one_request(track))) == b"fine"
    assert harness.sent == [REQ]
    assert track.finally_ran
    assert track.closed()


async def test_flow_without_effects_returns_at_once(twin: str) -> None:
    def immediate() -> Flow[int]:
        return 42
        yield  # pragma: no cover - makes this a generator

    harness = Harness(twin)
    assert await harness.run(immediate()) == 42
    assert harness.sent == []


async def test_transport_error_is_thrown_in_and_the_flow_may_continue(twin: str) -> None:
    track = Tracked()
    refused = TransportError("ConnectionRefusedError: GET https://api.skype.com/x")
    late = TransportTimeout("ReadTimeout: GET https://api.skype.com/x")
    harness = Harness(twin, [refused, late, OK])
    assert await harness.run(start(track, retrying(track, 5))) == "200 after 3"
    assert track.caught == [refused, late]
    assert track.caught[0] is refused  # the very object the transport raised
    assert harness.sent == [REQ, REQ, REQ]
    assert track.closed()


async def test_transport_error_the_flow_does_not_catch_leaves_the_driver(twin: str) -> None:
    track = Tracked()
    refused = TransportError("ConnectionRefusedError: GET https://api.skype.com/x")
    harness = Harness(twin, [refused])
    with pytest.raises(TransportError) as caught:
        await harness.run(start(track, one_request(track)))
    assert caught.value is refused
    assert track.finally_ran
    assert track.closed()


async def test_thrown_error_arrives_at_the_yield_that_asked(twin: str) -> None:
    where: list[str] = []

    def flow() -> Flow[str]:
        try:
            yield REQ
        except TransportError:
            where.append("first")
        try:
            yield REQ
        except TransportError:  # pragma: no cover - the second request succeeds
            where.append("second")
        return "done"

    harness = Harness(twin, [TransportError("x"), OK])
    assert await harness.run(flow()) == "done"
    assert where == ["first"]


async def test_other_transport_exceptions_are_not_thrown_in(twin: str) -> None:
    seen: list[BaseException] = []
    track = Tracked()

    def flow() -> Flow[str]:
        try:
            yield REQ
        except Exception as exc:  # pragma: no cover - must not happen
            seen.append(exc)
            return "swallowed"
        finally:
            track.finally_ran = True
        return "unreachable"  # pragma: no cover

    harness = Harness(twin, [RuntimeError("bug in a transport")])
    with pytest.raises(RuntimeError, match="bug in a transport"):
        await harness.run(start(track, flow()))
    assert seen == []
    assert track.finally_ran
    assert track.closed()


async def test_exception_raised_by_the_flow_propagates_and_closes_it(twin: str) -> None:
    def flow() -> Flow[None]:
        yield REQ
        raise LookupError("the flow's own error")

    harness = Harness(twin, [OK])
    gen = flow()
    with pytest.raises(LookupError, match="the flow's own error"):
        await harness.run(gen)
    assert inspect.getgeneratorstate(gen) == inspect.GEN_CLOSED


async def test_flow_failing_before_its_first_effect(twin: str) -> None:
    def flow() -> Flow[None]:
        raise LocalProtocolError("bad argument")
        yield  # pragma: no cover

    with pytest.raises(LocalProtocolError, match="bad argument"):
        await Harness(twin).run(flow())


async def test_sleep_effect_uses_the_injected_sleeper(twin: str) -> None:
    def flow() -> Flow[list[float]]:
        yield from sleep(1.5)
        yield Sleep(2)
        yield Sleep(-3.0)  # a negative wait is no wait, in both twins
        return []

    harness = Harness(twin)
    assert await harness.run(flow()) == []
    assert harness.slept == [1.5, 2.0, 0.0]
    assert all(type(s) is float for s in harness.slept)


@pytest.mark.parametrize("seconds", [math.inf, -math.inf, math.nan, "1", None, True])
async def test_sleep_effect_with_a_bad_duration_is_refused(twin: str, seconds: Any) -> None:
    track = Tracked()

    def flow() -> Flow[None]:
        try:
            yield Sleep(seconds)
        finally:
            track.finally_ran = True

    harness = Harness(twin)
    with pytest.raises(LocalProtocolError, match=r"Sleep\.seconds must be"):
        await harness.run(flow())
    assert harness.slept == []
    assert track.finally_ran


async def test_now_effect_uses_the_injected_clock(twin: str) -> None:
    def flow() -> Flow[tuple[dt.datetime, dt.datetime]]:
        first = yield from now()
        yield Sleep(30)
        second = yield from now()
        return first, second

    harness = Harness(twin)
    first, second = await harness.run(flow())
    assert first == T0
    assert second == T0 + dt.timedelta(seconds=30)
    assert harness.clock_reads == 2


async def test_raw_now_effect_gets_the_clock_value_unchanged(twin: str) -> None:
    def flow() -> Flow[Any]:
        value = yield Now()
        return value

    assert await Harness(twin).run(flow()) == T0


async def test_unknown_effect_is_raised_by_the_driver_not_thrown_in(twin: str) -> None:
    track = Tracked()

    def flow() -> Flow[str]:
        try:
            yield "skypetoken=very-secret"  # type: ignore[misc]
        except LocalProtocolError:  # pragma: no cover - the driver must not throw it in
            return "caught inside"
        finally:
            track.finally_ran = True
        return "unreachable"  # pragma: no cover

    with pytest.raises(LocalProtocolError) as caught:
        await Harness(twin).run(start(track, flow()))
    assert str(caught.value) == "a flow yielded str, which is not an effect"
    assert "very-secret" not in repr(caught.value)
    assert track.finally_ran
    assert track.closed()


def test_run_sync_refuses_an_async_transport() -> None:
    class AsyncOnly:
        async def send(self, req: HttpRequest) -> HttpResponse:  # pragma: no cover
            return OK

    track = Tracked()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(LocalProtocolError, match="run_sync needs a sync transport"):
            run_sync(start(track, one_request(track)), AsyncOnly())  # type: ignore[arg-type]
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    assert track.closed()


async def test_run_async_refuses_a_sync_transport() -> None:
    class SyncOnly:
        def send(self, req: HttpRequest) -> HttpResponse:
            return OK

    track = Tracked()
    with pytest.raises(LocalProtocolError, match="run_async needs an async transport"):
        await run_async(start(track, one_request(track)), SyncOnly())  # type: ignore[arg-type]
    assert track.closed()


async def test_run_async_does_not_block_the_event_loop() -> None:
    """While the driver waits on its transport and its sleeps, other tasks keep running."""

    class SlowTransport:
        async def send(self, req: HttpRequest) -> HttpResponse:
            await asyncio.sleep(0.05)
            return OK

    def flow() -> Flow[int]:
        yield from request(REQ)
        yield Sleep(0.05)  # carried out by the default sleeper, asyncio.sleep
        response = yield from request(REQ)
        return response.status

    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    async def driven() -> int:
        try:
            return await run_async(flow(), SlowTransport())
        finally:
            stop.set()

    status, _ = await asyncio.gather(driven(), ticker())
    assert status == 200
    assert ticks >= 10  # about 30 in 0.15 s; a blocked loop would give 1


async def test_run_async_cancellation_closes_the_flow() -> None:
    started = asyncio.Event()

    class Hanging:
        async def send(self, req: HttpRequest) -> HttpResponse:
            started.set()
            await asyncio.sleep(60)
            return OK  # pragma: no cover

    track = Tracked()
    task = asyncio.create_task(run_async(start(track, one_request(track)), Hanging()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert track.finally_ran
    assert track.closed()


def test_default_clock_is_aware_utc() -> None:
    value = utc_now()
    assert value.tzinfo is dt.UTC


def test_run_sync_default_sleeper_really_waits() -> None:
    import time

    def flow() -> Flow[float]:
        begin = time.monotonic()
        yield Sleep(0.02)
        return time.monotonic() - begin

    class Unused:
        def send(self, req: HttpRequest) -> HttpResponse:  # pragma: no cover
            raise AssertionError

    assert run_sync(flow(), Unused()) >= 0.02


@given(
    script=st.lists(
        st.sampled_from(["ok", "error", "timeout", "sleep", "now"]), min_size=0, max_size=8
    )
)
def test_twins_agree_on_any_script(script: list[str]) -> None:
    """Both twins send the same requests, sleep the same and return the same value."""

    def flow() -> Flow[list[str]]:
        log: list[str] = []
        for step in script:
            if step == "sleep":
                yield Sleep(1)
                log.append("slept")
            elif step == "now":
                log.append((yield from now()).isoformat())
            else:
                try:
                    response = yield from request(REQ)
                except TransportTimeout:
                    log.append("timeout")
                except TransportError:
                    log.append("error")
                else:
                    log.append(str(response.status))
        return log

    def answers() -> list[Answer]:
        table: dict[str, Answer] = {
            "ok": OK,
            "error": TransportError("refused"),
            "timeout": TransportTimeout("late"),
        }
        return [table[step] for step in script if step in table]

    results = []
    for twin in ("sync", "async"):
        harness = Harness(twin, answers())
        result = asyncio.run(harness.run(flow()))
        results.append((result, harness.sent, harness.slept, harness.answers))
    assert results[0] == results[1]
    expected: list[str] = []
    sleeps = 0
    for step in script:
        if step == "now":
            expected.append((T0 + dt.timedelta(seconds=sleeps)).isoformat())
        else:
            sleeps += step == "sleep"
            expected.append({"ok": "200", "sleep": "slept"}.get(step, step))
    assert results[0][0] == expected
    assert results[0][3] == []  # every scripted answer was used


# -- Shared and Deliver -------------------------------------------------------------------------


class Owner:
    """Something a Shared effect can be keyed on (weakly referenced by run_async)."""


def fetch_body(calls: list[str]) -> Flow[bytes]:
    calls.append("started")
    response = yield from request(REQ)
    return response.body


async def test_shared_result_is_sent_back_and_its_errors_thrown_in(twin: str) -> None:
    owner, calls = Owner(), []
    harness = Harness(twin, [OK, TransportTimeout("slow")])

    def twice() -> Flow[list[object]]:
        outcomes: list[object] = [(yield from shared(owner, "k", lambda: fetch_body(calls)))]
        try:
            yield from shared(owner, "k", lambda: fetch_body(calls))
        except TransportTimeout as exc:
            outcomes.append(exc)
        return outcomes

    first, second = await harness.run(twice())
    assert first == b"fine"
    assert isinstance(second, TransportTimeout)
    assert calls == ["started", "started"]  # one after the other: two runs, not one


async def test_run_async_runs_one_shared_flow_for_concurrent_askers() -> None:
    owner, calls = Owner(), []
    harness = Harness("async", [OK])

    def asker() -> Flow[bytes]:
        return (yield from shared(owner, "refresh", lambda: fetch_body(calls)))

    results = await asyncio.gather(*(harness.run(asker()) for _ in range(4)))
    assert results == [b"fine"] * 4
    assert calls == ["started"]
    assert len(harness.sent) == 1


async def test_run_async_cancelling_one_waiter_leaves_the_shared_run_to_the_others() -> None:
    owner, calls = Owner(), []
    release = asyncio.Event()

    class Slow:
        async def send(self, req: HttpRequest) -> HttpResponse:
            await release.wait()
            return OK

    def asker() -> Flow[bytes]:
        return (yield from shared(owner, "refresh", lambda: fetch_body(calls)))

    first = asyncio.ensure_future(run_async(asker(), Slow()))
    second = asyncio.ensure_future(run_async(asker(), Slow()))
    await asyncio.sleep(0.01)
    first.cancel()
    release.set()
    assert await second == b"fine"
    assert first.cancelled()
    assert calls == ["started"]


async def test_run_async_refuses_an_owner_without_weak_references() -> None:
    def asker() -> Flow[bytes]:
        return (yield from shared(42, "k", lambda: fetch_body([])))

    with pytest.raises(LocalProtocolError, match="weak references"):
        await Harness("async", [OK]).run(asker())


async def test_deliver_calls_the_handler_and_throws_its_error_in(twin: str) -> None:
    seen: list[object] = []

    def handler(event: object) -> None:
        if event == "bad":
            raise ValueError("handler failed")
        seen.append(event)

    def flow() -> Flow[str]:
        yield from deliver("good", handler)
        try:
            yield from deliver("bad", handler)
        except ValueError as exc:
            return str(exc)
        return "not thrown"

    assert await Harness(twin).run(flow()) == "handler failed"
    assert seen == ["good"]


async def test_run_async_awaits_a_coroutine_handler() -> None:
    seen: list[object] = []

    async def handler(event: object) -> None:
        await asyncio.sleep(0)
        seen.append(event)

    def flow() -> Flow[list[object]]:
        yield from deliver(1, handler)
        return list(seen)  # the handler finished before the flow resumed

    assert await Harness("async").run(flow()) == [1]


def test_run_sync_refuses_a_coroutine_handler_without_leaking_it() -> None:
    async def handler(event: object) -> None:  # pragma: no cover
        pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(LocalProtocolError, match="run_sync needs a sync handler"):
            run_sync(deliver(1, handler), object())  # type: ignore[arg-type]
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []


def test_check_limits_gives_the_pair_or_names_the_first_bad_one() -> None:
    assert check_limits(2, 10) == (2.0, 10)
    with pytest.raises(LocalProtocolError, match="default_timeout"):
        check_limits(float("nan"), 0)
    with pytest.raises(LocalProtocolError, match="max_body_size"):
        check_limits(2, True)


def _counting_heads(size: int = 3) -> tuple[WireHeads[h11.Request], list[str]]:
    made: list[str] = []

    def prepare(request: HttpRequest, head: h11.Request) -> h11.Request:
        made.append(request.url)
        return head

    return WireHeads(prepare, size), made


def test_wire_heads_work_a_head_out_once_and_give_the_same_one_again() -> None:
    heads, made = _counting_heads()
    first = heads.get(HttpRequest("POST", "https://x.skype.com/a", (("A", "1"),), b"{}"))
    again = heads.get(HttpRequest("POST", "https://x.skype.com/a", (("A", "1"),), b"[]"))
    assert again is first
    assert made == ["https://x.skype.com/a"]
    assert first == wire_head(HttpRequest("POST", "https://x.skype.com/a", (("A", "1"),), b"{}"))


@pytest.mark.parametrize(
    "other",
    [
        HttpRequest("PUT", "https://x.skype.com/a", (("A", "1"),), b"{}"),
        HttpRequest("POST", "https://x.skype.com/b", (("A", "1"),), b"{}"),
        HttpRequest("POST", "https://x.skype.com/a", (("A", "2"),), b"{}"),
        HttpRequest("POST", "https://x.skype.com/a", (("a", "1"),), b"{}"),
        HttpRequest("POST", "https://x.skype.com/a", (("A", "1"),), b"{ }"),  # Content-Length
    ],
)
def test_wire_heads_tell_apart_whatever_changes_the_head(other: HttpRequest) -> None:
    heads, _ = _counting_heads()
    base = heads.get(HttpRequest("POST", "https://x.skype.com/a", (("A", "1"),), b"{}"))
    got = heads.get(other)
    assert got is not base
    assert got == wire_head(other)


def test_wire_heads_are_bounded_forget_the_oldest_and_clear() -> None:
    heads, made = _counting_heads(size=3)
    urls = [f"https://x.skype.com/{n}" for n in range(5)]
    for url in urls:
        heads.get(HttpRequest("GET", url))
    assert len(heads) == 3
    heads.get(HttpRequest("GET", urls[-1]))  # kept
    heads.get(HttpRequest("GET", urls[0]))  # forgotten, worked out again
    assert made == [*urls, urls[0]]
    assert len(heads) == 3
    heads.clear()
    assert len(heads) == 0


def test_wire_heads_refuse_what_wire_head_refuses_and_keep_nothing() -> None:
    heads, made = _counting_heads()
    bad = HttpRequest("GET", "https://x.skype.com/a", (("Bad Name", "1"),))
    with pytest.raises(LocalProtocolError):
        heads.get(bad)
    assert made == []
    assert len(heads) == 0


@pytest.mark.parametrize("size", [0, -1, True, 2.5])
def test_wire_heads_size_is_a_positive_whole_number(size: Any) -> None:
    with pytest.raises(LocalProtocolError, match="size"):
        WireHeads(lambda request, head: head, size)


def test_wire_heads_shared_by_threads_stay_bounded() -> None:
    heads, _ = _counting_heads(size=8)
    requests = [HttpRequest("GET", f"https://x.skype.com/{n}") for n in range(64)]

    def work(offset: int) -> None:
        for n in range(2000):
            request = requests[(n * 7 + offset) % len(requests)]
            assert (
                heads.get(request).target
                == request.url.removeprefix("https://x.skype.com").encode()
            )

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(heads) <= 8
