"""The warmer's Prometheus series, read from the scheduler at each scrape (no fixture labels)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hotspot_warmer.scheduler import WarmingScheduler
from hotspot_warmer.warming import RefreshResult, WarmingState


class WarmerCollector(Collector):
    def __init__(self, scheduler: WarmingScheduler) -> None:
        self._scheduler = scheduler

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        warmings = list(self._scheduler.warmings.values())
        states = GaugeMetricFamily(
            "hotspot_warmer_warmings", "Warmings known, by state", labels=["state"]
        )
        for state in WarmingState:
            states.add_metric([state.value], sum(1 for w in warmings if w.state is state))
        yield states
        results = CounterMetricFamily(
            "hotspot_warmer_refreshes",
            "Warming refreshes by result (refused and failed ones back off)",
            labels=["result"],
        )
        for result in RefreshResult:
            results.add_metric(
                [result.name.lower()], sum(w.counts.get(result, 0) for w in warmings)
            )
        yield results
        polls = CounterMetricFamily("hotspot_warmer_polls", "Polls of /fixtures", labels=["result"])
        polls.add_metric(["ok"], self._scheduler.polls)
        polls.add_metric(["failed"], self._scheduler.poll_errors)
        yield polls
