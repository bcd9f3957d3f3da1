"""StatsFeed on virtual time: subscriber caps, ids per view, and alerts told off the Acquire."""

from __future__ import annotations

import asyncio
import contextlib
import traceback

import pytest

from hotspot_core.alerts import Alert, AlertState
from hotspot_core.errors import InvalidArgument
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView
from hotspot_core.stats_feed import StatsCaps, StatsFeed, TooManySubscribers

pytestmark = pytest.mark.looptime


async def test_subscribers_are_capped_per_caller_and_per_server() -> None:
    feed = StatsFeed(
        MemoryBackend(PermitPolicy()), StatsCaps(max_subscribers=3, max_subscribers_per_caller=2)
    )
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(feed.subscribe(StatsView(), 1.0, caller="a"))
        with pytest.raises(TooManySubscribers) as info:
            await stack.enter_async_context(feed.subscribe(StatsView(), 1.0, caller="a"))
        assert (info.value.scope, info.value.limit) == ("caller", 2)
        await stack.enter_async_context(feed.subscribe(StatsView(), 2.0, caller="b"))
        with pytest.raises(TooManySubscribers) as info:
            await stack.enter_async_context(feed.subscribe(StatsView(), 1.0, caller="c"))
        assert (info.value.scope, info.value.limit) == ("server", 3)
        assert feed.subscriber_count() == 3
    # All left: every slot is free again.
    assert feed.subscriber_count() == 0
    async with feed.subscribe(StatsView(), 1.0, caller="a") as subscription:
        assert await subscription.next() is not None
    await feed.close()


async def test_a_view_may_name_only_so_many_fixtures() -> None:
    feed = StatsFeed(MemoryBackend(PermitPolicy()), StatsCaps(max_fixture_ids=2))
    two = StatsView(fixture_ids=("a", "b"))
    assert feed.check_view(two) is two
    three = StatsView(fixture_ids=("a", "b", "c"))
    with pytest.raises(InvalidArgument) as info:
        feed.check_view(three)
    assert info.value.field == "fixture_ids"
    with pytest.raises(InvalidArgument):
        async with feed.subscribe(three, 1.0):
            pass
    assert feed.subscriber_count() == 0  # a refused view holds no slot
    await feed.close()


def test_caps_must_be_sane() -> None:
    with pytest.raises(ValueError, match="max_fixture_ids"):
        StatsCaps(max_fixture_ids=0)
    with pytest.raises(ValueError, match="subscriber caps"):
        StatsCaps(max_subscribers=-1)


async def test_alert_listeners_run_after_the_acquire_that_raised_it_not_inside() -> None:
    b = MemoryBackend(PermitPolicy(limit=5, window=60))  # raised at 4
    calls: list[tuple[Alert, list[str]]] = []

    def slow_listener(alert: Alert) -> None:
        calls.append((alert, [frame.name for frame in traceback.extract_stack()]))

    b.subscribe_alerts(slow_listener)
    for _ in range(4):
        await b.acquire("f")
    assert calls == []  # the 4th Acquire raised the alert and returned before anyone was told
    await asyncio.sleep(0)
    [(alert, stack)] = calls
    assert alert.state is AlertState.RAISED
    assert "acquire" not in stack
    assert "_grant" not in stack
    await b.close()


async def test_subscribers_get_alert_events_from_one_shared_log() -> None:
    b = MemoryBackend(PermitPolicy(limit=5, window=10))
    feed = StatsFeed(b)
    async with (
        feed.subscribe(StatsView(), 1.0) as everyone,
        feed.subscribe(StatsView(fixture_ids=("g",)), 1.0) as only_g,
    ):
        await everyone.next()
        await only_g.next()
        for fixture_id in ("f", "g"):
            for _ in range(4):
                await b.release((await b.acquire(fixture_id)).permit_id)
        await asyncio.sleep(1.5)
        all_events = await everyone.next()
        g_events = await only_g.next()
        assert all_events is not None
        assert g_events is not None
        assert [(a.fixture_id, a.state) for a in all_events.alert_events] == [
            ("f", AlertState.RAISED),
            ("g", AlertState.RAISED),
        ]
        assert [(a.fixture_id, a.state) for a in g_events.alert_events] == [
            ("g", AlertState.RAISED)
        ]
        await asyncio.sleep(1)
        again = await everyone.next()
        assert again is not None
        assert again.alert_events == []
    await feed.close()


async def test_a_tick_serves_every_view_of_its_interval_from_one_call() -> None:
    b = MemoryBackend(PermitPolicy(limit=5, window=60))
    calls: list[int] = []
    snapshots = b.snapshots

    async def counting(views):  # type: ignore[no-untyped-def]
        calls.append(len(views))
        return await snapshots(views)

    b.snapshots = counting  # type: ignore[method-assign]
    feed = StatsFeed(b)
    views = [StatsView(top_n=1), StatsView(top_n=5), StatsView(fixture_ids=("x",))]
    async with contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(feed.subscribe(v, 1.0)) for v in views * 3]
        for s in subs:
            await s.next()
        calls.clear()
        await asyncio.sleep(1.01)
        for s, view in zip(subs, views * 3, strict=True):
            snapshot = await s.next()
            assert snapshot is not None
            assert len(snapshot.fixtures) <= (view.top_n if not view.fixture_ids else 1)
        assert calls == [3]  # one call, the three distinct views
    await feed.close()
