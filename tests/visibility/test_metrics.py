"""GET /metrics: names and values, bounded per-fixture series, the wait histogram, promtool."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from asyncio.subprocess import PIPE, STDOUT
from pathlib import Path

import pytest

from hotspot.v1 import permits_pb2 as pb
from tests.integration.test_grpc_permits import fill, used, wait_for_depth
from tests.visibility.conftest import StartVisible, sample

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: install Debian's `prometheus` package (.ci/run does)",
)


async def test_every_series_with_its_value(start_visible: StartVisible) -> None:
    h = await start_visible(limit=5, window=30, queue=1)
    await fill(h, "hot", 5)
    await fill(h, "warm", 2)
    waiter = asyncio.ensure_future(h.stub.Acquire(pb.AcquireRequest(fixture_id="hot")))
    await wait_for_depth(h, "hot", 1)
    async with h.http.get("/metrics") as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = await h.scrape()
    expected = {
        ("fixture_api_calls_total", "hot"): 5,
        ("fixture_api_calls_total", "warm"): 2,
        ("fixture_calls_in_window", "hot"): 5,
        ("fixture_queue_depth", "hot"): 1,
        ("fixture_queue_depth", "warm"): 0,
        ("fixture_rejected_total", "hot"): 0,
        ("fixture_hot", "hot"): 1,
        ("fixture_hot", "warm"): 0,
        ("fixture_utilization", "warm"): 0.4,
    }
    got = {key: sample(samples, key[0], fixture_id=key[1]) for key in expected}
    assert got == expected
    assert sample(samples, "hotspot_permits_in_flight") == 7
    assert sample(samples, "hotspot_fixtures_tracked") == 2
    assert sample(samples, "hotspot_api_calls_total") == 7
    assert sample(samples, "hotspot_acquire_wait_seconds_count") == 7
    assert sample(samples, "hotspot_acquire_wait_seconds_bucket", le="0.001") == 7
    waiter.cancel()


async def test_wait_histogram_records_how_long_queued_grants_waited(
    start_visible: StartVisible,
) -> None:
    h = await start_visible(limit=2, window=1)
    await used(h, "f", 2)
    queued = await h.stub.Acquire(pb.AcquireRequest(fixture_id="f"))  # waits ~1 s
    assert queued.queue_position == 1
    samples = await h.scrape()
    assert sample(samples, "hotspot_acquire_wait_seconds_count") == 3
    assert sample(samples, "hotspot_acquire_wait_seconds_bucket", le="0.5") == 2
    assert sample(samples, "hotspot_acquire_wait_seconds_bucket", le="2.5") == 3
    total = sample(samples, "hotspot_acquire_wait_seconds_sum")
    assert total is not None
    assert 0.9 < total < 1.5


async def test_only_the_hottest_fixtures_carry_series(start_visible: StartVisible) -> None:
    h = await start_visible(limit=10, window=30, metrics_max_fixtures=2)
    for fixture_id, n in [("a", 4), ("b", 3), ("c", 2), ("d", 1)]:
        await fill(h, fixture_id, n)
    samples = await h.scrape()
    labelled = {
        dict(labels)["fixture_id"]
        for (name, labels) in samples
        if name == "fixture_api_calls_total" and labels
    }
    assert labelled == {"a", "b"}
    # The server-wide counters still count every fixture.
    assert sample(samples, "hotspot_api_calls_total") == 10
    assert sample(samples, "hotspot_fixtures_tracked") == 4


async def test_a_forgotten_fixture_loses_its_series(start_visible: StartVisible) -> None:
    h = await start_visible(limit=10, window=1)
    [permit] = await fill(h, "brief", 1)
    await h.stub.Release(pb.ReleaseRequest(permit_id=permit.permit_id))
    assert sample(await h.scrape(), "fixture_api_calls_total", fixture_id="brief") == 1
    deadline = time.monotonic() + 3
    while sample(samples := await h.scrape(), "hotspot_fixtures_tracked") != 0:
        assert time.monotonic() < deadline, "the idle fixture was never forgotten"
        await asyncio.sleep(0.1)
    assert not [key for key in samples if ("fixture_id", "brief") in key[1]]


@needs_promtool
async def test_promtool_accepts_the_exposition(start_visible: StartVisible) -> None:
    h = await start_visible(limit=5, window=30)
    await fill(h, "hot", 5)
    async with h.http.get("/metrics") as response:
        text = await response.read()
    assert PROMTOOL is not None
    promtool = await asyncio.create_subprocess_exec(
        PROMTOOL, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
    )
    findings, _ = await asyncio.wait_for(promtool.communicate(text), 30)
    assert promtool.returncode == 0, findings
    assert findings.strip() == b"", findings  # no lint findings either


@needs_promtool
def test_promtool_checks_and_unit_tests_the_alert_rules() -> None:
    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES / "alerts.yml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 3 rules found" in checked.stdout
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
