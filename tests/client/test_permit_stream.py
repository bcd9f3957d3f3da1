"""PermitStream against a service that takes every item and answers none (a hung service)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from hotspot.v1 import permits_pb2 as pb
from hotspot_client import PermitClient, PermitServiceUnavailable, backoff


async def test_requests_a_service_never_answers_fail_each_at_its_deadline_and_are_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The client gives a service max_wait plus this margin to answer: short here.
    monkeypatch.setattr(backoff, "ANSWER_MARGIN", 0.2)
    items: list[pb.AcquireStreamItem] = []

    async def unanswering(
        requests: AsyncIterator[pb.AcquireStreamRequest],
        context: grpc.aio.ServicerContext[pb.AcquireStreamRequest, pb.AcquireStreamResponse],
    ) -> AsyncIterator[pb.AcquireStreamResponse]:
        async for request in requests:
            items.extend(request.items)
        return
        yield  # a response stream with nothing to say

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "hotspot.v1.PermitService",
                {
                    "AcquireStream": grpc.stream_stream_rpc_method_handler(
                        unanswering,
                        request_deserializer=pb.AcquireStreamRequest.FromString,
                        response_serializer=pb.AcquireStreamResponse.SerializeToString,
                    )
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with PermitClient(f"127.0.0.1:{port}") as client:
            failed: list[str] = []

            async def acquire(fixture_id: str, max_wait: float) -> None:
                with pytest.raises(PermitServiceUnavailable, match="did not answer in time"):
                    await client.acquire(fixture_id, max_wait=max_wait)
                failed.append(fixture_id)

            # The later deadline is asked for first: each request keeps its own.
            await asyncio.gather(acquire("later", 0.3), acquire("sooner", 0.0))
            assert failed == ["sooner", "later"]
            await asyncio.sleep(0.1)  # the cancel items' write
    finally:
        await server.stop(None)
    acquires = [item.request_id for item in items if item.HasField("acquire")]
    cancels = [item.request_id for item in items if item.HasField("cancel")]
    assert len(acquires) == 2
    assert sorted(cancels) == sorted(acquires)  # the service is told to drop both
