"""A permit server stopped (SIGSTOP) while callers wait: when it resumes, the slots freed in the
meantime go to no caller whose deadline passed while it was stopped."""

from __future__ import annotations

import asyncio
import signal

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from tests.integration.conftest import Harness
from tests.integration.test_grpc_permits import wait_for_depth
from tests.integration.test_process import ServerProcess

pytestmark = pytest.mark.slow

LIMIT = 20


async def test_waiters_whose_deadline_passed_during_a_stop_get_no_grant() -> None:
    server = ServerProcess("--limit", str(LIMIT), "--window", "1s", "--queue", "50")
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = permits_pb2_grpc.PermitServiceStub(channel)
            for _ in range(LIMIT):  # calls over at once: the window frees one second from now
                r = await stub.Acquire(pb.AcquireRequest(fixture_id="f"))
                await stub.Release(pb.ReleaseRequest(permit_id=r.permit_id))
            patience = Duration(seconds=1, nanos=500_000_000)  # the forecast says 1 s: admitted
            waiters = [
                asyncio.ensure_future(
                    stub.Acquire(pb.AcquireRequest(fixture_id="f", max_wait=patience))
                )
                for _ in range(LIMIT)
            ]
            await wait_for_depth(Harness(None, channel, stub), "f", LIMIT)  # type: ignore[arg-type]
            server.proc.send_signal(signal.SIGSTOP)
            await asyncio.sleep(3)  # the whole server process, its loop and timers, stands still
            server.proc.send_signal(signal.SIGCONT)
            answers = await asyncio.gather(*waiters, return_exceptions=True)
            totals = (await stub.Stats(pb.StatsRequest())).totals
            fresh = await stub.Acquire(pb.AcquireRequest(fixture_id="f"), timeout=5)
    finally:
        server.stop()
    granted = [a for a in answers if isinstance(a, pb.AcquireResponse)]
    assert granted == []
    for answer in answers:
        assert isinstance(answer, grpc.aio.AioRpcError)
        assert answer.code() in (
            grpc.StatusCode.RESOURCE_EXHAUSTED,  # answered: its deadline passed in the queue
            grpc.StatusCode.DEADLINE_EXCEEDED,  # or its own call gave up first
        )
    assert totals.calls_total == LIMIT  # not one slot was spent on a caller that had left
    assert (totals.queue_depth, totals.in_flight) == (0, 0)
    assert fresh.queue_position == 0  # the freed slots are there for a caller still waiting
