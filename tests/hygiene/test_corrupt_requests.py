"""Bytes that do not decode, sent to every RPC of a real server process over a real channel:
INVALID_ARGUMENT, at most one short log line per method, no traceback, a healthy server."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from tests.integration.test_process import ServerProcess

pytestmark = pytest.mark.slow

CORRUPT = [
    b"\xff\xff\xff\xff garbage",  # field 0 is never valid
    b"\x08",  # a varint cut short
    b"\x0a\x05ab",  # a length running past the end
    b"\x0f",  # wire type 7 does not exist
]
PERMIT_SERVICE = pb.DESCRIPTOR.services_by_name["PermitService"]


def permit_methods(*, client_streaming: bool, server_streaming: bool) -> list[str]:
    return [
        f"/hotspot.v1.PermitService/{m.name}"
        for m in PERMIT_SERVICE.methods
        if (m.client_streaming, m.server_streaming) == (client_streaming, server_streaming)
    ]


UNARY = [
    *permit_methods(client_streaming=False, server_streaming=False),
    "/grpc.health.v1.Health/Check",
]
SERVER_STREAMING = [
    *permit_methods(client_streaming=False, server_streaming=True),
    "/grpc.health.v1.Health/Watch",
]
BIDI_STREAMING = [
    *permit_methods(client_streaming=True, server_streaming=True),
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
]


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    process = ServerProcess()
    yield process
    if process.proc.poll() is None:
        process.proc.kill()
        process.proc.wait()


def answer(channel: grpc.Channel, method: str, data: bytes) -> grpc.StatusCode:
    """The status the server answers `data`, sent as the (first) request of `method`, with."""
    try:
        if method in UNARY:
            channel.unary_unary(method, None, None)(data, timeout=5)
        elif method in SERVER_STREAMING:
            list(channel.unary_stream(method, None, None)(data, timeout=5))
        else:
            list(channel.stream_stream(method, None, None)(iter([data]), timeout=5))
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_each_rpc_answers_invalid_argument_and_logs_one_short_line(server: ServerProcess) -> None:
    methods = UNARY + SERVER_STREAMING + BIDI_STREAMING
    with grpc.insecure_channel(server.address) as channel:
        codes = {(m, data): answer(channel, m, data) for m in methods for data in CORRUPT}
        assert set(codes.values()) == {grpc.StatusCode.INVALID_ARGUMENT}, codes

        # Still healthy, and still serving.
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = permits_pb2_grpc.PermitServiceStub(channel)
        assert stub.Acquire(pb.AcquireRequest(fixture_id="after"), timeout=5).permit_id

    assert server.stop() == 0
    log = "".join(server.log)
    assert "Traceback" not in log
    assert "ERROR" not in log
    undecodable = [line for line in server.log if "undecodable request" in line]
    # Four corrupt requests per method, one line each method: the rest are counted.
    assert sorted(line.split(" to ")[1].split(" ")[0] for line in undecodable) == sorted(methods)
    assert all(len(line) < 400 for line in undecodable), undecodable
