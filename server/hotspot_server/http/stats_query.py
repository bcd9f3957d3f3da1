"""Query strings of the hot-spot endpoints -> what the reader asked to see."""

from __future__ import annotations

from dataclasses import dataclass

from multidict import MultiMapping

from hotspot_core.durations import parse_duration
from hotspot_core.errors import InvalidArgument
from hotspot_core.stats import MAX_TOP_N, StatsView, stats_view
from hotspot_core.stats_feed import DEFAULT_INTERVAL, check_interval


@dataclass(frozen=True, slots=True)
class StatsQuery:
    view: StatsView
    interval: float
    """Seconds between stream messages."""


def read_stats_query(query: MultiMapping[str], *, streaming: bool = False) -> StatsQuery:
    """?top=N, ?fixture_id=A&fixture_id=B, and ?interval=1s on streams; InvalidArgument if bad."""
    known = {"top", "fixture_id", "interval"} if streaming else {"top", "fixture_id"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise InvalidArgument(
            f"unknown query parameter {unknown[0]!r}; known: {', '.join(sorted(known))}",
            field=unknown[0],
        )
    top = 0  # the default top 10
    tops = query.getall("top", [])
    if len(tops) > 1:
        raise InvalidArgument("top may be given only once", field="top")
    if tops:
        raw = tops[0]
        # ASCII digits only: str.isdigit() also takes '²' (which int() refuses) and other
        # scripts' digits; the length bound keeps int() from reading thousands of them.
        digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_TOP_N))
        if not (digits and 1 <= int(raw) <= MAX_TOP_N):
            raise InvalidArgument(
                f"top must be a whole number from 1 to {MAX_TOP_N}, got {raw[:20]!r}", field="top"
            )
        top = int(raw)
    view = stats_view(top, query.getall("fixture_id", []))
    interval = DEFAULT_INTERVAL
    if "interval" in query:
        try:
            interval = parse_duration(query["interval"])
        except ValueError as error:
            raise InvalidArgument(f"interval: {error}", field="interval") from None
        check_interval(interval)
    return StatsQuery(view, interval)
