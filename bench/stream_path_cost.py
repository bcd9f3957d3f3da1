"""The streamed permit's own CPU cost, without gRPC: in one process, PermitClient's stream
multiplexer writes its items as bytes to the real PermitServicer.AcquireStream (session,
MemoryBackend, no store), whose answers come back as bytes. 64 closed `permit()` loops over
10,000 fixtures; CPU seconds per permit (acquire and release, both sides), median of 5 runs.
Less sensitive to a shared machine than wall-clock figures: it counts only this process."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

from bench.grpc_throughput import NoDeadline
from hotspot.v1 import permits_pb2 as pb
from hotspot_client import PermitClient
from hotspot_core.memory import MemoryBackend
from hotspot_core.stats_feed import StatsFeed
from hotspot_server.transport.grpc_servicer import PermitServicer


class _BytesCall:
    """An AcquireStream call carried as serialized messages through two queues, as far as
    PermitStream uses one (write, read, cancel)."""

    def __init__(self, servicer: PermitServicer) -> None:
        self._requests: asyncio.Queue[bytes] = asyncio.Queue()
        self._responses: asyncio.Queue[bytes] = asyncio.Queue()
        context: Any = NoDeadline()
        self._serving = asyncio.create_task(self._serve(servicer, context))

    async def _serve(self, servicer: PermitServicer, context: Any) -> None:
        async for response in servicer.AcquireStream(self._read_requests(), context):
            self._responses.put_nowait(response.SerializeToString())

    async def _read_requests(self) -> AsyncIterator[pb.AcquireStreamRequest]:
        while True:
            yield pb.AcquireStreamRequest.FromString(await self._requests.get())

    async def write(self, request: pb.AcquireStreamRequest) -> None:
        self._requests.put_nowait(request.SerializeToString())
        await asyncio.sleep(0)  # as a transport write, it lets the loop go round

    def cancel(self) -> bool:
        return self._serving.cancel()

    def __aiter__(self) -> _BytesCall:
        return self

    async def __anext__(self) -> pb.AcquireStreamResponse:
        return pb.AcquireStreamResponse.FromString(await self._responses.get())


class _BytesStub:
    def __init__(self, servicer: PermitServicer) -> None:
        self._servicer = servicer

    def AcquireStream(self, metadata: None) -> _BytesCall:
        return _BytesCall(self._servicer)


async def _cost(permits: int, loops: int) -> float:
    backend = MemoryBackend()
    servicer = PermitServicer(backend, StatsFeed(backend))
    client = PermitClient("127.0.0.1:1")  # never dialled: its stub is the one above
    client._stub = _BytesStub(servicer)  # type: ignore[assignment]
    fixtures = itertools.cycle([f"budget-{i}" for i in range(10_000)])
    done = 0

    async def loop(until: int) -> None:
        nonlocal done
        while done < until:
            done += 1
            async with client.permit(next(fixtures), max_wait=1.0):
                pass

    await asyncio.gather(*(loop(permits // 10) for _ in range(loops)))  # warm-up
    done = 0
    started = time.process_time()
    await asyncio.gather(*(loop(permits) for _ in range(loops)))
    cost = (time.process_time() - started) / done
    await client.close()
    await backend.close()
    return cost


def measure(permits: int = 20_000, loops: int = 64, runs: int = 5) -> float:
    """Seconds of CPU per streamed permit, the median of `runs`."""
    return statistics.median(asyncio.run(_cost(permits, loops)) for _ in range(runs))


if __name__ == "__main__":
    print(f"{measure() * 1e6:.1f} us per permit")
