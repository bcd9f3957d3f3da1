"""FixtureWindow: the exact sliding log of one fixture's grants."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from typing import cast


class FixtureWindow(array):  # type: ignore[type-arg]  # array is generic only in typeshed
    """The times at which each grant in the window leaves it, oldest first.

    Storing leave times (grant time + window) rather than grant times means a
    slot frees exactly when the clock reaches the stored value, with no float
    subtraction that could leave a timer a hair short. It *is* a packed array of
    doubles: a full window of 50 grants takes about 460 bytes, and len() and
    record() run in C on the hot path.

    Any half-open interval [t, t + window) holds at most `limit` grants: a new
    grant at `now` is allowed while fewer than `limit` entries are above `now`.
    """

    __slots__ = ()

    def __new__(cls) -> FixtureWindow:
        return cast(FixtureWindow, super().__new__(cls, "d"))

    record = array.append
    """Log a grant that leaves the window at the given time (never earlier than the last)."""

    def prune(self, now: float) -> None:
        """Forget grants that have left the window by `now`."""
        if self and self[0] <= now:
            del self[: bisect_right(self, now)]

    def count_at(self, now: float) -> int:
        """Grants in the window at `now`, without changing the log."""
        return len(self) - bisect_right(self, now)

    def refund(self, leaves_at: float) -> bool:
        """Take back a grant (its call was never sent). False if it already left."""
        i = bisect_left(self, leaves_at)
        if i < len(self) and self[i] == leaves_at:
            del self[i]
            return True
        return False

    def newest_leaves_at(self) -> float:
        return float(self[-1])

    def falls_to(self, count: int) -> float:
        """When the window (as logged now) will hold only `count` grants."""
        return float(self[len(self) - count - 1])

    def grant_time(
        self, n: int, now: float, *, limit: int, window: float, not_before: float
    ) -> float:
        """When the n-th request in line (1-based) will be granted, if nothing else changes.

        The window must be pruned at `now`. Grants go greedily at the earliest
        time the window allows: the n-th future grant is the (k + n)-th grant
        overall (k = grants logged), so it must wait for grant k + n - limit to
        leave. Past one window's worth of waiters the pattern repeats, one window
        later, which makes this O(1) however long the queue is.
        """
        # Comparisons rather than max(): this runs twice on every refusal.
        cycles, r = divmod(n - 1, limit)
        start = now if now >= not_before else not_before
        i = len(self) + r - limit
        if i >= 0 and self[i] > start:
            start = self[i]
        return start + cycles * window
