"""/metrics for operators: refusals by reason from 0, build info, process and gRPC series."""

from __future__ import annotations

import asyncio
import platform
from importlib import metadata

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_reflection.v1alpha import reflection_pb2

from hotspot.v1 import permits_pb2 as pb
from hotspot_server.http.metrics import REJECT_REASONS
from tests.integration.test_grpc_permits import fill, refused, wait_for_depth
from tests.visibility.conftest import Samples, StartVisible, VisibleServer, sample


def rejected(samples: Samples) -> dict[str, float | None]:
    return {r: sample(samples, "hotspot_rejected_total", reason=r) for r in REJECT_REASONS}


async def test_every_refusal_reason_is_counted_from_zero(start_visible: StartVisible) -> None:
    h = await start_visible(limit=1, window=30, queue=1, max_fixtures=2)
    # Every reason's series is there before the first refusal, so increase() sees that one.
    assert rejected(await h.scrape()) == dict.fromkeys(REJECT_REASONS, 0.0)
    now = Duration()  # max_wait 0: refused rather than queued

    await fill(h, "a", 1)
    assert (
        await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="a", max_wait=now)))
    ).reason == "WAIT_TOO_LONG"
    waiter = asyncio.ensure_future(h.stub.Acquire(pb.AcquireRequest(fixture_id="a")))
    await wait_for_depth(h, "a", 1)
    assert (await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="a")))).reason == "QUEUE_FULL"
    [b] = await fill(h, "b", 1)
    assert (
        await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="c")))
    ).reason == "TOO_MANY_FIXTURES"
    await h.stub.Release(
        pb.ReleaseRequest(
            permit_id=b.permit_id,
            outcome=pb.OUTCOME_UPSTREAM_RATE_LIMITED,
            upstream_retry_after=Duration(seconds=30),
        )
    )
    paused = await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="b", max_wait=now)))
    assert "paused_for_ms" in paused.metadata  # a WAIT_TOO_LONG on the wire, PAUSED in metrics

    # Stopping answers the waiter SHUTTING_DOWN; /metrics still answers during the drain.
    stopping = asyncio.ensure_future(h.server.stop(1.0))
    assert (await refused(waiter)).reason == "SHUTTING_DOWN"
    counts = rejected(await h.scrape())
    await stopping
    assert counts == {
        "QUEUE_FULL": 1.0,
        "WAIT_TOO_LONG": 1.0,
        "TOO_MANY_FIXTURES": 1.0,
        "PAUSED": 1.0,
        "SHUTTING_DOWN": 1.0,
    }


async def list_services_v1(h: VisibleServer) -> list[str]:
    """grpc.reflection.v1 called directly; its messages are v1alpha's on the wire."""
    call = h.channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = [
        response
        async for response in call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    ]
    [response] = responses
    return [service.name for service in response.list_services_response.service]


async def test_build_process_and_grpc_server_series(start_visible: StartVisible) -> None:
    h = await start_visible(limit=1, window=30)
    await fill(h, "f", 1)
    await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="f", max_wait=Duration())))
    assert "grpc.reflection.v1.ServerReflection" in await list_services_v1(h)
    samples = await h.scrape()

    [build] = [dict(labels) for name, labels in samples if name == "hotspot_build_info"]
    assert build == {
        "version": metadata.version("hotspot-permits"),
        "client_version": metadata.version("hotspot-permits-client"),
        "python": platform.python_version(),
        "grpc": grpc.__version__,
    }
    names = {name for name, _ in samples}
    for collected in ("process_cpu_seconds_total", "python_info", "python_gc_collections_total"):
        assert collected in names

    acquire = {"grpc_service": "hotspot.v1.PermitService", "grpc_method": "Acquire"}
    handled = {
        code: sample(
            samples, "grpc_server_handled_total", **acquire, grpc_type="unary", grpc_code=code
        )
        for code in ("OK", "RESOURCE_EXHAUSTED")
    }
    assert handled == {"OK": 1.0, "RESOURCE_EXHAUSTED": 1.0}
    assert sample(samples, "grpc_server_handling_seconds_count", **acquire, grpc_type="unary") == 2
    # A bidirectional stream (an async generator on the server) is timed and counted too.
    reflection = {
        "grpc_service": "grpc.reflection.v1.ServerReflection",
        "grpc_method": "ServerReflectionInfo",
        "grpc_type": "bidi_stream",
    }
    assert sample(samples, "grpc_server_handled_total", **reflection, grpc_code="OK") == 1


@pytest.mark.parametrize("limit", [1, 5])
async def test_no_refusal_counts_without_a_refusal(start_visible: StartVisible, limit: int) -> None:
    h = await start_visible(limit=limit, window=30)
    await fill(h, "f", limit)
    assert rejected(await h.scrape()) == dict.fromkeys(REJECT_REASONS, 0.0)
