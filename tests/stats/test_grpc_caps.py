"""The stats caps over real gRPC: the status codes and details a reader sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_server.server import PermitServer
from hotspot_server.settings import Settings

if TYPE_CHECKING:
    from hotspot.v1.permits_pb2_grpc import PermitServiceAsyncStub


@pytest.fixture
async def stub() -> AsyncIterator[PermitServiceAsyncStub]:
    settings = Settings(
        listen="127.0.0.1:0",
        grace=0.5,
        stats_max_subscribers=5,
        stats_max_subscribers_per_caller=1,
        stats_max_fixture_ids=2,
    )
    server = PermitServer(settings)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield permits_pb2_grpc.PermitServiceStub(channel)
    await server.stop(0)


def reason_of(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    raise AssertionError("no ErrorInfo")


async def test_a_second_stream_from_one_caller_is_resource_exhausted(
    stub: PermitServiceAsyncStub,
) -> None:
    first = stub.WatchStats(pb.WatchStatsRequest())
    await first.read()  # open, its first snapshot received
    second = stub.WatchStats(pb.WatchStatsRequest())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await second.read()
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(info.value) == "TOO_MANY_SUBSCRIBERS"
    assert "one caller may hold at most 1" in (info.value.details() or "")
    first.cancel()
    # Its slot is free once the first stream has ended.
    codes = []
    for _ in range(50):
        third = stub.WatchStats(pb.WatchStatsRequest())
        try:
            await third.read()
            break
        except grpc.aio.AioRpcError as error:
            codes.append(error.code())
            await asyncio.sleep(0.05)  # the server has yet to see the first stream end
    else:
        raise AssertionError("the slot never came back")
    assert set(codes) <= {grpc.StatusCode.RESOURCE_EXHAUSTED}
    third.cancel()


async def test_too_many_ids_in_a_view_is_invalid_argument(stub: PermitServiceAsyncStub) -> None:
    ids = ["a", "b", "c"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Stats(pb.StatsRequest(fixture_ids=ids))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.WatchStats(pb.WatchStatsRequest(fixture_ids=ids)).read()
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    ok = await stub.Stats(pb.StatsRequest(fixture_ids=ids[:2]))
    assert [f.fixture_id for f in ok.fixtures] == ["a", "b"]
