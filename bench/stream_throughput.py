"""Streamed against unary permits per second: one server process (memory backend, no store),
the same client processes (each with the same number of concurrent `permit()` loops over
10,000 fixtures at the default 50 per 60 s), first with `PermitClient(streaming=False)`, then
with the default stream multiplexer. Each permit is an acquire and its release; the run counts
grants and their acquire latency (p50, p99)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

from bench.server_process import ServerProcess
from hotspot_client import PermitClient

FIXTURES = 10_000


def _client_process(target: str, streaming: bool, loops: int, seconds: float, seed: int) -> dict:  # type: ignore[type-arg]
    async def run() -> dict:  # type: ignore[type-arg]
        latencies: list[float] = []
        refused = 0
        end = time.monotonic() + seconds
        async with PermitClient(target, streaming=streaming) as client:

            async def loop(n: int) -> None:
                nonlocal refused
                i = n
                while time.monotonic() < end:
                    i = (i + 7919) % FIXTURES
                    start = time.perf_counter()
                    try:
                        async with client.permit(f"fx{seed}-{i}", max_wait=1.0):
                            latencies.append(time.perf_counter() - start)
                    except Exception:  # refusals are counted, not benchmarked
                        refused += 1

            await asyncio.gather(*(loop(n) for n in range(loops)))
        latencies.sort()
        return {
            "grants": len(latencies),
            "refused": refused,
            "p50": latencies[len(latencies) // 2] if latencies else 0.0,
            "p99": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        }

    return asyncio.run(run())


def _phase(target: str, streaming: bool, processes: int, loops: int, seconds: float) -> dict:  # type: ignore[type-arg]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        started = time.monotonic()
        results = pool.starmap(
            _client_process,
            [(target, streaming, loops, seconds, p) for p in range(processes)],
        )
        elapsed = max(seconds, time.monotonic() - started - 1.0)  # less the processes' start
    grants = sum(r["grants"] for r in results)
    return {
        "permits_per_s": grants / seconds,
        "refused": sum(r["refused"] for r in results),
        "p50_ms": max(r["p50"] for r in results) * 1000,
        "p99_ms": max(r["p99"] for r in results) * 1000,
        "elapsed": elapsed,
    }


def measure(seconds: float, processes: int = 2, loops: int = 64) -> dict[str, float]:
    with ServerProcess(
        "hotspot_server", "--listen", "127.0.0.1:0", "--state-dir", "none", "--http", "off",
        ready_line=True,
    ) as server:  # fmt: skip
        unary = _phase(server.target, False, processes, loops, seconds)
        stream = _phase(server.target, True, processes, loops, seconds)
    return {
        "unary_per_s": unary["permits_per_s"],
        "stream_per_s": stream["permits_per_s"],
        "ratio": stream["permits_per_s"] / unary["permits_per_s"],
        "unary_p99_ms": unary["p99_ms"],
        "stream_p99_ms": stream["p99_ms"],
        "unary_p50_ms": unary["p50_ms"],
        "stream_p50_ms": stream["p50_ms"],
        "refused": unary["refused"] + stream["refused"],
    }


if __name__ == "__main__":
    print(measure(5.0))
