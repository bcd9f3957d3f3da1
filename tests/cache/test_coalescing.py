"""Identical concurrent reads make one upstream call under one permit: in one process
(single-flight), and across replicas sharing Redis (a short lock, the others polling)."""

from __future__ import annotations

import asyncio

import pytest

from hotspot_client import Outcome, RateLimitExceeded
from hotspot_client.optic_odds.cache import CacheEvent
from tests.cache.conftest import MakeCacheRig

FIXTURE = "20260208SB00LX01"


async def test_a_thousand_identical_reads_in_one_process_make_one_call_and_take_one_permit(
    make_cache_rig: MakeCacheRig,
) -> None:
    rig = await make_cache_rig(latency=0.05)
    odds = rig.client()
    # The same request, spelled in different orders and cases: one entry.
    spellings = [
        (["DraftKings", "Pinnacle"], ["Moneyline", "Total Points"]),
        (["pinnacle", "draftkings"], ["total points", "moneyline"]),
    ]
    answers = await asyncio.gather(
        *(odds.fixture_odds(FIXTURE, *spellings[i % 2]) for i in range(1000))
    )
    assert rig.upstream_calls(FIXTURE) == 1
    assert await rig.grants_total() == 1
    assert all(a.data[0].id == FIXTURE and a.data[0].odds for a in answers)
    assert all(a.cached and not a.stale for a in answers)
    assert odds.cache is not None
    metrics = odds.cache.metrics
    assert metrics.get("fixtures/odds", CacheEvent.MISS) == 1000
    assert metrics.get("fixtures/odds", CacheEvent.COALESCED) == 999
    assert metrics.get("fixtures/odds", CacheEvent.REFRESH) == 1
    # Fresh now: the next read is a hit, with no call.
    again = await odds.fixture_odds(
        FIXTURE, ["DraftKings", "Pinnacle"], ["Moneyline", "Total Points"]
    )
    assert again.cached
    assert again.age == 0.0
    assert metrics.get("fixtures/odds", CacheEvent.HIT) == 1
    assert rig.upstream_calls(FIXTURE) == 1


async def test_a_cancelled_reader_does_not_cancel_the_fetch_the_others_wait_on(
    make_cache_rig: MakeCacheRig,
) -> None:
    rig = await make_cache_rig(latency=0.3)
    odds = rig.client()
    first = asyncio.create_task(odds.fixture_odds(FIXTURE, "DraftKings"))
    await asyncio.sleep(0.05)  # the first reader leads the fetch, on the way upstream
    others = [asyncio.create_task(odds.fixture_odds(FIXTURE, "DraftKings")) for _ in range(20)]
    await asyncio.sleep(0.05)
    first.cancel()
    answers = await asyncio.gather(*others)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert all(a.data[0].odds for a in answers)
    assert rig.upstream_calls(FIXTURE) == 1
    assert await rig.grants_total() == 1
    # ...and the entry was stored: the next read is a hit.
    await odds.fixture_odds(FIXTURE, "DraftKings")
    assert rig.upstream_calls(FIXTURE) == 1


async def test_a_refusal_is_never_cached(make_cache_rig: MakeCacheRig) -> None:
    rig = await make_cache_rig(limit=1)
    odds = rig.client()
    held = await rig.permits.acquire(FIXTURE)  # the fixture's one slot, taken by someone else
    refusals = await asyncio.gather(
        *(odds.fixture_odds(FIXTURE, "DraftKings") for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, RateLimitExceeded) for r in refusals), refusals
    assert rig.upstream_calls(FIXTURE) == 0
    await rig.permits.release(held, Outcome.NOT_SENT)  # refunded at once
    answer = await odds.fixture_odds(FIXTURE, "DraftKings")  # tried again, not served a refusal
    assert answer.data[0].odds
    assert rig.upstream_calls(FIXTURE) == 1


async def test_two_replicas_sharing_redis_make_one_call_between_them(
    make_cache_rig: MakeCacheRig, redis_url: str
) -> None:
    rig = await make_cache_rig(latency=0.2)
    # Two clients, each with its own cache object and single-flight: two replicas' worth.
    replicas = [rig.client(redis_url), rig.client(redis_url)]
    answers = await asyncio.gather(
        *(replicas[i % 2].fixture_odds(FIXTURE, "FanDuel") for i in range(400))
    )
    assert all(a.data[0].odds for a in answers)
    assert rig.upstream_calls(FIXTURE) == 1
    assert await rig.grants_total() == 1
    refreshes = [r.cache.metrics.total(CacheEvent.REFRESH) for r in replicas if r.cache]
    assert sorted(refreshes) == [0, 1]  # one replica fetched; the other waited on its lock
