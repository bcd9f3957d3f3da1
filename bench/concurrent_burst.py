"""10,000 concurrent acquires on one fixture (default policy: 50 granted, 100 queued, 9,850
refused), unary (`PermitClient(streaming=False)`, one call each) against streamed (the default
multiplexer), each on a fresh `hotspot-server` process. Measured from the client: the time from
the first acquire until every refusal has been answered; from /proc: the server's peak resident
memory over its resident memory before the burst. The queued acquires are cancelled after."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.server_process import ServerProcess
from hotspot_client import PermitClient
from hotspot_client.errors import RateLimitExceeded

CALLS = 10_000


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


async def burst(target: str, pid: int, streaming: bool, calls: int = CALLS) -> dict[str, Any]:
    async with PermitClient(target, streaming=streaming) as client:
        await client.acquire("warm-up", max_wait=0)  # the channel (and stream) open first
        before = peak = rss_bytes(pid)
        granted = refused = 0
        last_refusal = 0.0

        async def one() -> None:
            nonlocal granted, refused, last_refusal
            try:
                await client.acquire("burst")
                granted += 1
            except RateLimitExceeded:
                refused += 1
                last_refusal = time.perf_counter()

        started = time.perf_counter()
        tasks = [asyncio.create_task(one()) for _ in range(calls)]
        while granted + refused < calls - 100:  # the 100 queued stay queued
            await asyncio.sleep(0.005)
            peak = max(peak, rss_bytes(pid))
            if time.perf_counter() - started > 60:
                raise TimeoutError("the refusals never all arrived")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "granted": granted,
        "refused": refused,
        "answered_s": last_refusal - started,
        "rss_growth_mb": (peak - before) / 2**20,
    }


def measure() -> dict[str, dict[str, Any]]:
    results = {}
    for name, streaming in (("unary", False), ("stream", True)):
        with ServerProcess(
            "hotspot_server", "--listen", "127.0.0.1:0", "--http", "off", "--state-dir", "none",
            ready_line=True,
        ) as server:  # fmt: skip
            results[name] = asyncio.run(burst(server.target, server.proc.pid, streaming))
    return results


if __name__ == "__main__":
    print(measure())
