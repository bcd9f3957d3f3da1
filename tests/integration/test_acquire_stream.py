"""AcquireStream over a real server on loopback: the rules of Acquire, item by item, in-band."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

from hotspot.v1 import permits_pb2 as pb
from hotspot_client import PermitClient
from hotspot_client.backoff import UnavailableRetry
from hotspot_client.errors import PermitServiceUnavailable, RateLimitExceeded
from tests.integration.conftest import DEPLOYMENTS, Harness, StartServer
from tests.integration.test_grpc_permits import stats_for, wait_for_depth

# Every test runs on one memory:// server and on three replicas sharing one Redis.
pytestmark = pytest.mark.parametrize("start_server", DEPLOYMENTS, indirect=True)

StreamCall = grpc.aio.StreamStreamCall[pb.AcquireStreamRequest, pb.AcquireStreamResponse]


def acquire(request_id: str, fixture_id: str) -> pb.AcquireStreamItem:
    return pb.AcquireStreamItem(
        request_id=request_id, acquire=pb.AcquireRequest(fixture_id=fixture_id)
    )


def cancel(request_id: str) -> pb.AcquireStreamItem:
    return pb.AcquireStreamItem(request_id=request_id, cancel=pb.AcquireStreamCancel())


def release(request_id: str, permit_id: str) -> pb.AcquireStreamItem:
    return pb.AcquireStreamItem(
        request_id=request_id,
        release=pb.ReleaseRequest(permit_id=permit_id, outcome=pb.OUTCOME_NOT_SENT),
    )


async def answers(call: StreamCall, n: int) -> dict[str, pb.AcquireStreamResult]:
    """The next n answers, by request id."""
    found: dict[str, pb.AcquireStreamResult] = {}
    while len(found) < n:
        response = await call.read()
        assert isinstance(response, pb.AcquireStreamResponse)
        found.update((result.request_id, result) for result in response.results)
    return found


async def test_a_refusal_is_answered_in_band_with_the_unary_details_and_the_stream_goes_on(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=1, queue=0)
    call = h.stub.AcquireStream(None)
    await call.write(pb.AcquireStreamRequest(items=[acquire("a", "f"), acquire("b", "f")]))
    first = await answers(call, 2)
    assert first["a"].HasField("granted")
    refusal = first["b"].error
    assert refusal.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert "queue of 0 is full" in refusal.message
    info = error_details_pb2.ErrorInfo()
    retry = error_details_pb2.RetryInfo()
    assert refusal.details[0].Unpack(retry)
    assert retry.retry_delay.ToNanoseconds() > 0
    assert refusal.details[1].Unpack(info)
    assert info.reason == "QUEUE_FULL"
    assert info.metadata["fixture_id"] == "f"
    assert info.metadata["limit"] == "1"
    assert int(info.metadata["estimated_wait_ms"]) > 0
    # The stream still serves: a release, a bad item, another fixture.
    await call.write(
        pb.AcquireStreamRequest(
            items=[release("r", first["a"].granted.permit_id), acquire("c", "other"), cancel("x")]
        )
    )
    await call.write(pb.AcquireStreamRequest(items=[acquire("bad id", "f")]))
    later = await answers(call, 3)
    assert later["r"].released.already_released is False
    assert later["c"].granted.fixture_id == "other"
    assert later["bad id"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF  # type: ignore[attr-defined]


async def test_fifo_holds_across_stream_and_unary_callers(start_server: StartServer) -> None:
    h = await start_server(limit=1)
    held = await h.stub.Acquire(pb.AcquireRequest(fixture_id="f"))
    call = h.stub.AcquireStream(None)
    order: list[str] = []

    async def unary(name: str) -> pb.AcquireResponse:
        granted = await h.stub.Acquire(pb.AcquireRequest(fixture_id="f"))
        order.append(name)
        return granted

    await call.write(pb.AcquireStreamRequest(items=[acquire("stream-1", "f")]))
    await wait_for_depth(h, "f", 1)
    second = asyncio.create_task(unary("unary-2"))
    await wait_for_depth(h, "f", 2)
    await call.write(pb.AcquireStreamRequest(items=[acquire("stream-3", "f")]))
    await wait_for_depth(h, "f", 3)
    # Each NOT_SENT refund frees the slot at once for the head of the queue, and only it.
    await h.stub.Release(pb.ReleaseRequest(permit_id=held.permit_id, outcome=pb.OUTCOME_NOT_SENT))
    one = (await answers(call, 1))["stream-1"].granted
    order.append("stream-1")
    assert one.queue_position == 1
    assert not second.done()
    await call.write(pb.AcquireStreamRequest(items=[release("r1", one.permit_id)]))
    assert (await answers(call, 1))["r1"].HasField("released")
    two = await second
    assert two.queue_position == 2
    await h.stub.Release(pb.ReleaseRequest(permit_id=two.permit_id, outcome=pb.OUTCOME_NOT_SENT))
    three = (await answers(call, 1))["stream-3"].granted
    order.append("stream-3")
    assert three.queue_position == 3
    assert order == ["stream-1", "unary-2", "stream-3"]
    call.cancel()


async def test_a_cancel_item_takes_one_acquire_out_of_its_queue(start_server: StartServer) -> None:
    h = await start_server(limit=1)
    held = await h.stub.Acquire(pb.AcquireRequest(fixture_id="f"))
    call = h.stub.AcquireStream(None)
    await call.write(pb.AcquireStreamRequest(items=[acquire("a", "f"), acquire("b", "f")]))
    await wait_for_depth(h, "f", 2)
    await call.write(pb.AcquireStreamRequest(items=[cancel("a")]))
    cancelled = (await answers(call, 1))["a"]
    assert cancelled.error.code == grpc.StatusCode.CANCELLED.value[0]
    await wait_for_depth(h, "f", 1)
    await h.stub.Release(pb.ReleaseRequest(permit_id=held.permit_id, outcome=pb.OUTCOME_NOT_SENT))
    assert (await answers(call, 1))["b"].granted.queue_position == 2
    call.cancel()


async def test_a_broken_stream_ends_its_waiters_and_leaves_its_permits_to_their_leases(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=1)
    call = h.stub.AcquireStream(None)
    await call.write(pb.AcquireStreamRequest(items=[acquire("a", "f")]))
    assert (await answers(call, 1))["a"].HasField("granted")
    await call.write(pb.AcquireStreamRequest(items=[acquire("b", "f"), acquire("c", "f")]))
    await wait_for_depth(h, "f", 2)
    call.cancel()
    await wait_for_depth(h, "f", 0)
    assert (await stats_for(h, "f")).in_flight == 1  # a's permit, until its release or lease end


async def test_an_acquire_resent_with_its_request_id_gets_the_same_permit(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=5)
    first, second = h.stub.AcquireStream(None), h.stub.AcquireStream(None)
    await first.write(pb.AcquireStreamRequest(items=[acquire("same", "f")]))
    granted = (await answers(first, 1))["same"].granted
    first.cancel()  # its answer could have been lost with it
    await second.write(pb.AcquireStreamRequest(items=[acquire("same", "f")]))
    again = (await answers(second, 1))["same"].granted
    assert again.permit_id == granted.permit_id
    assert (await stats_for(h, "f")).in_flight == 1
    second.cancel()


async def test_the_client_reads_an_in_band_refusal_as_the_unary_one(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=1, queue=0)
    async with PermitClient(h.target) as client:
        assert client.streaming
        async with client.permit("f"):
            with pytest.raises(RateLimitExceeded) as info:
                await client.acquire("f")
    assert info.value.reason == "QUEUE_FULL"
    assert info.value.fixture_id == "f"
    assert info.value.limit == 1
    assert info.value.retry_after > 0
    assert info.value.queue_depth == 0


async def test_callers_that_leave_at_any_moment_leak_no_grant(start_server: StartServer) -> None:
    h = await start_server(limit=3, window=0.05)
    rng = random.Random(7)
    async with PermitClient(h.target) as client:

        async def caller() -> None:
            async with client.permit("f", max_wait=5):
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(caller()) for _ in range(60)]
        for task in tasks:
            await asyncio.sleep(rng.random() * 0.002)
            if rng.random() < 0.5:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # close() waited for every release owed, the orphans' NOT_SENT ones included.
    stats = await stats_for(h, "f")
    assert stats.in_flight == 0
    assert stats.queue_depth == 0


async def test_a_server_that_stops_ends_the_stream_waiters_within_their_budget(
    start_server: StartServer,
) -> None:
    h: Harness = await start_server(limit=1, window=0.1)
    async with PermitClient(h.target, retry=UnavailableRetry(give_up_after=0.3)) as client:
        held = await client.acquire("f")
        waiters = [asyncio.create_task(client.acquire("f", max_wait=5)) for _ in range(3)]
        await wait_for_depth(h, "f", 3)
        await h.server.stop(0)
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert held.permit_id
    assert all(isinstance(result, PermitServiceUnavailable) for result in results), results
