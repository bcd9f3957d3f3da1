"""An in-process grpc.aio permit server on a free loopback port, with short windows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import pytest

from hotspot.v1 import permits_pb2_grpc
from hotspot_core.policy import PermitPolicy
from hotspot_server.server import PermitServer
from hotspot_server.settings import Settings

if TYPE_CHECKING:
    from hotspot.v1.permits_pb2_grpc import PermitServiceAsyncStub


@dataclass
class Harness:
    server: PermitServer
    channel: grpc.aio.Channel
    stub: PermitServiceAsyncStub

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"


StartServer = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    started: list[Harness] = []

    async def start(grace: float = 1.0, **policy: float) -> Harness:
        settings = Settings(
            listen="127.0.0.1:0",
            policy=PermitPolicy(**policy),  # type: ignore[arg-type]
            grace=grace,
        )
        server = PermitServer(settings)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        harness = Harness(server, channel, permits_pb2_grpc.PermitServiceStub(channel))
        started.append(harness)
        return harness

    yield start
    for harness in started:
        await harness.channel.close(None)
        await harness.server.stop(0)
