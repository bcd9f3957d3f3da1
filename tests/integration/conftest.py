"""An in-process grpc.aio permit server on a free loopback port, with short windows.

A module that sets `pytestmark = pytest.mark.parametrize("start_server", DEPLOYMENTS,
indirect=True)` runs each test twice: on one memory:// server, and on three replicas sharing
one real redis-server, with the channel spreading calls over them (round robin)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from hotspot.v1 import permits_pb2_grpc
from hotspot_core.policy import PermitPolicy
from hotspot_server.server import PermitServer
from hotspot_server.settings import Settings
from tests.redis_server import (
    RedisClusterNodes,
    RedisServer,
    redis_server_missing,
)
from tests.replicas import (
    REPLICAS,
    cluster_replicas_backend,
    replicas_backend,
    round_robin_channel,
)

if TYPE_CHECKING:
    from hotspot.v1.permits_pb2_grpc import PermitServiceAsyncStub


@dataclass
class Harness:
    server: PermitServer
    channel: grpc.aio.Channel
    stub: PermitServiceAsyncStub

    def __post_init__(self) -> None:
        # Not a field: subclasses add fields without defaults.
        self.replicas: list[PermitServer] = [self.server]
        """Every server behind the channel (`server` is the first)."""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    async def stop(self, grace: float | None = None) -> None:
        """Stop every replica at once, as a fleet's rolling shutdown would end."""
        await asyncio.gather(*(r.stop(grace) for r in self.replicas))


StartServer = Callable[..., Awaitable[Harness]]
MEMORY = "memory"
REDIS_REPLICAS = "3 replicas on redis"
CLUSTER_REPLICAS = "3 replicas on a redis cluster"
"""Only test_on_redis_cluster.py's part of the suite runs on it: all of it would add ~50 s."""
DEPLOYMENTS = [MEMORY, REDIS_REPLICAS]


@pytest.fixture
async def start_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StartServer]:
    """Parametrized indirectly (`DEPLOYMENTS`), or memory:// by default."""
    deployment = str(getattr(request, "param", MEMORY))
    started: list[Harness] = []
    with contextlib.ExitStack() as stack:
        if deployment == MEMORY:
            backend_url, replicas = "memory://", 1
        elif deployment == CLUSTER_REPLICAS:
            cluster: RedisClusterNodes = request.getfixturevalue("redis_cluster")
            cluster.flush()
            backend_url, replicas = cluster_replicas_backend(cluster), REPLICAS
        else:
            missing = redis_server_missing()
            if missing:
                pytest.skip(missing)
            redis = stack.enter_context(RedisServer(tmp_path / "redis"))
            backend_url, replicas = replicas_backend(redis), REPLICAS

        async def start(grace: float = 1.0, **policy: float) -> Harness:
            settings = Settings(
                listen="127.0.0.1:0",
                policy=PermitPolicy(**policy),  # type: ignore[arg-type]
                grace=grace,
                backend=backend_url,
            )
            servers = [PermitServer(settings) for _ in range(replicas)]
            for server in servers:
                await server.start()
            if replicas == 1:
                channel = grpc.aio.insecure_channel(f"127.0.0.1:{servers[0].port}")
            else:  # the client spreads its calls over the replicas
                channel = round_robin_channel([f"127.0.0.1:{s.port}" for s in servers])
            stub = permits_pb2_grpc.PermitServiceStub(channel)
            harness = Harness(servers[0], channel, stub)
            harness.replicas = servers
            started.append(harness)
            return harness

        yield start
        for harness in started:
            await harness.channel.close(None)
            await harness.stop(0)
