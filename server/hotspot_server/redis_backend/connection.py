"""The Redis clients a RedisBackend talks through, made from its URL: one function per URL
scheme, so another Redis topology is one more function in CONNECTORS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


class Clients(NamedTuple):
    """`commands` runs scripts and reads (every call under the timeout); `pubsub` blocks
    reading its subscription, so it has no read timeout."""

    commands: aioredis.Redis
    pubsub: aioredis.Redis


def _command_options(call_timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": call_timeout,
        "socket_connect_timeout": call_timeout,
        # One attempt: a retry would double the time a caller waits on a dead Redis.
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": True,
    }


def _single_node(url: str, call_timeout: float) -> Clients:
    """`redis://` and `rediss://`: one Redis node, all of redis-py's URL options."""
    return Clients(
        aioredis.Redis.from_url(url, **_command_options(call_timeout)),
        aioredis.Redis.from_url(url, socket_connect_timeout=call_timeout, decode_responses=True),
    )


CONNECTORS: dict[str, Callable[[str, float], Clients]] = {
    "redis": _single_node,
    "rediss": _single_node,
}


def open_clients(url: str, call_timeout: float) -> Clients:
    """The clients for a backend URL, by its scheme; ValueError for a scheme not known here."""
    scheme = urlsplit(url).scheme
    connector = CONNECTORS.get(scheme)
    if connector is None:
        known = ", ".join(f"{s}://" for s in CONNECTORS)
        raise ValueError(f"unknown Redis URL scheme in {url!r}; known: {known}")
    return connector(url, call_timeout)
