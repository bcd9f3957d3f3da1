"""The HTTP side over real HTTP on loopback: hot spots, the stream, health, readiness, errors."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import grpc
import pytest

from hotspot.v1 import permits_pb2 as pb
from tests.integration.test_grpc_permits import fill
from tests.visibility.conftest import StartVisible, WebhookReceiver


async def read_events(response: aiohttp.ClientResponse, n: int) -> list[Any]:
    """The data of the next n server-sent events."""
    events: list[Any] = []
    while len(events) < n:
        line = (await response.content.readline()).decode()
        assert line, "the stream ended"
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: ") :]))
    return events


async def test_hot_spots_lists_the_top_10_with_totals_and_alerts(
    start_visible: StartVisible,
) -> None:
    h = await start_visible(limit=20, window=30)
    for i in range(12):
        await fill(h, f"f{i:02d}", i + 1)
    await fill(h, "hot", 17)  # 0.8 * 20 = 16: hot
    body = await h.hot_spots()
    rows = body["fixtures"]
    assert [r["fixture_id"] for r in rows] == ["hot"] + [f"f{i:02d}" for i in range(11, 2, -1)]
    top = rows[0]
    assert top == {
        "fixture_id": "hot",
        "calls_in_window": 17,
        "calls_total": 17,
        "queue_depth": 0,
        "queue_capacity": 100,
        "rejected_total": 0,
        "in_flight": 17,
        "limit": 20,
        "window_seconds": 30.0,
        "utilization": 0.85,
        "hot": True,
        "paused_until": None,
        "abandoned_total": 0,
        "expected_hold_seconds": 1.0,  # no release seen yet
        "warming": False,
    }
    assert not any(r["hot"] for r in rows[1:])
    assert body["totals"]["fixtures_tracked"] == 13
    assert body["totals"]["calls_total"] == 17 + sum(range(1, 13))
    assert [(a["fixture_id"], a["state"], a["threshold"]) for a in body["alerts"]] == [
        ("hot", "raised", 16)
    ]
    assert body["policy"] == {
        "limit": 20,
        "window_seconds": 30.0,
        "queue_capacity": 100,
        "alert_threshold": 16,
        "clear_below": 14,
    }


async def test_hot_spots_lists_the_announced_warmings_scheduled_and_running(
    start_visible: StartVisible,
) -> None:
    from hotspot_client import PermitClient
    from hotspot_core.warming_board import ScheduledWarming

    h = await start_visible()
    kickoff = 1_900_000_000.0  # 2030-03-17T17:46:40Z
    board = [
        ScheduledWarming("later", "nfl-championship", kickoff, kickoff + 900, kickoff + 9000),
        ScheduledWarming(
            "now", "super-bowl", time.time() - 1, time.time() + 899, time.time() + 9e3
        ),
    ]
    async with PermitClient(h.target) as warmer:
        await warmer.announce_warmings(board, announcer="warmer-1")
    body = await h.hot_spots("?top=1")
    assert body["scheduled_warmings"][0]["fixture_id"] == "now"
    assert body["scheduled_warmings"][0]["state"] == "running"
    assert body["scheduled_warmings"][1] == {
        "fixture_id": "later",
        "rule": "nfl-championship",
        "state": "scheduled",
        "starts_at": "2030-03-17T17:46:40.000Z",
        "kickoff": "2030-03-17T18:01:40.000Z",
        "ends_at": "2030-03-17T20:16:40.000Z",
    }


async def test_top_and_fixture_id_choose_the_rows(start_visible: StartVisible) -> None:
    h = await start_visible(limit=20, window=30)
    for fixture_id, n in [("a", 5), ("b", 3), ("c", 1)]:
        await fill(h, fixture_id, n)
    body = await h.hot_spots("?top=2")
    assert [r["fixture_id"] for r in body["fixtures"]] == ["a", "b"]
    body = await h.hot_spots("?fixture_id=c&fixture_id=never-seen&fixture_id=b")
    rows = {r["fixture_id"]: r["calls_in_window"] for r in body["fixtures"]}
    assert [r["fixture_id"] for r in body["fixtures"]] == ["b", "c", "never-seen"]
    assert rows == {"b": 3, "c": 1, "never-seen": 0}


@pytest.mark.parametrize(
    ("path", "field", "rule"),
    [
        ("/health/hot-spots?top=abc", "top", "top must be a whole number from 1 to 1000"),
        ("/health/hot-spots?top=0", "top", "top must be a whole number from 1 to 1000"),
        ("/health/hot-spots?top=1001", "top", "top must be a whole number from 1 to 1000"),
        ("/health/hot-spots?top=1&top=2", "top", "top may be given only once"),
        ("/health/hot-spots?fixture_id=not%20ok", "fixture_id", "1 to 128 characters"),
        ("/health/hot-spots?tpo=3", "tpo", "unknown query parameter 'tpo'"),
        ("/health/hot-spots?interval=1s", "interval", "unknown query parameter 'interval'"),
        ("/health/hot-spots/stream?interval=50ms", "interval", "at least 100 ms"),
        ("/health/hot-spots/stream?interval=soon", "interval", "not a duration"),
    ],
)
async def test_bad_query_is_400_naming_the_rule(
    start_visible: StartVisible, path: str, field: str, rule: str
) -> None:
    h = await start_visible()
    status, body = await h.get_json(path)
    assert status == 400
    assert body["error"] == "invalid_argument"
    assert body["field"] == field
    assert rule in body["message"]


async def test_unknown_paths_and_methods_answer_json(start_visible: StartVisible) -> None:
    h = await start_visible()
    status, body = await h.get_json("/health/hotspots")
    assert status == 404
    assert "/health/hot-spots" in body["message"]  # the endpoints are listed
    async with h.http.post("/metrics") as response:
        assert response.status == 405
        assert (await response.json())["error"] == "method_not_allowed"


async def test_stream_sends_the_same_json_at_once_then_per_interval(
    start_visible: StartVisible,
) -> None:
    h = await start_visible(limit=5, window=30)
    async with h.http.get("/health/hot-spots/stream?interval=200ms&top=3") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        t = time.monotonic()
        [first] = await read_events(response, 1)
        assert time.monotonic() - t < 0.15  # the first snapshot comes at once
        assert first["fixtures"] == []
        await fill(h, "f", 4)  # 4 of 5: raised
        later = await read_events(response, 3)
        assert later[-1]["fixtures"][0]["calls_in_window"] == 4
        events = [e for message in later for e in message["alert_events"]]
        assert [(e["fixture_id"], e["state"], e["calls_in_window"]) for e in events] == [
            ("f", "raised", 4)
        ]
        # The stream ends cleanly when the server stops (the feed closes every subscription).
        await h.server.stop(0)
        rest = await asyncio.wait_for(response.content.read(), 2)  # returns at the end only
        assert rest.strip() == b""


async def test_healthz_and_readyz_while_serving_and_shutting_down(
    start_visible: StartVisible, receiver: WebhookReceiver
) -> None:
    h = await start_visible(limit=5, window=30, grace=1.0, alert_webhook=receiver.url)
    assert await h.get_json("/healthz") == (200, {"status": "alive"})
    assert await h.get_json("/readyz") == (200, {"status": "serving"})
    # A webhook delivery that hangs keeps the shutdown busy for its grace period.
    receiver.script.append("hang")
    await fill(h, "f", 4)
    await receiver.wait_for(attempts=1)
    t = time.monotonic()
    stopping = asyncio.ensure_future(h.server.stop())
    assert await h.get_json("/readyz") == (503, {"status": "shutting_down"})
    assert await h.get_json("/healthz") == (200, {"status": "alive"})
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await h.stub.Acquire(pb.AcquireRequest(fixture_id="g"))
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    await stopping
    assert time.monotonic() - t < 1.8  # --grace 1s, whatever the webhook does
    with pytest.raises(aiohttp.ClientConnectionError):
        await h.get_json("/healthz")


async def test_dashboard_page_is_one_self_contained_file(start_visible: StartVisible) -> None:
    h = await start_visible()
    async with h.http.get("/dashboard") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "connect-src 'self'" in response.headers["Content-Security-Policy"]
        page = await response.text()
    assert "/health/hot-spots/stream" in page
    # Inline CSS and JS only: nothing to fetch, from this host or another.
    for reference in ("http://", "https://", "src=", '<link rel="stylesheet"', "@import"):
        assert reference not in page
