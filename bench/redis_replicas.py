"""(r) Replicas on one Redis: Acquire+Release through 1, 2 and 3 hotspot-server processes sharing
one redis-server, and 3 sharing a three-node Redis Cluster, against one memory:// server in the
same run.

The client spreads its calls over the replicas (gRPC round robin), `CONCURRENCY` closed loops,
every Acquire on another of 20,000 fixtures so that none waits. Besides pairs per second and the
latencies, it reads redis-server's own CPU (from /proc) and its command counters (INFO), per
Acquire+Release pair: what one Redis core can serve is 1 / (Redis CPU per pair).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import redis

from bench.server_process import ServerProcess
from bench.stats import percentile
from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_server.redis_backend.keys import CLUSTER_SHARDS
from tests.redis_server import RedisClusterNodes, RedisServer
from tests.replicas import round_robin_channel

if TYPE_CHECKING:
    from hotspot.v1.permits_pb2_grpc import PermitServiceAsyncStub

CONCURRENCY = 16
REPLICAS = (1, 2, 3)


@dataclass
class Result:
    setup: str
    pairs_per_second: float
    acquire_p50_ms: float
    acquire_p99_ms: float
    release_p50_ms: float
    release_p99_ms: float
    redis_cpu_us_per_pair: float | None = None
    redis_commands_per_pair: float | None = None
    scripts_per_pair: float | None = None


def _server(backend: str) -> ServerProcess:
    return ServerProcess(
        "hotspot_server",
        *("--listen", "127.0.0.1:0", "--http", "off", "--state-dir", "none"),
        *("--backend", backend),
        ready_line=True,
    )


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _counters(nodes: Sequence[RedisServer]) -> tuple[int, int]:
    """Commands the Redis nodes have processed (each redis.call inside a script counts too),
    and script runs (EVALSHA), summed over the nodes."""
    total = scripts = 0
    for node in nodes:
        with redis.Redis.from_url(node.url) as client:
            total += int(client.info("stats")["total_commands_processed"])
            scripts += client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    return total, int(scripts)


async def _phase(targets: list[str], seconds: float) -> tuple[int, float, list[float], list[float]]:
    """Closed loops of Acquire then Release; returns pairs, elapsed and both latencies."""
    acquires: list[float] = []
    releases: list[float] = []
    fixtures = itertools.cycle([f"bench-{i}" for i in range(20_000)])
    async with round_robin_channel(targets) as channel:
        stub = permits_pb2_grpc.PermitServiceStub(channel)
        # Warm up every replica's connections and scripts before timing.
        for _ in range(3 * len(targets)):
            r = await _warm_up(stub, next(fixtures))
            await stub.Release(pb.ReleaseRequest(permit_id=r.permit_id))
        stop_at = time.perf_counter() + seconds

        async def loop() -> None:
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                r = await stub.Acquire(pb.AcquireRequest(fixture_id=next(fixtures)))
                acquires.append(time.perf_counter() - t)
                t = time.perf_counter()
                await stub.Release(pb.ReleaseRequest(permit_id=r.permit_id))
                releases.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return len(releases), elapsed, acquires, releases


async def _warm_up(stub: PermitServiceAsyncStub, fixture_id: str) -> pb.AcquireResponse:
    """An Acquire, asked again while its replica is not ready yet: a busy machine can time out
    the first calls of a Cluster replica, which learns the slot map as it starts."""
    for attempt in itertools.count():
        try:
            return await stub.Acquire(pb.AcquireRequest(fixture_id=fixture_id))
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or attempt >= 50:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


def _result(setup: str, pairs: int, elapsed: float, a: list[float], r: list[float]) -> Result:
    return Result(
        setup,
        pairs / elapsed,
        percentile(a, 50) * 1000,
        percentile(a, 99) * 1000,
        percentile(r, 50) * 1000,
        percentile(r, 99) * 1000,
    )


async def measure(seconds: float) -> list[Result]:
    """memory:// first, then 1, 2 and 3 replicas, each on a fresh redis-server, then 3 on a
    fresh three-node Redis Cluster."""
    results = []
    with _server("memory://") as memory:
        results.append(_result("1 server, memory://", *await _phase([memory.target], seconds)))
    for replicas in REPLICAS:
        with (
            tempfile.TemporaryDirectory() as directory,
            RedisServer(Path(directory)) as redis_server,
        ):
            setup = f"{replicas} on one Redis"
            results.append(
                await _replicas(setup, redis_server.url, [redis_server], replicas, seconds)
            )
    with (
        tempfile.TemporaryDirectory() as directory,
        RedisClusterNodes(Path(directory)) as cluster,
    ):
        setup = f"3 on a 3-node Redis Cluster ({CLUSTER_SHARDS} shards)"
        results.append(await _replicas(setup, cluster.url, cluster.nodes, 3, seconds))
    return results


async def _replicas(
    setup: str, backend: str, nodes: Sequence[RedisServer], replicas: int, seconds: float
) -> Result:
    """`replicas` servers on `backend`, whose Redis runs on `nodes`: Redis's CPU and command
    counts are the nodes' sums."""
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(_server(backend)) for _ in range(replicas)]
        pids = [node.proc.pid for node in nodes if node.proc is not None]
        cpu, (commands, scripts) = sum(map(_cpu_seconds, pids)), _counters(nodes)
        pairs, elapsed, a, r = await _phase([s.target for s in servers], seconds)
        cpu = sum(map(_cpu_seconds, pids)) - cpu
        after_commands, after_scripts = _counters(nodes)
    result = _result(setup, pairs, elapsed, a, r)
    result.redis_cpu_us_per_pair = cpu / pairs * 1e6
    # Less the two INFO calls of the second reading, on each node.
    result.redis_commands_per_pair = (after_commands - commands - 2 * len(nodes)) / pairs
    result.scripts_per_pair = (after_scripts - scripts) / pairs
    return result


