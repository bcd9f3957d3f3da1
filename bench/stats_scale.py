"""(h) Stats and WatchStats at 100,000 fixtures: tick cost, Stats cost, Acquire latency.

In one process, over the real MemoryBackend and StatsFeed (no transport, so the figures are
the loop time the stats work itself takes). 100,000 fixtures hold 1 to 5 grants each. Between
two ticks, traffic of 2,000 grants per second goes to random fixtures (the ranking measures
each of them again). Acquire latency is measured from each request's scheduled arrival (one
every millisecond) to its grant and release, so any time the loop spends elsewhere (a stats
tick, a Stats call) shows in it; it is compared idle and with 10 Stats calls per second,
then with 200 WatchStats subscribers with distinct views (100 top-N, 100 of 10 named ids).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from bench.stats import median, percentile
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsSnapshot, StatsView
from hotspot_core.stats_feed import StatsCaps, StatsFeed

FIXTURES = 100_000
GRANTS_PER_SECOND = 2000
ARRIVAL_INTERVAL = 0.001
SUBSCRIBERS = 200


async def _filled(rng: random.Random) -> MemoryBackend:
    backend = MemoryBackend(PermitPolicy(max_fixtures=FIXTURES * 2, lease=600))
    for i in range(FIXTURES):
        for _ in range(rng.randint(1, 5)):
            grant = await backend.acquire(f"fx-{i}")
            if rng.random() < 0.8:
                await backend.release(grant.permit_id)
    return backend


async def _traffic(backend: MemoryBackend, rng: random.Random, grants: int) -> None:
    for _ in range(grants):
        grant = await backend.acquire(f"fx-{rng.randrange(FIXTURES)}")
        await backend.release(grant.permit_id)


async def _timed(call: Awaitable[object]) -> float:
    started = time.perf_counter()
    await call
    return (time.perf_counter() - started) * 1000


async def _acquire_latencies(
    backend: MemoryBackend, rng: random.Random, seconds: float
) -> list[float]:
    """ms from each request's scheduled arrival to its release."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    start = loop.time()
    n = 0
    while (due := start + n * ARRIVAL_INTERVAL) < start + seconds:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        grant = await backend.acquire(f"fx-{rng.randrange(FIXTURES)}")
        await backend.release(grant.permit_id)
        latencies.append((loop.time() - due) * 1000)
        n += 1
    return latencies


async def _while(
    background: Callable[[], Coroutine[Any, Any, None]], measure: Awaitable[list[float]]
) -> list[float]:
    task = asyncio.create_task(background())
    try:
        return await measure
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def measure(seconds: float = 5.0, ticks: int = 20) -> dict[str, float]:
    rng = random.Random(1)
    backend = await _filled(rng)
    # The fill's objects live on: frozen, so that no full collection over 100,000 fixtures
    # (about 100 ms) lands in one phase and not another. hotspot-server does not freeze yet.
    gc.collect()
    gc.freeze()
    result: dict[str, float] = {"fixtures": float(FIXTURES)}
    top10 = StatsView()
    result["first_call_with_rescan_ms"] = await _timed(backend.stats(top10))

    per_tick = GRANTS_PER_SECOND  # one second of traffic between ticks
    tick_ms: list[float] = []
    for _ in range(ticks):
        await _traffic(backend, rng, per_tick)
        tick_ms.append(await _timed(backend.snapshots([top10])))
    result["tick_top10_ms_median"] = median(tick_ms)
    result["tick_top10_ms_max"] = max(tick_ms)

    await backend.stats(StatsView(top_n=1000))  # the /metrics view: the ranking holds more
    big: list[float] = []
    for _ in range(ticks):
        await _traffic(backend, rng, per_tick)
        big.append(await _timed(backend.snapshots([top10, StatsView(top_n=1000)])))
    result["tick_top10_and_top1000_ms_median"] = median(big)

    calls: list[float] = []
    for _ in range(ticks):
        await _traffic(backend, rng, GRANTS_PER_SECOND // 10)  # 10 calls per second
        calls.append(await _timed(backend.stats(top10)))
    result["stats_call_ms_median"] = median(calls)
    result["stats_call_ms_max"] = max(calls)

    idle = await _acquire_latencies(backend, rng, seconds)

    async def stats_10_per_second() -> None:
        while True:
            await asyncio.sleep(0.1)
            await backend.stats(top10)

    loaded = await _while(stats_10_per_second, _acquire_latencies(backend, rng, seconds))
    result["acquire_p99_idle_ms"] = percentile(idle, 99)
    result["acquire_p99_stats_10_per_s_ms"] = percentile(loaded, 99)
    result["acquire_p99_ratio_stats"] = percentile(loaded, 99) / percentile(idle, 99)

    feed = StatsFeed(backend, StatsCaps(max_subscribers_per_caller=SUBSCRIBERS))
    views = [StatsView(top_n=n) for n in range(1, SUBSCRIBERS // 2 + 1)] + [
        StatsView(fixture_ids=tuple(f"fx-{rng.randrange(FIXTURES)}" for _ in range(10)))
        for _ in range(SUBSCRIBERS // 2)
    ]
    feed_ticks: list[float] = []
    snapshots = backend.snapshots

    async def timed_snapshots(views: Sequence[StatsView]) -> list[StatsSnapshot]:
        started = time.perf_counter()
        try:
            return await snapshots(views)
        finally:
            feed_ticks.append((time.perf_counter() - started) * 1000)

    backend.snapshots = timed_snapshots  # type: ignore[method-assign]

    async def subscribers() -> None:
        async def read(view: StatsView) -> None:
            async with feed.subscribe(view, 1.0) as subscription:
                async for _ in subscription:
                    pass

        await asyncio.gather(*(read(v) for v in views))

    with_subscribers = await _while(subscribers, _acquire_latencies(backend, rng, seconds))
    await feed.close()
    result["subscribers"] = float(len(views))
    # The largest: a tick of all 200 views (the others are subscribers joining, one view each).
    result["tick_200_views_ms_max"] = max(feed_ticks)
    result["acquire_p99_200_subscribers_ms"] = percentile(with_subscribers, 99)
    result["acquire_p99_ratio_subscribers"] = percentile(with_subscribers, 99) / percentile(
        idle, 99
    )
    ranking = backend._ranking  # counters only
    result["rescans"] = float(ranking.rescans)
    result["refreshes"] = float(ranking.refreshes)
    await backend.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per latency phase")
    args = parser.parse_args()
    logging.getLogger("hotspot").setLevel(logging.ERROR)
    print(json.dumps(asyncio.run(measure(args.seconds)), indent=1))


if __name__ == "__main__":
    main()
