"""FixtureWindow: the exact sliding window of one fixture's grants, as the upstream sees them.

A grant occupies its fixture's window from the moment it is granted until
`window` after its call is known to be over: its release (release time +
window), or the end of its lease if it is never released (lease end + window).
A refund (the call was never sent) frees the slot at once.

Why this is exact at the upstream: let each granted call arrive upstream at
some a_i with grant_i <= a_i <= release_i. Suppose an interval [t, t + window)
held limit + 1 arrivals, and let j be the last of those calls to be granted.
Every other call i of them arrived at a_i >= t, so it left the window at
release_i + window >= a_i + window >= t + window > a_j >= grant_j: all `limit`
of them still occupied the window when j was granted, so j was never granted.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right, insort


class FixtureWindow:
    """The grants in one fixture's window: those in flight, and those released but not yet gone.

    `held` are the grant times of permits in flight, oldest first (grants are
    recorded in time order). `released` are the times at which released grants
    leave the window, soonest first. Both are packed arrays of doubles: a full
    window of 50 takes about 400 bytes, and counting runs in C.
    """

    __slots__ = ("held", "released")

    def __init__(self) -> None:
        self.held = array("d")
        self.released = array("d")

    def __len__(self) -> int:
        """Grants in the window (prune first for the count at a given time)."""
        return len(self.held) + len(self.released)

    def record(self, granted_at: float) -> None:
        """A grant made now (never earlier than the last)."""
        self.held.append(granted_at)

    def prune(self, now: float) -> None:
        """Forget released grants that have left the window by `now`."""
        released = self.released
        if released and released[0] <= now:
            del released[: bisect_right(released, now)]

    def count_at(self, now: float) -> int:
        """Grants in the window at `now`, without changing the log."""
        released = self.released
        return len(self.held) + len(released) - bisect_right(released, now)

    def release(self, granted_at: float, leaves_at: float) -> bool:
        """The call granted at `granted_at` is over; it leaves the window at `leaves_at`.

        False if no such grant is in flight (nothing changes).
        """
        if not self._drop_held(granted_at):
            return False
        released = self.released
        if not released or leaves_at >= released[-1]:
            released.append(leaves_at)  # the usual case: releases come in time order
        else:
            insort(released, leaves_at)
        return True

    def refund(self, granted_at: float) -> bool:
        """Take back a grant whose call was never sent: its slot frees now."""
        return self._drop_held(granted_at)

    def _drop_held(self, granted_at: float) -> bool:
        held = self.held
        # Most permits are released in about the order they were granted: look from the front.
        try:
            i = held.index(granted_at)
        except ValueError:
            return False
        del held[i]
        return True

    def next_leave(self) -> float | None:
        """When the next released grant leaves (prune first); None if none will by time alone."""
        return float(self.released[0]) if self.released else None

    def idle_at(self) -> float | None:
        """When the window will be empty by time alone: None while a permit is in flight."""
        if self.held:
            return None
        return float(self.released[-1]) if self.released else -float("inf")

    def falls_to(self, count: int) -> float | None:
        """When the window (as logged now) will hold only `count` grants; None if not by time
        alone (permits in flight leave only when they are released or their lease ends)."""
        keep = count - len(self.held)
        if keep < 0:
            return None
        i = len(self.released) - keep - 1
        return float(self.released[i]) if i >= 0 else -float("inf")

    def leave_forecast(self, i: int, now: float, hold: float, lease: float, window: float) -> float:
        """When the i-th (0-based, soonest first) grant now in the window is expected to leave.

        Released grants leave at known times, all by now + window. A permit in
        flight is expected to be released `hold` after its grant, and not before
        now; its lease caps it. So every forecast of a permit in flight is at
        least now + window (while its lease runs) and they come after the
        released ones, in grant order.
        """
        released = self.released
        if i < len(released):
            return float(released[i])
        granted_at = self.held[i - len(released)]
        end = granted_at + hold
        if end < now:
            end = now
        lease_end = granted_at + lease
        if end > lease_end:
            end = lease_end
        return end + window

    def grant_time(
        self,
        n: int,
        now: float,
        *,
        limit: int,
        window: float,
        hold: float,
        lease: float,
        not_before: float,
    ) -> float:
        """When the n-th request in line (1-based) is expected to be granted.

        The window must be pruned at `now`. Grants go greedily at the earliest
        time the window allows: the n-th future grant is the (k + n)-th grant
        overall (k = grants in the window), so it must wait for the
        (k + n - limit)-th to leave. A future grant is expected to leave `hold` +
        `window` after it is made, later than any grant now in the window, so
        past one window's worth of waiters the pattern repeats one such period
        later. That makes this O(1) however long the queue is.
        """
        # Comparisons rather than max(): this runs twice on every refusal.
        cycles, r = divmod(n - 1, limit)
        start = now if now >= not_before else not_before
        i = len(self) + r - limit
        if i >= 0:
            leaves = self.leave_forecast(i, now, hold, lease, window)
            if leaves > start:
                start = leaves
        return start + cycles * (window + hold)
