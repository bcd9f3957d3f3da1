"""Snapshots of the service's state, as every transport reports them."""

from __future__ import annotations

from dataclasses import dataclass, field

from hotspot_core.alerts import Alert
from hotspot_core.errors import InvalidArgument
from hotspot_core.fixture_id import check_fixture_id
from hotspot_core.warming_board import ScheduledWarming

DEFAULT_TOP_N = 10
MAX_TOP_N = 1000
MAX_FIXTURE_IDS = 1000


@dataclass(slots=True)
class FixtureStats:
    """One fixture's row; read-only by convention. Not frozen: a frozen dataclass sets each of
    its 15 fields through object.__setattr__, which made rows 4x costlier to build, and a tick
    builds up to a thousand of them (one row is shared by every view that shows it)."""

    fixture_id: str
    calls_in_window: int
    calls_total: int
    queue_depth: int
    queue_capacity: int
    rejected_total: int
    in_flight: int
    limit: int
    window: float
    utilization: float
    hot: bool
    paused_until: float | None
    """Unix seconds, or None when not paused."""
    abandoned_total: int
    expected_hold: float = 0.0
    """Seconds a permit of this fixture is expected to be held before its release (the
    forecasts' running p90); every grant stays in the window until release + window."""
    warming: bool = False
    """A cache warmer took a permit for it within the last window."""

    def heat_key(self) -> tuple[int, int, str]:
        """Sort key, hottest first: calls in the window, then queue depth, then id."""
        return (-self.calls_in_window, -self.queue_depth, self.fixture_id)


@dataclass(frozen=True, slots=True)
class Totals:
    fixtures_tracked: int
    calls_total: int
    rejected_total: int
    queue_depth: int
    in_flight: int
    abandoned_total: int


@dataclass(frozen=True, slots=True)
class StatsView:
    """What a reader asked to see: the named fixtures, or the top_n hottest."""

    top_n: int = DEFAULT_TOP_N
    fixture_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    generated_at: float
    """Unix seconds."""
    fixtures: list[FixtureStats]
    totals: Totals
    alerts: list[Alert]
    """Fixtures hot right now."""
    alert_events: list[Alert] = field(default_factory=list)
    """Alerts raised or cleared since the reader's previous snapshot (streams only)."""
    scheduled_warmings: list[ScheduledWarming] = field(default_factory=list)
    """The warming board: announced warmings not yet ended, soonest first."""


def stats_view(top_n: int, fixture_ids: list[str] | tuple[str, ...]) -> StatsView:
    """Check a reader's request; 0 means the default top 10."""
    if top_n > MAX_TOP_N:
        raise InvalidArgument(f"top_n must be at most {MAX_TOP_N}, got {top_n}", field="top_n")
    if len(fixture_ids) > MAX_FIXTURE_IDS:
        raise InvalidArgument(
            f"fixture_ids may name at most {MAX_FIXTURE_IDS} fixtures, got {len(fixture_ids)}",
            field="fixture_ids",
        )
    ids = tuple(dict.fromkeys(check_fixture_id(f) for f in fixture_ids))
    return StatsView(top_n=top_n or DEFAULT_TOP_N, fixture_ids=ids)
