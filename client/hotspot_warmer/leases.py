"""Per-fixture warming leases, so that several warmers never double a fixture's warming.

A warmer refreshes a fixture only while it holds the fixture's lease; it renews it on
each refresh, and a lease whose warmer died ends after its TTL, when another takes over.
"""

from __future__ import annotations

import contextlib
import logging
from importlib import resources
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

logger = logging.getLogger("hotspot.warmer")

HOLD_LEASE = resources.files("hotspot_warmer").joinpath("hold_lease.lua").read_text()
# The cache's compare-and-delete: one script for "release what I still hold".
RELEASE = (
    resources.files("hotspot_client.optic_odds.cache").joinpath("release_lock.lua").read_text()
)
PREFIX = "hotspot:warmer:v1:lease:"


class FixtureLeases(Protocol):
    async def hold(self, fixture_id: str, ttl: float) -> bool:
        """True if this warmer holds (took or renewed) the fixture's lease for `ttl` seconds."""
        ...

    async def release(self, fixture_id: str) -> None: ...

    async def close(self) -> None: ...


class LocalLeases:
    """One warmer alone: it always holds every lease."""

    async def hold(self, fixture_id: str, ttl: float) -> bool:
        return True

    async def release(self, fixture_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisLeases:
    """Leases as Redis keys holding the warmer's id, with a PX expiry.

    While Redis cannot be reached no lease is held, so no warmer warms: warming is
    an optimisation, and doubling it is what the leases exist to prevent.
    """

    def __init__(self, url: str, warmer_id: str) -> None:
        self.warmer_id = warmer_id
        self._redis: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        self._hold = self._redis.register_script(HOLD_LEASE)
        self._release = self._redis.register_script(RELEASE)
        self._down = False

    async def hold(self, fixture_id: str, ttl: float) -> bool:
        try:
            held = await self._hold(
                keys=[PREFIX + fixture_id], args=[self.warmer_id, max(1, round(ttl * 1000))]
            )
        except (RedisError, OSError) as error:
            if not self._down:
                logger.warning("warming leases unavailable, not warming: %s", error)
                self._down = True
            return False
        self._down = False
        return bool(held)

    async def release(self, fixture_id: str) -> None:
        with contextlib.suppress(RedisError, OSError):  # else its TTL ends it
            await self._release(keys=[PREFIX + fixture_id], args=[self.warmer_id])

    async def close(self) -> None:
        await self._redis.aclose()
