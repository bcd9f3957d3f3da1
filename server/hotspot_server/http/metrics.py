"""GET /metrics: Prometheus series computed from one core snapshot per scrape.

Per-fixture series exist only for the hottest `max_fixtures` fixtures of the
snapshot, so a forgotten (or cooled-off) fixture's series simply stops being
exported: nothing is kept per fixture between scrapes. The state of our own is
fed by observers: the wait histogram (one observation per grant), the refusals
by reason (one per refusal) and the gRPC server metrics (one per RPC).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from hotspot_core.errors import PermitError, PermitRefused
from hotspot_core.grants import Grant
from hotspot_core.stats import StatsSnapshot, StatsView
from hotspot_server.build_info import build_info

WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: immediate grants land in the first bucket, waits up to --max-wait in the last."""
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 300.0)
"""Seconds: an answer at once is well under 1 ms here; a queued Acquire waits up to --max-wait."""
PAUSED = "PAUSED"
REJECT_REASONS = ("QUEUE_FULL", "WAIT_TOO_LONG", "TOO_MANY_FIXTURES", PAUSED, "SHUTTING_DOWN")
"""hotspot_rejected_total's reasons, all exported from the start so increase() sees the first."""


def rejection_reason(error: PermitError) -> str:
    """The reason label: PAUSED for any refusal while an upstream 429 pause lasts."""
    if isinstance(error, PermitRefused) and error.paused_for > 0:
        return PAUSED
    return error.reason


class PermitMetrics:
    """The series fed by observers, and the exposition of a snapshot with them."""

    def __init__(self, max_fixtures: int) -> None:
        self.view = StatsView(top_n=max_fixtures)
        registry = self._registry = CollectorRegistry()
        self._wait = Histogram(
            "hotspot_acquire_wait_seconds",
            "Time granted Acquires spent in their fixture's queue.",
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        rejected = Counter(
            "hotspot_rejected",
            "Acquires refused since the server started, by reason "
            "(PAUSED: while the fixture is paused after an upstream 429).",
            ["reason"],
            registry=registry,
        )
        self._rejected = {reason: rejected.labels(reason) for reason in REJECT_REASONS}
        self._handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_type", "grpc_code"],
            registry=registry,
        )
        self._handling = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its status (a stream: its whole life).",
            ["grpc_service", "grpc_method", "grpc_type"],
            buckets=RPC_BUCKETS,
            registry=registry,
        )
        self._rpc_children: dict[tuple[str, str, str, grpc.StatusCode], tuple[Any, Any]] = {}
        Info("hotspot_build", "The running build.", registry=registry).info(build_info())
        # The same collectors prometheus_client's default registry has.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)

    def observe_grant(self, grant: Grant) -> None:
        self._wait.observe(grant.waited)

    def observe_refusal(self, error: PermitError) -> None:
        counter = self._rejected.get(rejection_reason(error))
        if counter is not None:
            counter.inc()

    def observe_rpc(
        self, service: str, method: str, rpc_type: str, code: grpc.StatusCode, seconds: float
    ) -> None:
        key = (service, method, rpc_type, code)
        children = self._rpc_children.get(key)
        if children is None:
            # labels() costs a lock and a tuple per call: looked up once per method and code.
            children = self._rpc_children[key] = (
                self._handled.labels(service, method, rpc_type, code.name),
                self._handling.labels(service, method, rpc_type),
            )
        handled, handling = children
        handled.inc()
        handling.observe(seconds)

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
            "hotspot_abandoned",
            "Leases that ended without a Release since the server started.",
            value=totals.abandoned_total,
        ),
    ]