def _ms(x: float) -> str:
    return f"{x:.2f}"


async def section(seconds: float, summary: list[Sequence[object]]) -> list[str]:
    results = await measure(seconds)
    memory, *on_redis = results
    rows: list[list[object]] = []
    for r in results:
        extra = ["", "", "", "", ""]
        if r.redis_cpu_us_per_pair is not None:
            assert r.redis_commands_per_pair is not None
            assert r.scripts_per_pair is not None
            extra = [
                f"{r.acquire_p50_ms - memory.acquire_p50_ms:+.2f} / "
                f"{r.acquire_p99_ms - memory.acquire_p99_ms:+.2f}",
                f"{r.redis_cpu_us_per_pair:.0f}",
                f"{1e6 / r.redis_cpu_us_per_pair:,.0f}" if r.redis_cpu_us_per_pair else "-",
                f"{r.redis_commands_per_pair:.2f}",
                f"{r.scripts_per_pair:.2f}",
            ]
        rows.append(
            [
                r.setup,
                f"{r.pairs_per_second:.0f}",
                f"{_ms(r.acquire_p50_ms)} / {_ms(r.acquire_p99_ms)}",
                f"{_ms(r.release_p50_ms)} / {_ms(r.release_p99_ms)}",
                *extra,
            ]
        )
    *_, three, cluster = on_redis
    summary += [
        [
            "(r) Acquire+Release pairs/s, 3 replicas on one Redis vs memory://",
            "",
            f"{three.pairs_per_second:.0f} vs {memory.pairs_per_second:.0f}",
            "",
        ],
        [
            "(r) ... 3 replicas on a 3-node Redis Cluster: pairs/s, Redis CPU us/pair",
            "",
            f"{cluster.pairs_per_second:.0f}, {cluster.redis_cpu_us_per_pair or 0:.0f}",
            "",
        ],
        [
            "(r) Acquire p50 / p99 added by Redis (1 replica)",
            "",
            f"{on_redis[0].acquire_p50_ms - memory.acquire_p50_ms:+.2f} / "
            f"{on_redis[0].acquire_p99_ms - memory.acquire_p99_ms:+.2f} ms",
            "",
        ],
    ]
    header = [
        "",
        "pairs/s",
        "Acquire p50 / p99 ms",
        "Release p50 / p99 ms",
        "Acquire p50 / p99 added vs memory ms",
        "Redis CPU us/pair",
        "pairs/s one Redis core serves",
        "Redis commands/pair (with those inside scripts)",
        "scripts/pair",
    ]
    table = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] * len(header)) + " |",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
    ]
    return [
        "## (r) Replicas on one Redis",
        "",
        f"hotspot-server processes (`--backend redis://...`) sharing one redis-server, and one "
        f"`memory://` server in the same run; the client spreads {CONCURRENCY} closed loops of "
        f"Acquire then Release over the replicas (gRPC round robin), each Acquire on another "
        f"of 20,000 fixtures, {seconds:g} s per setup. On this 2-core machine the replicas, "
        "Redis and the client share the cores, so pairs/s measures the machine; Redis CPU per "
        "pair is what scales: an uncontended Acquire is one script (one round trip), a Release "
        "a pipelined lookup then one script (two round trips). The last row: 3 replicas on a "
        "three-node Redis Cluster on the same machine (`redis+cluster://`, each script sent "
        "to the node of its shard's slot); its Redis CPU and commands are the three nodes' "
        "sums.",
        "",
        *table,
        "",
    ]
