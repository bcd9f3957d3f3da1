"""CacheMetrics: what the cache did, counted per endpoint (never per fixture)."""

from __future__ import annotations

from collections import Counter
from enum import Enum


class CacheEvent(Enum):
    HIT = "hits"
    """Served fresh from the cache."""
    MISS = "misses"
    """Nothing servable was cached: the caller waited for a fetch (its own or a shared one)."""
    STALE = "stale_served"
    """Served past its freshness, within the maximum staleness."""
    COALESCED = "coalesced"
    """A caller that waited on another's fetch (in this process, or another replica's)."""
    REFRESH = "refreshes"
    """Upstream fetches that stored an entry."""
    REFRESH_FAILURE = "refresh_failures"
    """Fetches that failed: refused a permit, paused, or the upstream failed."""
    CACHE_ERROR = "cache_errors"
    """Store operations that failed (Redis down): the call went through without the cache."""


class CacheMetrics:
    """Plain counters, so that the cache needs no metrics library; see prometheus.py to export."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, CacheEvent]] = Counter()

    def count(self, endpoint: str, event: CacheEvent) -> None:
        self._counts[endpoint, event] += 1

    def get(self, endpoint: str, event: CacheEvent) -> int:
        return self._counts[endpoint, event]

    def total(self, event: CacheEvent) -> int:
        return sum(n for (_, e), n in self._counts.items() if e is event)

    def items(self) -> list[tuple[str, CacheEvent, int]]:
        return sorted(((ep, ev, n) for (ep, ev), n in self._counts.items()), key=str)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{endpoint: {event: count}}, e.g. for a JSON status page."""
        out: dict[str, dict[str, int]] = {}
        for endpoint, event, n in self.items():
            out.setdefault(endpoint, {})[event.value] = n
        return out
