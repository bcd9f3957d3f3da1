"""The redis:// backend: replicas sharing each fixture's exact window and FIFO queue in Redis."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hotspot_core.policy import PermitPolicy
from hotspot_server.redis_backend.backend import CALL_TIMEOUT, RedisBackend
from hotspot_server.redis_backend.keys import CLUSTER_SHARDS


def open_redis_backend(url: str, policy: PermitPolicy) -> RedisBackend:
    """The backend for `redis://[USER:PASSWORD@]HOST:PORT/DB[?timeout=SECONDS]` (`rediss://`
    for TLS), or for the primary a set of Sentinels names (connection.SENTINEL_FORM).
    `timeout` bounds every Redis call (default 0.1 s); the rest is redis-py's. A Redis Cluster
    (connection.CLUSTER_FORM) also takes `shards`: how many groups the fixtures are split into
    (keys.py; default CLUSTER_SHARDS), the same on every replica."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    timeout = [value for key, value in query if key == "timeout"]
    try:
        call_timeout = float(timeout[-1]) if timeout else CALL_TIMEOUT
    except ValueError:
        raise ValueError(f"timeout must be seconds, got {timeout[-1]!r}") from None
    if not 0 < call_timeout <= 60:
        raise ValueError(f"timeout must be above 0 and at most 60 seconds, got {call_timeout}")
    shards = [value for key, value in query if key == "shards"]
    clustered = parts.scheme.endswith("+cluster")
    if shards and not clustered:
        raise ValueError("shards is for a Redis Cluster (redis+cluster://) only")
    if shards and not (shards[-1].isascii() and shards[-1].isdigit()):
        raise ValueError(f"shards must be a whole number, got {shards[-1]!r}")
    rest = urlencode([(key, value) for key, value in query if key not in ("timeout", "shards")])
    return RedisBackend(
        urlunsplit(parts._replace(query=rest)),
        policy,
        call_timeout=call_timeout,
        shards=int(shards[-1]) if shards else CLUSTER_SHARDS if clustered else 1,
    )


__all__ = ["RedisBackend", "open_redis_backend"]
