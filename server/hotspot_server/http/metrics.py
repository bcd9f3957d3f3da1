"""GET /metrics: Prometheus series computed from one core snapshot per scrape.

Per-fixture series exist only for the hottest `max_fixtures` fixtures of the
snapshot, so a forgotten (or cooled-off) fixture's series simply stops being
exported: nothing is kept per fixture between scrapes. The wait histogram is
the one piece of state of our own, fed by one observation per grant.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from hotspot_core.grants import Grant
from hotspot_core.stats import StatsSnapshot, StatsView

WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: immediate grants land in the first bucket, waits up to --max-wait in the last."""


class PermitMetrics:
    """The wait histogram, and the exposition of a snapshot with it."""

    def __init__(self, max_fixtures: int) -> None:
        self.view = StatsView(top_n=max_fixtures)
        self._registry = CollectorRegistry()
        self._wait = Histogram(
            "hotspot_acquire_wait_seconds",
            "Time granted Acquires spent in their fixture's queue.",
            buckets=WAIT_BUCKETS,
            registry=self._registry,
        )

    def observe_grant(self, grant: Grant) -> None:
        self._wait.observe(grant.waited)

    def render(self, snapshot: StatsSnapshot, accept: str) -> tuple[bytes, str]:
        """The exposition body and its content type, in the format the scraper accepts."""
        encode, content_type = choose_encoder(accept)
        return encode(_Scrape(self._registry, snapshot)), content_type


class _Scrape:
    """One scrape: the registry's own metrics plus the snapshot's, as a prometheus Collector."""

    def __init__(self, registry: CollectorRegistry, snapshot: StatsSnapshot) -> None:
        self._registry = registry
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        yield from self._registry.collect()
        yield from fixture_families(self._snapshot)
        yield from total_families(self._snapshot)


def fixture_families(snapshot: StatsSnapshot) -> list[Metric]:
    labels = ["fixture_id"]
    calls = CounterMetricFamily(
        "fixture_api_calls",
        "Grants (permitted Optic Odds calls) for the fixture since it was last tracked.",
        labels=labels,
    )
    rejected = CounterMetricFamily(
        "fixture_rejected",
        "Refusals for the fixture (QUEUE_FULL, WAIT_TOO_LONG, paused) since it was last tracked.",
        labels=labels,
    )
    queue = GaugeMetricFamily("fixture_queue_depth", "Requests waiting.", labels=labels)
    in_window = GaugeMetricFamily(
        "fixture_calls_in_window", "Grants in the fixture's sliding window.", labels=labels
    )
    utilization = GaugeMetricFamily(
        "fixture_utilization", "Grants in the window divided by the limit.", labels=labels
    )
    hot = GaugeMetricFamily(
        "fixture_hot", "1 while the fixture's hot-spot alert is raised.", labels=labels
    )
    for row in snapshot.fixtures:
        key = [row.fixture_id]
        calls.add_metric(key, row.calls_total)
        rejected.add_metric(key, row.rejected_total)
        queue.add_metric(key, row.queue_depth)
        in_window.add_metric(key, row.calls_in_window)
        utilization.add_metric(key, row.utilization)
        hot.add_metric(key, 1.0 if row.hot else 0.0)
    return [calls, rejected, queue, in_window, utilization, hot]


def total_families(snapshot: StatsSnapshot) -> list[Metric]:
    totals = snapshot.totals
    return [
        GaugeMetricFamily(
            "hotspot_permits_in_flight",
            "Permits granted and not yet released or expired.",
            value=totals.in_flight,
        ),
        GaugeMetricFamily(
            "hotspot_fixtures_tracked", "Fixtures tracked now.", value=totals.fixtures_tracked
        ),
        GaugeMetricFamily(
            "hotspot_queue_depth", "Requests waiting, all fixtures.", value=totals.queue_depth
        ),
        # Server-wide counters: unlike the per-fixture ones they never lose a fixture.
        CounterMetricFamily(
            "hotspot_api_calls", "Grants since the server started.", value=totals.calls_total
        ),
        CounterMetricFamily(
            "hotspot_rejected", "Refusals since the server started.", value=totals.rejected_total
        ),
        CounterMetricFamily(
            "hotspot_abandoned",
            "Leases that ended without a Release since the server started.",
            value=totals.abandoned_total,
        ),
    ]
