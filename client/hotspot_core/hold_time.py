"""HoldTimes: how long permits are held before their release, as a running high percentile.

The window frees a slot only `window` after a release, so every forecast (the
retry delay, the estimated wait, WAIT_TOO_LONG admission, when a waiter is
granted) needs to know when permits still in flight will be released. It is
only a forecast: the slot itself stays held until the real release + window.
"""

from __future__ import annotations

import math
from array import array

DEFAULT_HOLD = 1.0
"""Seconds assumed before any release has been seen."""
HOLD_PERCENTILE = 0.9
FIXTURE_SAMPLES = 16
"""Releases remembered per fixture: enough for a p90 that follows a fixture's upstream."""
SERVER_SAMPLES = 128
SERVER_REFRESH = 16
"""The server-wide estimate is recomputed every this many releases, not on each one."""


class HoldTimes:
    """The last `size` hold times in a ring, and their nearest-rank 90th percentile.

    Every release adds a sample, but only forecasts (refusals, queued requests) read the
    estimate: it is recomputed when read after a change, not on each release.
    """

    __slots__ = ("_count", "_estimate", "_refresh", "_samples", "_stale")

    def __init__(self, size: int = FIXTURE_SAMPLES, refresh: int = 1) -> None:
        self._samples = array("d", bytes(8 * size))
        self._count = 0
        self._refresh = refresh
        self._stale = False
        self._estimate: float | None = None

    def add(self, seconds: float) -> None:
        samples = self._samples
        samples[self._count % len(samples)] = seconds if seconds > 0 else 0.0
        self._count += 1
        if self._count <= len(samples) or self._count % self._refresh == 0:
            self._stale = True

    @property
    def estimate(self) -> float | None:
        """Seconds; None until the first release."""
        if self._stale:
            self._stale = False
            size = len(self._samples)
            self._estimate = percentile(self._samples[: min(self._count, size)], HOLD_PERCENTILE)
        return self._estimate


def percentile(values: array[float] | list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q of the values at or below it."""
    ranked = sorted(values)
    return float(ranked[max(0, math.ceil(q * len(ranked)) - 1)])


def expected_hold(own: HoldTimes | None, server: HoldTimes, lease: float) -> float:
    """The fixture's own estimate once it has releases, else the server's, else DEFAULT_HOLD;
    never longer than the lease, which ends every hold."""
    hold = own.estimate if own is not None else None
    if hold is None:
        hold = server.estimate if server.estimate is not None else DEFAULT_HOLD
    return hold if hold < lease else lease
