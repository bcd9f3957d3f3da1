"""Acquire+Release throughput with and without 50 concurrent WatchStats subscribers.

The `hotspot-server` process (HTTP side on, as deployed) serves a closed loop
of Acquire+Release workers in this process; the 50 subscribers, all asking for
the same view at a 1 s interval, read their streams in a third process, as
dashboards and `hotspot top` would. So the figure is what the subscriptions
cost the server, and nothing of what reading them costs. Phases alternate
(without, with, without, ...) so that drift over the run favours neither; each
rate is the mean of its phases.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import grpc
from google.protobuf.duration_pb2 import Duration

from bench.server_process import ServerProcess
from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc

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


async def subscribe(target: str) -> None:
    """The subscriber process: SUBSCRIBERS streams, read as fast as they come.

    Prints `ready` once every stream has had its first message, then, when the parent
    closes its stdin, the number of messages received.
    """
    received = 0
    opened = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub: PermitServiceAsyncStub = permits_pb2_grpc.PermitServiceStub(channel)
        request = pb.WatchStatsRequest(interval=Duration(seconds=1))

        async def read() -> None:
            nonlocal received, opened
            first = True
            async for _ in stub.WatchStats(request):
                received += 1
                if first:
                    first = False
                    opened += 1
                    if opened == SUBSCRIBERS:
                        print("ready", flush=True)

        readers = [asyncio.create_task(read()) for _ in range(SUBSCRIBERS)]
        # Run until the parent closes our stdin.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    print(received, flush=True)


class _Subscribers:
    """The subscriber process, started and stopped around one phase."""

    def __init__(self, target: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.watch_subscribers", "--subscribe", target],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the subscribers never opened their streams")

    def stop(self) -> int:
        """Messages the subscribers received."""
        out, _ = self.proc.communicate(input="", timeout=30)
        return int(out.split()[-1])


async def measure(seconds: float) -> dict[str, float]:
    with ServerProcess(
        "hotspot_server", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", ready_line=True
    ) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub: PermitServiceAsyncStub = permits_pb2_grpc.PermitServiceStub(channel)
            fixtures = itertools.cycle([f"bench-{i}" for i in range(FIXTURES)])
            await _throughput(stub, fixtures, 0.5)  # warm-up: connections, code paths
            without: list[float] = []
            with_subscribers: list[float] = []
            received = 0
            phase = seconds / (2 * ROUNDS)
            for _ in range(ROUNDS):
                without.append(await _throughput(stub, fixtures, phase))
                subscribers = await asyncio.to_thread(_Subscribers, server.target)
                with_subscribers.append(await _throughput(stub, fixtures, phase))
                received += await asyncio.to_thread(subscribers.stop)
    rate_without = sum(without) / len(without)
    rate_with = sum(with_subscribers) / len(with_subscribers)
    return {
        "acquire_release_per_s_without_subscribers": rate_without,
        "acquire_release_per_s_with_50_subscribers": rate_with,
        "ratio_with_to_without": rate_with / rate_without,
        "subscriber_messages_received": float(received),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="total measuring time")
    parser.add_argument("--subscribe", metavar="TARGET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscribe:
        asyncio.run(subscribe(args.subscribe))
        return
    result = asyncio.run(measure(args.seconds))
    for name, value in result.items():
        print(f"{name:45} {value:12.3f}")


if __name__ == "__main__":
    main()
