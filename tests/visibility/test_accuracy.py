"""After a burst of known grants, queued requests and refusals, every view reports exactly them.

/health/hot-spots, /metrics, Stats and WatchStats all read the same core snapshot.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from hotspot.v1 import permits_pb2 as pb
from hotspot_client.proto_time import timestamp_seconds
from tests.integration.test_grpc_permits import next_stats
from tests.visibility.conftest import Samples, StartVisible, VisibleServer, sample

COUNTS = ("calls_in_window", "calls_total", "queue_depth", "rejected_total", "in_flight", "hot")
TOTALS = ("fixtures_tracked", "calls_total", "rejected_total", "queue_depth", "in_flight")
EXPECTED_ROWS = {
    # limit 20, queue 10: 20 granted at once, 10 queued, 15 + 3 refused.
    "hot": {"calls_in_window": 20, "calls_total": 20, "queue_depth": 10, "rejected_total": 18,
            "in_flight": 20, "hot": True},
    # 7 granted; 3 released as sent, 2 as not sent (refunded: they leave the window).
    "warm": {"calls_in_window": 5, "calls_total": 7, "queue_depth": 0, "rejected_total": 0,
             "in_flight": 2, "hot": False},
    "cold": {"calls_in_window": 1, "calls_total": 1, "queue_depth": 0, "rejected_total": 0,
             "in_flight": 1, "hot": False},
}  # fmt: skip
EXPECTED_TOTALS = {
    "fixtures_tracked": 3,
    "calls_total": 28,
    "rejected_total": 18,
    "queue_depth": 10,
    "in_flight": 23,
}


async def acquire(h: VisibleServer, fixture_id: str, **kw: Any) -> pb.AcquireResponse:
    return await h.stub.Acquire(pb.AcquireRequest(fixture_id=fixture_id, **kw))


async def burst(h: VisibleServer) -> list[asyncio.Task[pb.AcquireResponse]]:
    """Drive the known traffic; returns the queued calls (still waiting)."""
    await asyncio.gather(*(acquire(h, "hot") for _ in range(20)))
    queued = [asyncio.ensure_future(acquire(h, "hot")) for _ in range(10)]
    deadline = time.monotonic() + 5
    while (await h.hot_spots("?fixture_id=hot"))["fixtures"][0]["queue_depth"] < 10:
        assert time.monotonic() < deadline, "the 10 waiters never queued"
        await asyncio.sleep(0.01)
    refusals = await asyncio.gather(
        *(acquire(h, "hot") for _ in range(15)),
        *(acquire(h, "hot", max_wait=Duration()) for _ in range(3)),
        return_exceptions=True,
    )
    assert all(
        isinstance(r, grpc.aio.AioRpcError) and r.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        for r in refusals
    ), refusals
    warm = await asyncio.gather(*(acquire(h, "warm") for _ in range(7)))
    outcomes = [pb.OUTCOME_SUCCESS] * 3 + [pb.OUTCOME_NOT_SENT] * 2
    for permit, outcome in zip(warm[:5], outcomes, strict=True):
        await h.stub.Release(pb.ReleaseRequest(permit_id=permit.permit_id, outcome=outcome))
    await acquire(h, "cold")
    return queued


def proto_counts(response: pb.StatsResponse) -> tuple[dict[str, Any], dict[str, Any]]:
    rows = {r.fixture_id: {k: getattr(r, k) for k in COUNTS} for r in response.fixtures}
    return rows, {k: getattr(response.totals, k) for k in TOTALS}


def metrics_counts(samples: Samples) -> tuple[dict[str, Any], dict[str, Any]]:
    names = {
        "calls_in_window": "fixture_calls_in_window",
        "calls_total": "fixture_api_calls_total",
        "queue_depth": "fixture_queue_depth",
        "rejected_total": "fixture_rejected_total",
        "hot": "fixture_hot",
    }
    rows: dict[str, Any] = {}
    for fixture_id in EXPECTED_ROWS:
        row = {k: sample(samples, name, fixture_id=fixture_id) for k, name in names.items()}
        row["hot"] = row["hot"] == 1.0
        # No per-fixture in-flight series: /health/hot-spots and Stats carry it.
        row["in_flight"] = EXPECTED_ROWS[fixture_id]["in_flight"]
        rows[fixture_id] = row
    totals = {
        "fixtures_tracked": sample(samples, "hotspot_fixtures_tracked"),
        "calls_total": sample(samples, "hotspot_api_calls_total"),
        # Server-wide refusals are counted by reason; together they are the core's total.
        "rejected_total": sum(
            value for (name, _), value in samples.items() if name == "hotspot_rejected_total"
        ),
        "queue_depth": sample(samples, "hotspot_queue_depth"),
        "in_flight": sample(samples, "hotspot_permits_in_flight"),
    }
    return rows, totals


@pytest.mark.timeout(30)
async def test_every_view_reports_exactly_the_burst(start_visible: StartVisible) -> None:
    h = await start_visible(limit=20, queue=10, window=30)
    watch = h.stub.WatchStats(pb.WatchStatsRequest(interval=Duration(nanos=200_000_000)))
    await next_stats(watch)  # subscribed before the burst
    queued = await burst(h)
    burst_over = time.time()

    body = await h.hot_spots()
    http_rows = {r["fixture_id"]: {k: r[k] for k in COUNTS} for r in body["fixtures"]}
    assert (http_rows, {k: body["totals"][k] for k in TOTALS}) == (EXPECTED_ROWS, EXPECTED_TOTALS)
    assert [a["fixture_id"] for a in body["alerts"]] == ["hot"]

    stats = await h.stub.Stats(pb.StatsRequest())
    assert proto_counts(stats) == (EXPECTED_ROWS, EXPECTED_TOTALS)

    message = await next_stats(watch)
    while timestamp_seconds(message.generated_at) < burst_over:  # a tick from mid-burst
        message = await next_stats(watch)
    assert proto_counts(message) == (EXPECTED_ROWS, EXPECTED_TOTALS)
    watch.cancel()

    samples = await h.scrape()
    assert metrics_counts(samples) == (EXPECTED_ROWS, EXPECTED_TOTALS)
    # One wait observation per grant; the queued ones have not been granted yet.
    assert sample(samples, "hotspot_acquire_wait_seconds_count") == 28
    assert not any(task.done() for task in queued)
