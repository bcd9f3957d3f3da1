"""Several permit-server replicas on one redis-server, as the tests run them: the backend URL
they share, and a channel that spreads a client's calls over them."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from tests.redis_server import RedisServer

REPLICAS = 3
SKEWED_CLOCKS = (0, 300, -300)
"""Seconds each replica's wall clock is off, in tests that show no replica's clock matters
(the rules read Redis's TIME only): one true, one 5 minutes ahead, one 5 minutes behind."""


def replicas_backend(redis: RedisServer) -> str:
    """The --backend every replica is given."""
    # The suite shares two cores with everything else CI runs: the default 0.1 s call
    # timeout would fail calls a busy machine only delays (tests/redis tests it).
    return redis.url + "?timeout=1"


def round_robin_channel(addresses: Sequence[str]) -> grpc.aio.Channel:
    """One channel over every replica (HOST:PORT each): each call goes to the next one."""
    return grpc.aio.insecure_channel(
        "ipv4:" + ",".join(addresses), options=[("grpc.lb_policy_name", "round_robin")]
    )
