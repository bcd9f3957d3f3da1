"""Several permit-server replicas on one redis-server, as the tests run them: the backend URL
they share, and a channel that spreads a client's calls over them."""

from __future__ import annotations

import time
from collections.abc import Sequence

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.redis_server import RedisClusterNodes, RedisServer

REPLICAS = 3
SKEWED_CLOCKS = (0, 300, -300)
"""Seconds each replica's wall clock is off, in tests that show no replica's clock matters
(the rules read Redis's TIME only): one true, one 5 minutes ahead, one 5 minutes behind."""


def replicas_backend(redis: RedisServer) -> str:
    """The --backend every replica is given."""
    # The suite shares two cores with everything else CI runs: the default 0.1 s call
    # timeout would fail calls a busy machine only delays (tests/redis tests it).
    return redis.url + "?timeout=1"


def cluster_replicas_backend(cluster: RedisClusterNodes) -> str:
    """The --backend of replicas sharing a Redis Cluster."""
    # As above; and a replica's first call also learns the slot map (~0.1 s of a core).
    return cluster.url + "?timeout=2"


def round_robin_channel(
    addresses: Sequence[str], interceptors: Sequence[grpc.aio.ClientInterceptor] = ()
) -> grpc.aio.Channel:
    """One channel over every replica (HOST:PORT each): each call goes to the next one."""
    return grpc.aio.insecure_channel(
        "ipv4:" + ",".join(addresses),
        options=[("grpc.lb_policy_name", "round_robin")],
        interceptors=interceptors,
    )


async def until_every_replica_answered(
    channel: grpc.aio.Channel, metrics_urls: Sequence[str], within: float = 10.0
) -> None:
    """Round robin connects to every replica at once, but sends each call to one it is connected
    to by then: a burst on a new channel could all go to the first replica to answer. Health
    checks go over the channel until every replica's /metrics (at `metrics_urls`) counts one."""
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=within) as http:
        while True:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=within)
            answered = [_health_checks((await http.get(url)).text) for url in metrics_urls]
            if all(answered):
                return
            assert time.monotonic() < deadline, f"health checks answered by each: {answered}"


def _health_checks(metrics: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "grpc_server_handled"
        for sample in family.samples
        if sample.name == "grpc_server_handled_total" and sample.labels["grpc_method"] == "Check"
    )
