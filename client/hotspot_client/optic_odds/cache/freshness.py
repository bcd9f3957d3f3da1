"""How long an answer stays fresh, and how long past that it may be served stale.

Chosen per endpoint from what the answer says about its fixtures: live odds
change by the second, pre-game odds slowly (but never past kick-off), and a
final result never changes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hotspot_client.optic_odds.models import Fixture

LIVE_STATUSES = frozenset({"live", "half", "suspended", "delayed"})
FINAL_STATUSES = frozenset({"completed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Freshness:
    fresh_for: float
    """Seconds an answer is served as fresh."""
    max_stale: float
    """Seconds past that it is still served, marked stale, while a refresh runs or fails."""

    def __post_init__(self) -> None:
        if not self.fresh_for >= 0 or not self.max_stale >= 0:
            raise ValueError(f"freshness must be 0 or more seconds, got {self}")


@dataclass(frozen=True, slots=True)
class FreshnessRules:
    """The freshness of each kind of answer; every one is configurable."""

    live_odds: Freshness = field(default_factory=lambda: Freshness(3.0, 30.0))
    pregame_odds: Freshness = field(default_factory=lambda: Freshness(60.0, 300.0))
    results: Freshness = field(default_factory=lambda: Freshness(5.0, 30.0))
    """Results of a game not over yet: its score moves."""
    final_results: Freshness = field(default_factory=lambda: Freshness(86_400.0, 0.0))
    """Results once every fixture is completed or cancelled: kept for a day."""

    def choose(self, endpoint: str, fixtures: Sequence[Fixture], now: datetime) -> Freshness:
        """The freshness of an answer of `endpoint` naming `fixtures`, fetched at `now` (UTC)."""
        statuses = {f.status for f in fixtures}
        final = bool(statuses) and statuses <= FINAL_STATUSES
        if endpoint == "fixtures/results":
            return self.final_results if final else self.results
        if final:
            return self.final_results  # the odds of a finished game do not move
        if any(f.is_live or f.status in LIVE_STATUSES for f in fixtures) or not fixtures:
            return self.live_odds
        return self._pregame(fixtures, now)

    def _pregame(self, fixtures: Sequence[Fixture], now: datetime) -> Freshness:
        # Pre-game odds stay fresh for long, but not across kick-off: odds move when play starts.
        # Nor are they served stale further into the game than live odds would be.
        live = self.live_odds
        starts = [f.start_date for f in fixtures if f.start_date is not None]
        until_kickoff = min((s - now).total_seconds() for s in starts) if starts else 0.0
        fresh_for = min(self.pregame_odds.fresh_for, max(live.fresh_for, until_kickoff))
        max_stale = min(
            self.pregame_odds.max_stale,
            max(live.max_stale, until_kickoff + live.max_stale - fresh_for),
        )
        return Freshness(fresh_for, max_stale)
