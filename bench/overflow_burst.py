"""(c) 1,000 concurrent Acquires on one fixture with the default policy.

50 are granted, 100 queue, 850 are refused. Measured: the time from sending
the first call until every refusal has been answered, as the client sees it.
The server runs in its own process; the queued calls are cancelled afterwards.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import grpc

from bench.server_process import ServerProcess
from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc


@dataclass
class Burst:
    granted: int
    queued: int
    refused: int
    all_refusals_answered_s: float


async def measure(server: ServerProcess, fixture_id: str, calls: int = 1000) -> Burst:
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = permits_pb2_grpc.PermitServiceStub(channel)
        await channel.channel_ready()
        request = pb.AcquireRequest(fixture_id=fixture_id)
        granted = refused = 0
        last_refusal = 0.0

        async def one() -> None:
            nonlocal granted, refused, last_refusal
            try:
                await stub.Acquire(request)
                granted += 1
            except grpc.aio.AioRpcError as error:
                if error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                    refused += 1
                    last_refusal = time.perf_counter()
                elif error.code() is not grpc.StatusCode.CANCELLED:
                    raise

        started = time.perf_counter()
        tasks = [asyncio.create_task(one()) for _ in range(calls)]
        while refused + granted < calls - 100:
            await asyncio.sleep(0.001)
            if time.perf_counter() - started > 30:
                raise TimeoutError("refusals never arrived")
        answered = last_refusal - started
        stats = await stub.Stats(pb.StatsRequest(fixture_ids=[fixture_id]))
        queued = stats.fixtures[0].queue_depth
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return Burst(granted, queued, refused, answered)
