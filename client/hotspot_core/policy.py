"""The limits every fixture is held to."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PermitPolicy:
    limit: int = 50
    """Grants allowed in any sliding window."""
    window: float = 60.0
    """Length of the sliding window, seconds."""
    queue: int = 100
    """Waiters allowed per fixture once the window is full."""
    alert_ratio: float = 0.8
    """A fixture is hot at alert_ratio * limit calls in its window."""
    lease: float = 15.0
    """A permit not released within this many seconds is counted as abandoned. Its slot stays
    taken until lease end + window, since its call may have reached the upstream until then:
    long enough for any real call (the Optic Odds client's timeout is 10 s), short enough that
    an abandoned permit costs little more than one window."""
    max_wait: float = 300.0
    """Longest any request may wait in a queue, whatever it asks for."""
    max_fixtures: int = 100_000
    """Fixtures tracked at once."""
    max_fixtures_per_caller: int = 20_000
    """Fixtures one caller may have brought in and still tracked: no caller can exhaust
    max_fixtures for everyone."""
    max_waiters_per_caller: int = 2_000
    """Requests one caller may have waiting in queues at once."""
    max_upstream_pause: float | None = None
    """Longest pause one upstream 429 may put on a fixture; None: one window."""

    def __post_init__(self) -> None:
        rules = [
            (self.limit >= 1, f"limit must be at least 1, got {self.limit}"),
            (self.window > 0, f"window must be positive, got {self.window}s"),
            (self.queue >= 0, f"queue must be 0 or more, got {self.queue}"),
            (
                0.1 < self.alert_ratio <= 1.0,
                f"alert_ratio must be above 0.1 and at most 1.0, got {self.alert_ratio}",
            ),
            (self.lease > 0, f"lease must be positive, got {self.lease}s"),
            (self.max_wait >= 0, f"max_wait must be 0 or more, got {self.max_wait}s"),
            (self.max_fixtures >= 1, f"max_fixtures must be at least 1, got {self.max_fixtures}"),
            (
                self.max_fixtures_per_caller >= 1,
                f"max_fixtures_per_caller must be at least 1, got {self.max_fixtures_per_caller}",
            ),
            (
                self.max_waiters_per_caller >= 0,
                f"max_waiters_per_caller must be 0 or more, got {self.max_waiters_per_caller}",
            ),
            (
                self.max_upstream_pause is None or self.max_upstream_pause >= 0,
                f"max_upstream_pause must be 0 or more, got {self.max_upstream_pause}s",
            ),
        ]
        for ok, message in rules:
            if not ok:
                raise ValueError(message)

    @property
    def upstream_pause_cap(self) -> float:
        return self.window if self.max_upstream_pause is None else self.max_upstream_pause

    @property
    def raise_at(self) -> int:
        """Calls in the window at which a fixture becomes hot."""
        return _ceil_count(self.alert_ratio * self.limit)

    @property
    def clear_below(self) -> int:
        """A hot fixture cools down when its calls fall below this; the gap stops flapping.

        Ten points under the alert ratio, and always at least one call below raise_at, so
        small limits keep a gap too (limit 5: hot at 4, cool below 3). Only a raise_at of 1
        leaves none: the fixture cools at 0 calls, the only count below it.
        """
        return max(1, min(_ceil_count((self.alert_ratio - 0.1) * self.limit), self.raise_at - 1))


def _ceil_count(value: float) -> int:
    # Rounding first keeps float noise (0.7 * 50 == 35.00000000000001) from moving a threshold.
    return max(1, math.ceil(round(value, 9)))
