"""Past freshness the cached odds are served at once, marked stale, while one refresh runs;
when the refresh is refused or paused they keep being served up to the maximum staleness,
and only past it does the caller see the refusal, with its retry-after."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hotspot_client import RateLimitExceeded
from hotspot_client.optic_odds.cache import CacheEvent, Freshness, FreshnessRules
from tests.cache.conftest import MakeCacheRig
from tests.cache.waiting import until

FIXTURE = "20260208SB00LX02"
ODDS = "fixtures/odds"
# The fake's fixtures are unplayed: pre-game freshness applies (capped at kick-off, in 2026).
RULES = FreshnessRules(pregame_odds=Freshness(fresh_for=5.0, max_stale=20.0))


async def test_a_stale_entry_is_served_at_once_while_one_refresh_runs(
    make_cache_rig: MakeCacheRig,
) -> None:
    rig = await make_cache_rig(latency=0.2)
    odds = rig.client(freshness=RULES)
    assert odds.cache is not None
    metrics = odds.cache.metrics
    await odds.fixture_odds(FIXTURE, "DraftKings")
    rig.clock.advance(6.0)
    stale = await asyncio.gather(*(odds.fixture_odds(FIXTURE, "DraftKings") for _ in range(50)))
    assert all(a.stale and a.age == 6.0 for a in stale)
    assert rig.upstream_calls(FIXTURE) == 1  # answered before the refresh reached upstream
    await until(lambda: metrics.get(ODDS, CacheEvent.REFRESH) == 2)
    fresh = await odds.fixture_odds(FIXTURE, "DraftKings")
    assert not fresh.stale
    assert fresh.age == 0.0
    assert rig.upstream_calls(FIXTURE) == 2  # fifty stale reads, one refresh
    assert metrics.get(ODDS, CacheEvent.STALE) == 50


async def test_refused_refreshes_serve_stale_until_max_staleness_then_the_refusal(
    make_cache_rig: MakeCacheRig,
) -> None:
    rig = await make_cache_rig(limit=3, window=60.0)
    odds = rig.client(freshness=RULES)
    assert odds.cache is not None
    metrics = odds.cache.metrics
    first = await odds.fixture_odds(FIXTURE, "Pinnacle")
    assert first.cached
    assert not first.stale
    other = await rig.permits.acquire(FIXTURE, max_wait=0)  # another caller's call: 2 of 3
    # The next refresh takes the last slot and meets an upstream 429: the fixture is paused.
    await rig.fault(status=429, body='{"error": "rate limit exceeded"}', times=1)
    rig.clock.advance(6.0)
    assert (await odds.fixture_odds(FIXTURE, "Pinnacle")).stale
    await until(lambda: metrics.get(ODDS, CacheEvent.REFRESH_FAILURE) == 1)
    # Window full and paused: every refresh from now on is refused.
    served_ages = []
    for _ in range(7):
        rig.clock.advance(2.0)
        answer = await odds.fixture_odds(FIXTURE, "Pinnacle")
        assert answer.stale
        served_ages.append(answer.age)
        await asyncio.sleep(0.05)  # room for a background refresh, if one is due
    assert served_ages[-1] == 6.0 + 2.0 * 7  # 20 s, still within 5 s fresh + 20 s stale
    # The first fetch; the refresh that met the scripted 429 is not in the fake's tally, and
    # none was sent after it: each retry was refused by the permit server.
    assert rig.upstream_calls(FIXTURE) == 1
    assert metrics.get(ODDS, CacheEvent.REFRESH_FAILURE) >= 2
    rig.clock.advance(6.0)  # past the maximum staleness: the caller meets the refusal itself
    with pytest.raises(RateLimitExceeded) as refused:
        await odds.fixture_odds(FIXTURE, "Pinnacle")
    assert refused.value.retry_after > 0
    assert rig.upstream_calls(FIXTURE) == 1
    await rig.permits.release(other)


async def test_with_redis_down_reads_call_through_and_one_warning_is_logged(
    make_cache_rig: MakeCacheRig, caplog: pytest.LogCaptureFixture
) -> None:
    rig = await make_cache_rig()
    # Nothing listens on this port: every store operation fails at once.
    odds = rig.client("redis://127.0.0.1:9/0")
    with caplog.at_level(logging.WARNING, logger="hotspot.cache"):
        for _ in range(3):
            answer = await odds.fixture_odds(FIXTURE, "BetMGM")
            assert answer.data[0].odds
            assert not answer.stale
            rig.clock.advance(2.0)  # past the outage's retry interval: the store is tried again
    assert rig.upstream_calls(FIXTURE) == 3  # no cache, so each read calls through
    warnings = [r for r in caplog.records if r.name == "hotspot.cache"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "calling Optic Odds directly" in warnings[0].getMessage()
