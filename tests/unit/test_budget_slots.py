"""The sync transports' budget slots (``transports/_budget.py``): counted, bounded waits, and a
freed slot wakes a waiting thread."""

from __future__ import annotations

import threading
import time

import pytest
from skyproto.transports import Budgets

from skyproto import HttpRequest, LocalProtocolError, TransportTimeout

SHORT = HttpRequest("POST", "https://x.skype.com/active")
POLL = HttpRequest("POST", "https://x.skype.com/poll", long_poll=True)


def test_each_budget_counts_its_own_slots() -> None:
    budgets = Budgets(2, 1, 0.05)
    held = [budgets.slot(SHORT), budgets.slot(SHORT), budgets.slot(POLL)]
    with pytest.raises(TransportTimeout, match=r"PoolTimeout: POST https://x\.skype\.com/active"):
        budgets.slot(SHORT)
    with pytest.raises(TransportTimeout, match=r"PoolTimeout: POST https://x\.skype\.com/poll"):
        budgets.slot(POLL)
    for slot in held:
        with slot:
            pass
    with budgets.slot(SHORT), budgets.slot(SHORT), budgets.slot(POLL):
        pass


def test_a_full_budget_waits_out_its_pool_timeout() -> None:
    budgets = Budgets(1, 1, 0.2)
    with budgets.slot(SHORT):
        started = time.monotonic()
        with pytest.raises(TransportTimeout):
            budgets.slot(SHORT)
        assert 0.19 <= time.monotonic() - started < 2


def test_a_slot_given_back_wakes_a_waiting_thread() -> None:
    budgets = Budgets(1, 1, 5.0)
    first = budgets.slot(SHORT)
    got: list[float] = []

    def wait() -> None:
        with budgets.slot(SHORT):
            got.append(time.monotonic())

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.1)
    assert got == []
    released = time.monotonic()
    with first:
        pass
    waiter.join(5)
    assert len(got) == 1
    assert got[0] - released < 1


def test_many_threads_never_hold_more_than_the_budget() -> None:
    budgets = Budgets(3, 1, 10.0)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(200):
            with budgets.slot(SHORT):
                with lock:
                    inside += 1
                    most = max(most, inside)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most <= 3
    with budgets.slot(SHORT), budgets.slot(SHORT), budgets.slot(SHORT):
        pass  # every slot came back


def test_a_slot_given_back_twice_is_a_bug_not_a_bigger_budget() -> None:
    budgets = Budgets(1, 1, 1.0)
    slot = budgets.slot(SHORT)
    with slot:
        pass
    with pytest.raises(LocalProtocolError, match="never taken"), slot:
        pass
