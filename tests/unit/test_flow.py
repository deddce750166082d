"""Flows, their effects and the Stepper that drives them by hand (skyproto._flow)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from typing import Any

import pytest

from skyproto import (
    Flow,
    HttpRequest,
    HttpResponse,
    LocalProtocolError,
    Now,
    Sleep,
    Stepper,
    TransportError,
)
from skyproto._flow import Effect, now, request, sleep

REQ = HttpRequest("GET", "https://api.skype.com/users/self/profile")
OK = HttpResponse(200, (), b"ok", REQ.url)
T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


def fetch_twice() -> Flow[list[int]]:
    first = yield from request(REQ)
    second = yield from request(REQ)
    return [first.status, second.status]


def timed() -> Flow[tuple[dt.datetime, dt.datetime]]:
    before = yield from now()
    yield from sleep(2.5)
    after = yield from now()
    return before, after


def test_stepper_walks_a_flow() -> None:
    step = Stepper(fetch_twice())
    assert not step.done
    assert step.pending is REQ
    assert step.receive(OK) is REQ
    assert step.pending is REQ
    assert step.receive(HttpResponse(204)) is None
    assert step.done
    assert step.result == [200, 204]


def test_stepper_answers_now_and_sleep_with_send() -> None:
    step = Stepper(timed())
    assert step.pending == Now()
    assert step.send(T0) == Sleep(2.5)
    assert step.send(None) == Now()
    assert step.send(T0 + dt.timedelta(seconds=2.5)) is None
    assert step.result == (T0, T0 + dt.timedelta(seconds=2.5))


def test_a_flow_without_effects_is_done_at_once() -> None:
    def immediate() -> Flow[str]:
        return "ready"
        yield  # pragma: no cover  (makes this a generator)

    step = Stepper(immediate())
    assert step.done
    assert step.result == "ready"
    with pytest.raises(LocalProtocolError, match="nothing is pending"):
        _ = step.pending


def test_now_converts_to_utc_and_refuses_naive_times() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    step = Stepper(now())
    step.send(dt.datetime(2024, 5, 6, 9, 8, 9, tzinfo=plus_two))
    assert step.result == T0
    assert step.result.tzinfo is dt.UTC

    class NoOffset(dt.tzinfo):
        def utcoffset(self, _when: dt.datetime | None) -> None:
            return None

    for bad in (dt.datetime(2024, 5, 6), dt.datetime(2024, 5, 6, tzinfo=NoOffset()), 0, None):
        step = Stepper(now())
        with pytest.raises(LocalProtocolError, match="aware datetime"):
            step.send(bad)
        assert step.done


@pytest.mark.parametrize("seconds", [0, 0.0, -1, -0.5])
def test_sleep_not_positive_yields_nothing(seconds: float) -> None:
    step = Stepper(sleep(seconds))
    assert step.done
    assert step.result is None


@pytest.mark.parametrize("seconds", [1, 2.5, 1e-9])
def test_sleep_positive_yields_one_sleep(seconds: float) -> None:
    step = Stepper(sleep(seconds))
    assert step.pending == Sleep(seconds)
    assert step.send(None) is None
    assert step.done


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), float("-inf"), "1", True, None])
def test_sleep_refuses_what_is_not_a_finite_number(seconds: Any) -> None:
    with pytest.raises(LocalProtocolError, match=r"^Sleep\.seconds must be a (finite )?number"):
        Stepper(sleep(seconds))
    with pytest.raises(LocalProtocolError, match=r"^Sleep\.seconds must be a (finite )?number"):
        Sleep(seconds)


def test_request_refuses_an_answer_that_is_not_a_response() -> None:
    step = Stepper(request(REQ))
    with pytest.raises(LocalProtocolError, match="answer an HttpRequest with an HttpResponse"):
        step.send("not a response")
    assert step.done


def test_effects_are_frozen_values() -> None:
    assert Sleep(1.0) == Sleep(1.0)
    assert Sleep(1.0) != Sleep(2.0)
    assert Now() == Now()
    with pytest.raises(AttributeError):
        Sleep(1.0).seconds = 2.0  # type: ignore[misc]


# -- Stepper misuse and errors ------------------------------------------------------------------


def test_receive_while_waiting_on_something_else_changes_nothing() -> None:
    step = Stepper(timed())
    with pytest.raises(LocalProtocolError, match="waiting on Now, not a request"):
        step.receive(OK)
    assert step.pending == Now()
    assert not step.done


def test_receive_refuses_a_non_response_before_the_flow_sees_it() -> None:
    step = Stepper(fetch_twice())
    with pytest.raises(LocalProtocolError, match="not dict"):
        step.receive({"status": 200})  # type: ignore[arg-type]
    assert step.pending is REQ
    assert not step.done


def test_result_before_the_end() -> None:
    step = Stepper(fetch_twice())
    with pytest.raises(LocalProtocolError, match="has not finished"):
        _ = step.result


def test_calls_after_the_end_are_refused() -> None:
    step = Stepper(request(REQ))
    step.receive(OK)
    for call in (
        lambda: step.send(None),
        lambda: step.receive(OK),
        lambda: step.throw(TransportError("x")),
    ):
        with pytest.raises(LocalProtocolError, match="finished"):
            call()
    with pytest.raises(LocalProtocolError, match="nothing is pending"):
        _ = step.pending
    assert step.result is OK


def retrying() -> Flow[str]:
    for attempt in range(3):
        try:
            yield from request(REQ)
        except TransportError:
            continue
        return f"answered on attempt {attempt + 1}"
    raise TransportError("gave up")


def test_throw_is_raised_at_the_pending_effect() -> None:
    step = Stepper(retrying())
    assert step.throw(TransportError("reset")) is REQ
    assert step.receive(OK) is None
    assert step.result == "answered on attempt 2"


def test_an_exception_the_flow_lets_out_propagates_and_ends_it() -> None:
    step = Stepper(retrying())
    step.throw(TransportError("1"))
    step.throw(TransportError("2"))
    with pytest.raises(TransportError, match="gave up"):
        step.throw(TransportError("3"))
    assert step.done
    with pytest.raises(LocalProtocolError, match="the flow raised without a result"):
        _ = step.result


def test_throw_refuses_a_non_exception() -> None:
    step = Stepper(retrying())
    with pytest.raises(LocalProtocolError, match="exception instance"):
        step.throw("boom")  # type: ignore[arg-type]
    assert step.pending is REQ


def test_an_exception_at_start_propagates_from_the_constructor() -> None:
    def broken() -> Flow[None]:
        raise ValueError("at start")
        yield  # pragma: no cover

    with pytest.raises(ValueError, match="at start"):
        Stepper(broken())


def test_close_runs_finally_blocks_and_ends_the_flow() -> None:
    cleaned: list[str] = []

    def guarded() -> Flow[None]:
        try:
            yield from request(REQ)
        finally:
            cleaned.append("finally")

    step = Stepper(guarded())
    step.close()
    assert cleaned == ["finally"]
    assert step.done
    with pytest.raises(LocalProtocolError, match="the flow closed without a result"):
        _ = step.result
    step.close()  # a second close does nothing
    assert cleaned == ["finally"]


def test_close_after_the_end_keeps_the_result() -> None:
    step = Stepper(request(REQ))
    step.receive(OK)
    step.close()
    assert step.result is OK


def test_a_flow_that_refuses_to_close_still_ends() -> None:
    def stubborn() -> Generator[Effect, Any, None]:
        try:
            yield REQ
        finally:
            yield REQ  # a generator may not yield while closing

    step = Stepper(stubborn())
    with pytest.raises(RuntimeError):
        step.close()
    assert step.done


@pytest.mark.parametrize("junk", [None, "GET /", 42, OK])
def test_yielding_something_that_is_not_an_effect(junk: Any) -> None:
    closed: list[bool] = []

    def buggy() -> Generator[Any, Any, None]:
        try:
            yield junk
        finally:
            closed.append(True)

    with pytest.raises(LocalProtocolError, match=f"yielded {type(junk).__name__}, not an effect"):
        Stepper(buggy())
    assert closed == [True]


def test_a_non_effect_later_in_the_flow() -> None:
    def buggy() -> Generator[Any, Any, None]:
        yield REQ
        yield {"secret": "x"}

    step = Stepper(buggy())
    with pytest.raises(LocalProtocolError, match="yielded dict") as caught:
        step.receive(OK)
    assert "secret" not in str(caught.value)
    assert step.done
    with pytest.raises(LocalProtocolError, match="raised without a result"):
        _ = step.result
