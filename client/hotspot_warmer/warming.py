"""Warming: one major fixture's warming, as the scheduler and `status` see it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any


class WarmingState(Enum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    ENDED = "ended"
    """The game is over (completed, or past max_game_length)."""
    CANCELLED = "cancelled"
    """The fixture was cancelled, or no longer matches a rule."""


class RefreshResult(Enum):
    REFRESHED = "refreshed"
    SKIPPED = "skipped"
    """No call made: the cached odds were still fresh, or another caller was fetching them."""
    NOT_LEASED = "another warmer holds the fixture"
    REFUSED = "refused a permit"
    FAILED = "failed"


@dataclass
class Warming:
    fixture_id: str
    rule: str
    start_date: datetime
    warm_from: datetime
    warm_until: datetime
    state: WarmingState = WarmingState.SCHEDULED
    next_run: datetime | None = None
    last_run: datetime | None = None
    last_result: str = ""
    counts: dict[RefreshResult, int] = field(default_factory=dict)
    calls: deque[float] = field(default_factory=deque)
    """Unix seconds of the upstream calls made, pruned to the last window."""

    def record(self, result: RefreshResult, at: datetime, detail: str = "") -> None:
        self.counts[result] = self.counts.get(result, 0) + 1
        self.last_run = at
        self.last_result = result.value + (f": {detail}" if detail else "")

    def record_call(self, at: float, window: float) -> None:
        self.calls.append(at)
        self.calls_in_window(at, window)

    def calls_in_window(self, now: float, window: float) -> int:
        while self.calls and self.calls[0] <= now - window:
            self.calls.popleft()
        return len(self.calls)

    def as_json(self, now: float, window: float, budget: float) -> dict[str, Any]:
        used = self.calls_in_window(now, window)
        return {
            "fixture_id": self.fixture_id,
            "rule": self.rule,
            "state": self.state.value,
            "start_date": _iso(self.start_date),
            "warm_from": _iso(self.warm_from),
            "next_run": _iso(self.next_run),
            "last_run": _iso(self.last_run),
            "last_result": self.last_result,
            "calls_in_window": used,
            "budget": budget,
            "budget_used": round(used / budget, 3) if budget else 0.0,
            "results": {r.value: n for r, n in self.counts.items()},
        }


def warming_for(fixture_id: str, rule: str, start: datetime, lead: float, length: float) -> Warming:
    return Warming(
        fixture_id,
        rule,
        start,
        warm_from=start - timedelta(seconds=lead),
        warm_until=start + timedelta(seconds=length),
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
