"""The cache's counters as Prometheus series (needs the `cache` extra's prometheus-client)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from hotspot_client.optic_odds.cache.metrics import CacheEvent, CacheMetrics

_HELP = {
    CacheEvent.HIT: "Odds cache reads served fresh",
    CacheEvent.MISS: "Odds cache reads that found nothing servable and waited for a fetch",
    CacheEvent.STALE: "Odds cache reads served stale (within the maximum staleness)",
    CacheEvent.COALESCED: "Reads that waited on a fetch another caller or replica made",
    CacheEvent.REFRESH: "Upstream fetches that stored a cache entry",
    CacheEvent.REFRESH_FAILURE: "Upstream fetches for the cache that failed or were refused",
    CacheEvent.CACHE_ERROR: "Cache store operations that failed (the call went on without it)",
}


class CacheCollector(Collector):
    """Reads the counters at each scrape: `optic_odds_cache_<event>_total{endpoint}`."""

    def __init__(self, metrics: CacheMetrics, endpoints: tuple[str, ...] = ()) -> None:
        self._metrics = metrics
        self._endpoints = endpoints
        """Endpoints exported from 0 before their first read."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        counts = {(ep, ev): n for ep, ev, n in self._metrics.items()}
        endpoints = sorted({*self._endpoints, *(ep for ep, _ in counts)})
        for event in CacheEvent:
            family = CounterMetricFamily(
                f"optic_odds_cache_{event.value}", _HELP[event], labels=["endpoint"]
            )
            for endpoint in endpoints:
                family.add_metric([endpoint], counts.get((endpoint, event), 0))
            yield family
