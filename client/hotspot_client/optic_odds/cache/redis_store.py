"""RedisStore (`redis://`): entries and refresh locks in a Redis every gateway replica shares."""

from __future__ import annotations

import secrets
from importlib import resources

import redis.asyncio as redis
from redis.exceptions import RedisError

from hotspot_client.optic_odds.cache.entry import CacheEntry, EntryFormatError
from hotspot_client.optic_odds.cache.store import CacheUnavailable

RELEASE_LOCK = (
    resources.files("hotspot_client.optic_odds.cache").joinpath("release_lock.lua").read_text()
)
SOCKET_TIMEOUT = 0.5
"""Seconds a Redis command may take: a cache slower than that is treated as down."""
MAX_CONNECTIONS = 32
"""Connections to Redis per process; more callers wait (at most `socket_timeout`) for one."""
LOCK_SUFFIX = ":lock"
EXTEND_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
"""Renew the lock only if the caller's token still holds it."""


class RedisStore:
    """Entries as plain keys with a PX expiry (their `keep_for`); locks as SET NX PX keys.

    Every Redis failure is a CacheUnavailable, which the cache treats as an outage.
    """

    shared = True

    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float = SOCKET_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.url = url
        # A bounded pool that makes callers wait for a connection: redis-py's default pool
        # raises MaxConnectionsError under a burst instead (measured: 200 concurrent reads).
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
        )
        self._redis: redis.Redis = redis.Redis.from_pool(pool)  # owns the pool: closed with it
        # Registered once; after a Redis restart, NOSCRIPT makes redis-py load it again.
        self._release = self._redis.register_script(RELEASE_LOCK)
        self._extend = self._redis.register_script(EXTEND_LOCK)

    async def get(self, key: str) -> CacheEntry | None:
        try:
            raw = await self._redis.get(key)
            if raw is None:
                return None
            if not isinstance(raw, bytes):  # a client made with decode_responses=True
                raise EntryFormatError(f"expected bytes from Redis, got {type(raw).__name__}")
            return CacheEntry.from_bytes(raw)
        except (RedisError, OSError, EntryFormatError) as error:
            raise CacheUnavailable(f"GET {key} at {self.url}: {error!r}") from error

    async def put(self, key: str, entry: CacheEntry) -> None:
        try:
            await self._redis.set(key, entry.to_bytes(), px=_ms(entry.keep_for))
        except (RedisError, OSError) as error:
            raise CacheUnavailable(f"SET {key} at {self.url}: {error!r}") from error

    async def lock(self, key: str, ttl: float) -> str | None:
        token = secrets.token_hex(8)
        try:
            taken = await self._redis.set(key + LOCK_SUFFIX, token, nx=True, px=_ms(ttl))
        except (RedisError, OSError) as error:
            raise CacheUnavailable(f"lock {key} at {self.url}: {error!r}") from error
        return token if taken else None

    async def extend(self, key: str, token: str, ttl: float) -> bool:
        try:
            return bool(await self._extend(keys=[key + LOCK_SUFFIX], args=[token, _ms(ttl)]))
        except (RedisError, OSError) as error:
            raise CacheUnavailable(f"extend lock {key} at {self.url}: {error!r}") from error

    async def is_locked(self, key: str) -> bool:
        try:
            return bool(await self._redis.exists(key + LOCK_SUFFIX))
        except (RedisError, OSError) as error:
            raise CacheUnavailable(f"EXISTS {key} at {self.url}: {error!r}") from error

    async def unlock(self, key: str, token: str) -> None:
        try:
            await self._release(keys=[key + LOCK_SUFFIX], args=[token])
        except (RedisError, OSError) as error:
            raise CacheUnavailable(f"unlock {key} at {self.url}: {error!r}") from error

    async def close(self) -> None:
        await self._redis.aclose()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
