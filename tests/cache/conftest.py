"""The cache's rig: a permit server and a fake Optic Odds, real on loopback in the test's loop,
with OpticOddsClients reading through caches on a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from fake_optic_odds.app import FakeSettings
from fake_optic_odds.server import FakeOpticOddsServer
from hotspot_client import PermitClient, UnavailableRetry
from hotspot_client.optic_odds import OpticOddsClient
from hotspot_client.optic_odds.cache import FreshnessRules, OddsCache
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView
from hotspot_server.server import PermitServer
from hotspot_server.settings import Settings
from tests.redis_server import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]

API_KEY = "cache-key"
START = 1_800_000_000.0


class ManualClock:
    """Unix seconds that move only when the test says: freshness without sleeping."""

    def __init__(self, start: float = START) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class CacheRig:
    permit_server: PermitServer
    upstream: FakeOpticOddsServer
    permits: PermitClient
    clock: ManualClock
    clients: list[OpticOddsClient] = field(default_factory=list)

    def client(
        self, cache_url: str = "memory://", freshness: FreshnessRules | None = None, **cache: Any
    ) -> OpticOddsClient:
        """An OpticOddsClient with a cache of its own on `cache_url` (one per "replica")."""
        odds_cache = OddsCache.from_url(cache_url, now=self.clock, freshness=freshness, **cache)
        odds = OpticOddsClient(
            self.permits,
            api_key=API_KEY,
            base_url=self.upstream.base_url,
            max_wait=0,
            cache=odds_cache,
        )
        self.clients.append(odds)
        return odds

    def upstream_calls(self, fixture_id: str) -> int:
        fixtures: dict[str, dict[str, Any]] = self.upstream.fake.limit.stats()["fixtures"]
        return int(fixtures.get(fixture_id, {"calls": 0})["calls"])

    async def grants_total(self) -> int:
        return (await self.permit_server.backend.stats(StatsView())).totals.calls_total

    async def fault(self, **script: object) -> None:
        async with httpx.AsyncClient(base_url=self.upstream.base_url) as http:
            (await http.post("/_fake/fault", json=script)).raise_for_status()


MakeCacheRig = Callable[..., Awaitable[CacheRig]]


@pytest.fixture
async def make_cache_rig() -> AsyncIterator[MakeCacheRig]:
    """make_cache_rig(limit=50, window=60, latency=0.0) -> CacheRig; the fake at the same limit."""
    made: list[CacheRig] = []

    async def make(*, limit: int = 50, window: float = 60.0, latency: float = 0.0) -> CacheRig:
        server = PermitServer(
            Settings(
                listen="127.0.0.1:0",
                policy=PermitPolicy(limit=limit, window=window, queue=10),
                grace=0.5,
            )
        )
        await server.start()
        upstream = FakeOpticOddsServer(
            FakeSettings(api_key=API_KEY, limit=limit, window=window, latency=latency)
        )
        await upstream.start()
        permits = PermitClient(
            f"127.0.0.1:{server.port}", retry=UnavailableRetry(give_up_after=0.2)
        )
        rig = CacheRig(server, upstream, permits, ManualClock())
        made.append(rig)
        return rig

    yield make
    for rig in made:
        for odds in rig.clients:
            await odds.close()
            if odds.cache is not None:
                await odds.cache.close()
        await rig.permits.close()
        await rig.upstream.stop()
        await rig.permit_server.stop(0)
