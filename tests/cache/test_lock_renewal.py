"""A replica's refresh lock lasts as long as its fetch, however long that waits for a permit.

The lock in Redis has a short TTL (so a replica that dies mid-fetch frees it). A fetch can
outlast it: at a hot fixture's kick-off it queues for a permit (the gateway's max_wait is 10 s,
the lock's TTL 10 s) and then makes its call. The holder renews the lock while it fetches, so
the other replicas keep waiting for its result instead of taking the expired lock and spending
a second permit and upstream call on the same entry.
"""

from __future__ import annotations

import asyncio

from hotspot_client import Outcome
from hotspot_client.optic_odds import query
from hotspot_client.optic_odds.cache import CacheEvent, cache_key
from hotspot_client.optic_odds.cache.redis_store import LOCK_SUFFIX
from tests.cache.conftest import MakeCacheRig

FIXTURE = "20260208LOCKRENEW"
LOCK_TTL = 0.3


async def test_a_fetch_waiting_past_the_lock_ttl_keeps_its_lock_and_the_other_replica_waits(
    make_cache_rig: MakeCacheRig, redis_url: str
) -> None:
    rig = await make_cache_rig(limit=1, window=1.0)
    replicas = [rig.client(redis_url, lock_ttl=LOCK_TTL), rig.client(redis_url, lock_ttl=LOCK_TTL)]
    held = await rig.permits.acquire(FIXTURE)  # the window's one slot, a user's for now
    first = asyncio.create_task(replicas[0].fixture_odds(FIXTURE, "DraftKings", max_wait=5.0))
    await asyncio.sleep(0.05)  # the first replica holds the lock, queued for a permit
    second = asyncio.create_task(replicas[1].fixture_odds(FIXTURE, "DraftKings", max_wait=5.0))
    await asyncio.sleep(4 * LOCK_TTL)  # the first one still waits, past its lock's TTL
    assert not first.done()
    store = replicas[0].cache.store if replicas[0].cache else None
    assert store is not None
    assert await store.is_locked(_key()), "the waiting fetch lost its lock"
    await rig.permits.release(held, Outcome.NOT_SENT)  # the slot is free: the first one gets it
    answers = await asyncio.gather(first, second)

    assert rig.upstream_calls(FIXTURE) == 1
    assert await rig.grants_total() == 2  # the user's, and one fetch's
    assert answers[0].data[0].odds == answers[1].data[0].odds
    refreshes = [r.cache.metrics.total(CacheEvent.REFRESH) for r in replicas if r.cache]
    assert refreshes == [1, 0]
    # Released after the fetch, not left to expire.
    assert not await store.is_locked(_key())


def _key() -> str:
    """The cache key of the test's request (its lock is this plus LOCK_SUFFIX)."""
    params = query.odds(query.fixture_ids(FIXTURE, at_most=5), "DraftKings", None)
    key = cache_key("fixtures/odds", params)
    assert not key.endswith(LOCK_SUFFIX)
    return key
