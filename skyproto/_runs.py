"""Pieces shared by the long-running flows: the event loop (:mod:`skyproto.loop`) and the
Trouter client (:mod:`skyproto.trouter.client`).

Both take a policy of positive timings and whole-number bounds, remember what they delivered in a
bounded window, back off exponentially with jitter after failures in a row, and never wait past a
deadline. Each rule lives here once, so the two runs cannot drift apart.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import math
import random
from collections.abc import Hashable

import attrs

from ._flow import Flow, now
from .errors import LocalProtocolError

logger = logging.getLogger("skyproto")


def positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    """An ``attrs`` validator: a positive, finite number (not a ``bool``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not value > 0
    ):
        raise LocalProtocolError(f"{attribute.name} must be a positive, finite number")


def count(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    """An ``attrs`` validator: a whole number of at least 1 (not a ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LocalProtocolError(f"{attribute.name} must be a whole number of at least 1")


def flag(_instance: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    """An ``attrs`` validator: ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise LocalProtocolError(f"{attribute.name} must be True or False")


class Seen:
    """A bounded set of delivered keys, oldest forgotten first.

    Adding a key already present changes nothing (it keeps its place in the order)."""

    def __init__(self, size: int) -> None:
        self._keys: collections.OrderedDict[Hashable, None] = collections.OrderedDict()
        self._size = size

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def add(self, key: Hashable) -> None:
        if key in self._keys:
            return
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)


def backoff(failures: int, initial: float, maximum: float, rng: random.Random) -> float:
    """The wait after ``failures`` failures in a row: within [cap / 2, cap], where the cap is
    ``initial * 2 ** (failures - 1)``, at most ``maximum``."""
    if failures < 1:
        raise LocalProtocolError("backoff starts at the first failure")
    cap = min(maximum, initial * 2.0 ** min(failures - 1, 64))
    return cap / 2 + rng.random() * cap / 2


def failed_again(failures: int, exc: BaseException, *, limit: int, what: str) -> int:
    """The count of failures in a row after one more (``exc``, logged as ``what`` failed);
    past ``limit`` the run gives up and ``exc`` is raised."""
    failures += 1
    if failures > limit:
        raise exc
    logger.warning("%s failed (%d in a row): %s", what, failures, exc)
    return failures


def until_deadline(seconds: float, deadline: dt.datetime | None) -> Flow[float]:
    """``seconds``, shortened so the wait ends by ``deadline`` (never below zero); the clock is
    read only when there is a deadline."""
    if deadline is not None:
        current = yield from now()
        seconds = max(0.0, min(seconds, (deadline - current).total_seconds()))
    return seconds
