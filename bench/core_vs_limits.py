"""(b) The core's cost per acquire decision against `limits`' MovingWindowRateLimiter in memory.

Both run the same workload in this process: 50 per minute per key, keys cycled
so that every call is granted (`granted`), or one key already at its limit so
that every call is refused (`refused`). hotspot's side is the real
MemoryBackend.acquire awaited in a coroutine (as the servicer does), so the
figure includes what hotspot does beyond the decision: validating the fixture
id, issuing the permit and its lease, and the stats counters. The `decision`
row isolates the decision itself: the FixtureWindow the backend consults
(prune, count, record), the work that corresponds to limits' hit().
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import time
from collections.abc import Awaitable, Callable

from limits import RateLimitItemPerMinute, storage, strategies

from hotspot_core.errors import PermitRefused
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.window import FixtureWindow

KEYS = [f"fixture-{i}" for i in range(5_000)]
LIMIT, WINDOW = 50, 60.0


def limits_granted(n: int) -> float:
    limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    item = RateLimitItemPerMinute(LIMIT)
    keys = KEYS
    t = time.perf_counter()
    for i in range(n):
        if not limiter.hit(item, keys[i % len(keys)]):
            raise AssertionError("limits refused an uncontended hit")
    return (time.perf_counter() - t) / n


def limits_refused(n: int) -> float:
    limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    item = RateLimitItemPerMinute(LIMIT)
    for _ in range(LIMIT):
        limiter.hit(item, "hot")
    t = time.perf_counter()
    for _ in range(n):
        if limiter.hit(item, "hot"):
            raise AssertionError("limits granted past its limit")
    return (time.perf_counter() - t) / n


async def hotspot_granted(n: int) -> float:
    backend = MemoryBackend(PermitPolicy(limit=LIMIT, window=WINDOW))
    keys = KEYS
    t = time.perf_counter()
    for i in range(n):
        await backend.acquire(keys[i % len(keys)])
    elapsed = (time.perf_counter() - t) / n
    await backend.close()  # its lease timer would keep 100,000 leases alive into the next round
    return elapsed


async def hotspot_refused(n: int) -> float:
    backend = MemoryBackend(PermitPolicy(limit=LIMIT, window=WINDOW, queue=0))
    for _ in range(LIMIT):
        await backend.acquire("hot")
    t = time.perf_counter()
    for _ in range(n):
        try:
            await backend.acquire("hot")
        except PermitRefused:
            pass
        else:
            raise AssertionError("hotspot granted past its limit")
    elapsed = (time.perf_counter() - t) / n
    await backend.close()
    return elapsed


def hotspot_decision(n: int) -> float:
    windows = {key: FixtureWindow() for key in KEYS}
    keys = KEYS
    clock = time.monotonic
    t = time.perf_counter()
    for i in range(n):
        window = windows[keys[i % len(keys)]]
        now = clock()
        window.prune(now)
        if len(window) >= LIMIT:
            raise AssertionError("refused an uncontended decision")
        window.record(now)
    return (time.perf_counter() - t) / n


async def measure(n: int = 100_000) -> dict[str, float]:
    """Seconds per call for each side of each workload, measured back to back.

    Each starts from a collected heap, so that no side pays for the garbage of another.
    """
    runs: list[tuple[str, Callable[[int], float | Awaitable[float]]]] = [
        ("limits_granted", limits_granted),
        ("hotspot_granted", hotspot_granted),
        ("limits_refused", limits_refused),
        ("hotspot_refused", hotspot_refused),
        ("hotspot_decision", hotspot_decision),
    ]
    results: dict[str, float] = {}
    for name, run in runs:
        gc.collect()
        result = run(n)
        results[name] = await result if inspect.isawaitable(result) else result
    return results


if __name__ == "__main__":
    print(asyncio.run(measure()))
