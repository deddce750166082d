"""What every benchmark shares: the row contract, the alternating timer, and the emulator process.

The contract
------------
A benchmark module is a ``*_bench.py`` file in this package with a function
``main(smoke: bool = False) -> list[dict]``. Each dict is one row of the table, made with
:func:`row`, and has at least these keys:

``name``
    what is measured, unique across the table (``"events"``, ``"transport httpx async"``).
``skyproto``, ``reference``
    the two figures, in ``unit``; ``reference`` is ``None`` when there is nothing to compare with
    (SkPy not installed).
``ratio``, ``goal``, ``met``
    the figure the goal is about (the ``ratio_is`` key says how it is formed), the goal as text
    (``">= 3"``, ``"<= 1.05"``) and whether the ratio meets it (``None`` when there is no ratio).
``unit``, ``reference_name``, ``statistic``, ``ratio_is``
    how to read the row: the unit of both figures, what the reference is, which statistic of
    how many repeats each figure is (``"min of 7 x 2000 calls"``), and how the ratio is formed.

``smoke=True`` runs tiny sizes: it shows that the code runs, and its timings mean nothing. The
runner (``python -m benchmarks``) collects every module's rows, prints them, writes them to
``results.json`` and exits 1 when a goal is missed.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: The keys every row has, in the order the runner prints them.
ROW_KEYS = (
    "name",
    "skyproto",
    "reference",
    "ratio",
    "goal",
    "met",
    "unit",
    "reference_name",
    "statistic",
    "ratio_is",
)
#: This thread's CPU time: for work that never waits, it leaves out the time other processes
#: take the CPU away, which on a busy machine is most of the wall time.
CPU_CLOCK = time.thread_time
_OPERATORS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


def row(
    name: str,
    *,
    skyproto: float,
    reference: float | None,
    ratio: float | None,
    goal: str,
    unit: str,
    reference_name: str,
    statistic: str,
    ratio_is: str,
    **extra: Any,
) -> dict[str, Any]:
    """One row of the table; ``met`` is worked out from ``ratio`` and ``goal`` (``">= 3"``)."""
    op, _, value = goal.partition(" ")
    if op not in _OPERATORS:
        raise ValueError(f"a goal is '>= N' or '<= N', not {goal!r}")
    met = None if ratio is None else _OPERATORS[op](ratio, float(value))
    return {
        "name": name,
        "skyproto": skyproto,
        "reference": reference,
        "ratio": ratio,
        "goal": goal,
        "met": met,
        "unit": unit,
        "reference_name": reference_name,
        "statistic": statistic,
        "ratio_is": ratio_is,
        **extra,
    }


def check_row(candidate: object) -> list[str]:
    """What is wrong with ``candidate`` as a row (empty when it is a good one)."""
    if not isinstance(candidate, dict):
        return [f"a row is a dict, not {type(candidate).__name__}"]
    problems = [f"missing key {key!r}" for key in ROW_KEYS if key not in candidate]
    if not isinstance(candidate.get("name"), str) or not candidate.get("name"):
        problems.append("name is not a non-empty string")
    if candidate.get("met") not in (True, False, None):
        problems.append("met is not true, false or null")
    return problems


def alternate(
    functions: Sequence[Callable[[], object]],
    rounds: int,
    repeats: int,
    *,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> list[list[float]]:
    """Per-call seconds of each function, one sample per repeat of ``rounds`` calls.

    Each function is first called ``warmup`` times. The functions are then timed alternately,
    in a different order each repeat, so that load from other processes hits all of them alike.
    ``clock`` is wall time by default; :data:`CPU_CLOCK` suits work that never waits.
    """
    for function in functions:
        for _ in range(warmup):
            function()
    samples: list[list[float]] = [[] for _ in functions]
    order = list(range(len(functions)))
    for _ in range(repeats):
        for index in order:
            function = functions[index]
            started = clock()
            for _ in range(rounds):
                function()
            samples[index].append((clock() - started) / rounds)
        order.reverse()
    return samples


def best_seconds(functions: list[Callable[[], object]], rounds: int, repeats: int) -> list[float]:
    """Per-call minimum time of each function over ``repeats`` runs of ``rounds`` calls."""
    return [min(times) for times in alternate(functions, rounds, repeats)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# -- the emulator in a process of its own ------------------------------------------------------


@contextlib.contextmanager
def emulator_process(*scenario: str, tls: bool = False) -> Iterator[dict[str, Any]]:
    """Run ``skyproto emulator`` in a child process; yield its profile (hosts, CA, account).

    A process of its own keeps the server's work off this interpreter's lock, so a timing here
    measures the client, as it would against a real server, and not the two taking turns.
    """
    command = [sys.executable, "-m", "skyproto", "emulator"]
    command += [f"--scenario={knob}" for knob in scenario]
    if tls:
        command.append("--tls")
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line:
                errors.seek(0)
                detail = errors.read().decode("utf-8", "replace").strip()[-500:]
                raise RuntimeError(f"the emulator did not start: {detail}")
            yield json.loads(line)
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            if child.stdout is not None:
                child.stdout.close()


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of the block, then put them back."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
