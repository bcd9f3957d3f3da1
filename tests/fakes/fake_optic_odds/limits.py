"""The fake upstream's own limit: `limit` calls per sliding `window` per fixture, and its tally."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class ArrivalLog(deque[float]):
    """When each served call leaves the upstream's window, oldest first.

    The fake keeps its own log rather than hotspot's FixtureWindow: it is the
    judge of hotspot's windows, so it must not share their code.
    """

    def prune(self, now: float) -> None:
        while self and self[0] <= now:
            self.popleft()

    def count_at(self, now: float) -> int:
        return sum(1 for t in self if t > now)


@dataclass
class FixtureTally:
    """Every call that named one fixture, and the ones refused for breaking the limit."""

    window: ArrivalLog = field(default_factory=ArrivalLog)
    calls: int = 0
    violations: int = 0
    served_at: list[float] = field(default_factory=list)
    """Unix seconds of each call served, so tests can check any window after the fact."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: int
    """Calls left in the window of the most constrained fixture."""
    retry_after: float
    """Seconds until that fixture has room again (0 when it has room now)."""
    reset_at: float
    """Unix seconds at which that fixture's oldest call leaves its window."""


class FixtureCallLimit:
    """An exact sliding window per fixture, as the upstream enforces it."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}s")
        self.limit = limit
        self.window = window
        self._monotonic = monotonic
        self._wall = wall
        self._tallies: dict[str, FixtureTally] = {}

    def admit(self, fixture_ids: Sequence[str]) -> Verdict:
        """Count one call naming `fixture_ids`: served only if every one of them has room."""
        now, wall = self._monotonic(), self._wall()
        tallies = [self._tallies.setdefault(f, FixtureTally()) for f in fixture_ids]
        for tally in tallies:
            tally.window.prune(now)
            tally.calls += 1
        full = [t for t in tallies if len(t.window) >= self.limit]
        if full:
            for tally in full:
                tally.violations += 1
            # The oldest entry of a full window is the first to leave.
            frees_at = max(t.window[len(t.window) - self.limit] for t in full)
            return Verdict(False, 0, frees_at - now, wall + frees_at - now)
        for tally in tallies:
            tally.window.append(now + self.window)
            tally.served_at.append(wall)
        tightest = max(tallies, key=lambda t: len(t.window), default=None)
        if tightest is None:
            return Verdict(True, self.limit, 0.0, wall)
        oldest_leaves = tightest.window[0]
        return Verdict(True, self.limit - len(tightest.window), 0.0, wall + oldest_leaves - now)

    def stats(self) -> dict[str, Any]:
        now = self._monotonic()
        fixtures = {
            fixture_id: {
                "calls": t.calls,
                "violations": t.violations,
                "served": len(t.served_at),
                "calls_in_window": t.window.count_at(now),
                "served_at": t.served_at,
            }
            for fixture_id, t in self._tallies.items()
        }
        return {
            "limit": self.limit,
            "window": self.window,
            "fixtures": fixtures,
            "totals": {
                "calls": sum(t.calls for t in self._tallies.values()),
                "violations": sum(t.violations for t in self._tallies.values()),
            },
        }

    def reset(self) -> None:
        self._tallies.clear()
