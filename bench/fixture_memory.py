"""(d) Memory per tracked fixture: 100,000 fixtures, each holding a full window of 50 grants.

Every grant goes through the real MemoryBackend (acquire, then release). Leases
are made short and left to expire batch by batch, so what remains is what a
fixture with a full window costs: its window, its state, its entry in the
fixture table, its hot-spot alert and its timer (a full fixture is hot). The
window is an hour so nothing leaves it while the table fills. Measured two
ways: the growth of the process's resident memory (everything, allocator
overhead included), and Python's traced allocations (tracemalloc: live objects
only) over the last 10,000 fixtures added.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import os
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass

from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView

LEASE = 0.001


@dataclass
class FixtureMemory:
    fixtures: int
    traced_bytes_per_fixture: float
    rss_bytes_per_fixture: float
    seconds: float


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _fill(backend: MemoryBackend, first: int, count: int, batch: int) -> None:
    limit = backend.policy.limit
    for start in range(first, first + count, batch):
        for i in range(start, min(start + batch, first + count)):
            fixture_id = f"fixture-{i:06d}"
            for _ in range(limit):
                grant = await backend.acquire(fixture_id)
                await backend.release(grant.permit_id)
        await asyncio.sleep(2 * LEASE)  # the batch's released leases expire


async def measure(fixtures: int = 100_000, traced_sample: int = 10_000) -> FixtureMemory:
    """RSS over all `fixtures`; traced allocations over the last `traced_sample` of them."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    logging.getLogger("hotspot").setLevel(logging.ERROR)  # 100,000 hot-spot warnings otherwise
    policy = PermitPolicy(window=3600.0, lease=LEASE, max_fixtures=fixtures)
    backend = MemoryBackend(policy)
    gc.collect()
    rss_before = _rss_bytes()
    untraced = fixtures - traced_sample
    await _fill(backend, 0, untraced, batch=200)
    gc.collect()
    rss = _rss_bytes() - rss_before
    # tracemalloc slows every allocation, so it watches only the last fixtures added.
    tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0]
    await _fill(backend, untraced, traced_sample, batch=200)
    await asyncio.sleep(2 * LEASE)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - traced_before
    tracemalloc.stop()
    snapshot = await backend.stats(StatsView(top_n=1))
    assert snapshot.totals.fixtures_tracked == fixtures
    assert snapshot.fixtures[0].calls_in_window == policy.limit
    assert snapshot.totals.in_flight == 0
    return FixtureMemory(
        fixtures,
        traced_bytes_per_fixture=traced / traced_sample,
        rss_bytes_per_fixture=rss / untraced,
        seconds=loop.time() - started,
    )


def main() -> None:
    """Prints the result as JSON: run in a fresh process, so that RSS starts clean."""
    print(json.dumps(dataclasses.asdict(asyncio.run(measure()))))


def measure_in_fresh_process() -> FixtureMemory:
    result = subprocess.run(
        [sys.executable, "-m", "bench.fixture_memory"],
        check=True,
        capture_output=True,
        text=True,
    )
    return FixtureMemory(**json.loads(result.stdout))


if __name__ == "__main__":
    main()
