"""FixtureWindow: the exact sliding log of one fixture's grants."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right


class FixtureWindow:
    """The times at which each grant in the window leaves it, oldest first.

    Storing leave times (grant time + window) rather than grant times means a
    slot frees exactly when the clock reaches the stored value, with no float
    subtraction that could leave a timer a hair short. A packed array keeps a
    full window of 50 grants in about 460 bytes.

    Any half-open interval [t, t + window) holds at most `limit` grants: a new
    grant at `now` is allowed while fewer than `limit` entries are above `now`.
    """

    __slots__ = ("_leaves_at",)

    def __init__(self) -> None:
        self._leaves_at = array("d")

    def __len__(self) -> int:
        return len(self._leaves_at)

    def prune(self, now: float) -> None:
        """Forget grants that have left the window by `now`."""
        leaves_at = self._leaves_at
        if leaves_at and leaves_at[0] <= now:
            del leaves_at[: bisect_right(leaves_at, now)]

    def count_at(self, now: float) -> int:
        """Grants in the window at `now`, without changing the log."""
        return len(self._leaves_at) - bisect_right(self._leaves_at, now)

    def record(self, leaves_at: float) -> None:
        """Log a grant that leaves the window at `leaves_at` (never earlier than the last)."""
        self._leaves_at.append(leaves_at)

    def refund(self, leaves_at: float) -> bool:
        """Take back a grant (its call was never sent). False if it already left."""
        log = self._leaves_at
        i = bisect_left(log, leaves_at)
        if i < len(log) and log[i] == leaves_at:
            del log[i]
            return True
        return False

    def newest_leaves_at(self) -> float:
        return self._leaves_at[-1]

    def falls_to(self, count: int) -> float:
        """When the window (as logged now) will hold only `count` grants."""
        log = self._leaves_at
        return log[len(log) - count - 1]

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
        cycles, r = divmod(n - 1, limit)
        start = max(now, not_before)
        i = len(self._leaves_at) + r - limit
        if i >= 0:
            start = max(start, self._leaves_at[i])
        return start + cycles * window
