"""The redis:// backend: replicas sharing each fixture's exact window and FIFO queue in Redis."""

from __future__ import annotations

from hotspot_core.policy import PermitPolicy
from hotspot_server.redis_backend.backend import RedisBackend


def open_redis_backend(url: str, policy: PermitPolicy) -> RedisBackend:
    """The backend for `redis://HOST:PORT/DB` (also `rediss://` for TLS)."""
    return RedisBackend(url, policy)


__all__ = ["RedisBackend", "open_redis_backend"]
