"""Acquire+Release throughput with and without 50 concurrent WatchStats subscribers.

An in-process PermitServer (HTTP side on, as deployed) on loopback, driven by
a closed loop of workers over real gRPC in the same process. The subscribers
ask for the same view at a 1 s interval, so the feed computes one snapshot per
second for all of them. Phases alternate (without, with, without, ...) so that
drift over the run favours neither; each rate is the mean of its phases, and
the whole run takes about `seconds` plus the set-up of each round's streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
from google.protobuf.duration_pb2 import Duration

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_server.server import PermitServer
from hotspot_server.settings import Settings

if TYPE_CHECKING:
    from hotspot.v1.permits_pb2_grpc import PermitServiceAsyncStub

SUBSCRIBERS = 50
CONCURRENCY = 16
ROUNDS = 3
FIXTURES = 20_000
"""Fixtures cycled through: at these rates none reaches 50 per minute, so nothing queues."""


async def _throughput(
    stub: PermitServiceAsyncStub, fixtures: itertools.cycle[str], seconds: float
) -> float:
    """Acquire+Release pairs per second."""
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            grant = await stub.Acquire(pb.AcquireRequest(fixture_id=next(fixtures)))
            await stub.Release(pb.ReleaseRequest(permit_id=grant.permit_id))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done / (time.perf_counter() - started)


@contextlib.asynccontextmanager
async def _subscribers(target: str, received: list[int]) -> AsyncIterator[None]:
    """SUBSCRIBERS WatchStats streams on their own channel, each read as fast as it arrives.

    Yields once every stream has had its first message, so opening them is not measured.
    """
    async with grpc.aio.insecure_channel(target) as channel:
        stub: PermitServiceAsyncStub = permits_pb2_grpc.PermitServiceStub(channel)
        request = pb.WatchStatsRequest(interval=Duration(seconds=1))
        opened = 0
        all_open = asyncio.Event()

        async def read() -> None:
            nonlocal opened
            first = True
            async for _ in stub.WatchStats(request):
                received[0] += 1
                if first:
                    first = False
                    opened += 1
                    if opened == SUBSCRIBERS:
                        all_open.set()

        readers = [asyncio.create_task(read()) for _ in range(SUBSCRIBERS)]
        await all_open.wait()
        try:
            yield
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


async def measure(seconds: float) -> dict[str, float]:
    server = PermitServer(Settings(listen="127.0.0.1:0", http="127.0.0.1:0"))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub: PermitServiceAsyncStub = permits_pb2_grpc.PermitServiceStub(channel)
            fixtures = itertools.cycle([f"bench-{i}" for i in range(FIXTURES)])
            await _throughput(stub, fixtures, 0.5)  # warm-up: connections, every fixture
            without: list[float] = []
            with_subscribers: list[float] = []
            received = [0]
            phase = seconds / (2 * ROUNDS)
            for _ in range(ROUNDS):
                without.append(await _throughput(stub, fixtures, phase))
                async with _subscribers(server.address, received):
                    with_subscribers.append(await _throughput(stub, fixtures, phase))
    finally:
        await server.stop(0)
    rate_without = sum(without) / len(without)
    rate_with = sum(with_subscribers) / len(with_subscribers)
    return {
        "acquire_release_per_s_without_subscribers": rate_without,
        "acquire_release_per_s_with_50_subscribers": rate_with,
        "ratio_with_to_without": rate_with / rate_without,
        "subscriber_messages_received": float(received[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="total measuring time")
    result = asyncio.run(measure(parser.parse_args().seconds))
    for name, value in result.items():
        print(f"{name:45} {value:12.3f}")


if __name__ == "__main__":
    main()
