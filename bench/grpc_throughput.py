"""(a) Uncontended Acquire+Release against an empty unary RPC, same server stack and client.

The server runs in its own process (one core), the client in this one (the
other). Each phase is a closed loop of `concurrency` workers for `seconds`.
Besides client-side throughput and latency, the server's own CPU per RPC is read
from /proc, which stays meaningful if the client is the bottleneck.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.empty_pb2 import Empty

from bench.bench_server import EMPTY_METHOD
from bench.server_process import ServerProcess
from bench.stats import percentile
from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_core.memory import MemoryBackend
from hotspot_core.stats_feed import StatsFeed
from hotspot_server.transport.grpc_servicer import PermitServicer


@dataclass
class Phase:
    rpcs_per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu_us_per_rpc: float


Call = Callable[[], Awaitable[list[float]]]


async def _run_phase(server: ServerProcess, call: Call, concurrency: int, seconds: float) -> Phase:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            latencies.extend(await call())

    cpu = server.cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu
    rpcs = len(latencies)
    return Phase(
        rpcs_per_second=rpcs / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        server_cpu_us_per_rpc=cpu / rpcs * 1e6,
    )


async def measure(server: ServerProcess, concurrency: int, seconds: float) -> tuple[Phase, Phase]:
    """One round: the empty RPC, then Acquire+Release. Returns (empty, permit)."""
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = permits_pb2_grpc.PermitServiceStub(channel)
        ping = channel.unary_unary(
            EMPTY_METHOD,
            request_serializer=Empty.SerializeToString,
            response_deserializer=Empty.FromString,
        )
        # 20,000 fixtures at 50 per minute: no request ever waits, as in "uncontended".
        fixtures = itertools.cycle([f"bench-{i}" for i in range(20_000)])

        async def empty_call() -> list[float]:
            t = time.perf_counter()
            await ping(Empty())
            return [time.perf_counter() - t]

        async def permit_call() -> list[float]:
            t0 = time.perf_counter()
            grant = await stub.Acquire(pb.AcquireRequest(fixture_id=next(fixtures)))
            t1 = time.perf_counter()
            await stub.Release(pb.ReleaseRequest(permit_id=grant.permit_id))
            return [t1 - t0, time.perf_counter() - t1]

        await _run_phase(server, empty_call, concurrency, 0.5)  # warm-up
        await _run_phase(server, permit_call, concurrency, 0.5)
        empty = await _run_phase(server, empty_call, concurrency, seconds)
        permit = await _run_phase(server, permit_call, concurrency, seconds)
        return empty, permit


class NoDeadline:
    """The ServicerContext methods Acquire and Release read on their success path."""

    def time_remaining(self) -> float | None:
        return None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"


async def servicer_cost(pairs: int = 50_000) -> float:
    """Seconds per Acquire+Release through the real PermitServicer, without the transport.

    Requests are parsed from bytes and responses serialized, as gRPC would; what is
    left out is gRPC itself. Noise-free next to the RPC figures: this is the whole
    of what hotspot adds to an RPC.
    """
    backend = MemoryBackend()
    servicer = PermitServicer(backend, StatsFeed(backend))
    context: Any = NoDeadline()
    fixtures = itertools.cycle([f"bench-{i}" for i in range(20_000)])
    acquires = [
        pb.AcquireRequest(fixture_id=next(fixtures)).SerializeToString() for _ in range(pairs)
    ]
    started = time.perf_counter()
    for raw in acquires:
        grant = await servicer.Acquire(pb.AcquireRequest.FromString(raw), context)
        grant.SerializeToString()
        release = pb.ReleaseRequest(permit_id=grant.permit_id).SerializeToString()
        (await servicer.Release(pb.ReleaseRequest.FromString(release), context)).SerializeToString()
    return (time.perf_counter() - started) / pairs
