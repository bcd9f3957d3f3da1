"""StatsFeed on virtual time: one snapshot per tick for all, none held back by another."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import pytest

from hotspot_core.alerts import AlertState
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsSnapshot, StatsView
from hotspot_core.stats_feed import StatsFeed

pytestmark = pytest.mark.looptime


class CountingBackend(MemoryBackend):
    """The real backend, counting the snapshots it is asked for (a tick asks for all its
    views in one call, so each call counts once)."""

    calls = 0

    async def stats(self, view: StatsView) -> StatsSnapshot:
        return (await self.snapshots([view]))[0]

    async def snapshots(self, views: Sequence[StatsView]) -> list[StatsSnapshot]:
        self.calls += 1
        return await super().snapshots(views)


async def test_subscribers_with_the_same_view_share_one_snapshot_per_tick() -> None:
    backend = CountingBackend(PermitPolicy(limit=5, window=60))
    feed = StatsFeed(backend)
    async with contextlib.AsyncExitStack() as stack:
        subscriptions = [
            await stack.enter_async_context(feed.subscribe(StatsView(), 1.0)) for _ in range(20)
        ]
        firsts = [await s.next() for s in subscriptions]
        assert backend.calls == 1  # the 19 that joined later started from the same one
        assert all(f is not None for f in firsts)
        await asyncio.sleep(3.5)
        for s in subscriptions:
            await s.next()
        assert backend.calls == 1 + 3
    await feed.close()


async def test_a_subscriber_that_stops_reading_skips_to_the_latest_with_every_alert() -> None:
    backend = MemoryBackend(PermitPolicy(limit=5, window=10))
    feed = StatsFeed(backend)
    async with feed.subscribe(StatsView(), 1.0) as idle, feed.subscribe(StatsView(), 1.0) as busy:
        await idle.next()
        await busy.next()
        for _ in range(4):  # 4 of 5: raised; each call over at once
            await backend.release((await backend.acquire("f")).permit_id)
        await asyncio.sleep(10.5)  # the grants leave: cleared
        received = 0
        for _ in range(3):
            assert await busy.next() is not None
            received += 1
        # `idle` read nothing for ten ticks: it gets the newest snapshot, and both alerts.
        snapshot = await idle.next()
        assert snapshot is not None
        assert snapshot.fixtures == []  # the fixture went idle and was forgotten
        assert [a.state for a in snapshot.alert_events] == [AlertState.RAISED, AlertState.CLEARED]
        assert received == 3
    await feed.close()


async def test_close_ends_every_subscription() -> None:
    feed = StatsFeed(MemoryBackend(PermitPolicy()))
    async with feed.subscribe(StatsView(), 1.0) as subscription:
        await subscription.next()
        await feed.close()
        assert await subscription.next() is None
    await feed.close()  # twice is harmless
