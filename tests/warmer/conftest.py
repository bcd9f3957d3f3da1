"""The warmer's rig: the real permit server in the loop, the real fake Optic Odds app in
process (httpx's ASGI transport: no sockets, so virtual time stays exact), and a scheduler
on a UTC clock pinned half an hour before a major fixture's kick-off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fake_optic_odds.app import FakeOpticOdds, FakeSettings, create_app
from fake_optic_odds.limits import FixtureCallLimit
from hotspot_client import PermitClient, UnavailableRetry
from hotspot_client.optic_odds import OpticOddsClient
from hotspot_client.optic_odds.cache import OddsCache
from hotspot_core.policy import PermitPolicy
from hotspot_server.server import PermitServer
from hotspot_server.settings import Settings
from hotspot_warmer.config import WarmerConfig
from hotspot_warmer.leases import FixtureLeases
from hotspot_warmer.scheduler import WarmingScheduler
from hotspot_warmer.utc_clock import UtcClock
from tests.redis_server import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]

API_KEY = "warmer-key"
KICKOFF = datetime(2026, 2, 8, 23, 30, tzinfo=UTC)
SUPER_BOWL = "20260208NFLSB60X"


def super_bowl(**fields: Any) -> dict[str, Any]:
    return {
        "id": SUPER_BOWL,
        "start_date": KICKOFF.isoformat().replace("+00:00", "Z"),
        "status": "unplayed",
        "sport": {"id": "football", "name": "Football", "numerical_id": 9},
        "league": {"id": "nfl", "name": "NFL", "numerical_id": 367},
        "season_type": "Playoffs",
        "tournament": "NFL Playoffs",
        "tournament_stage": "Super Bowl LX",
        **fields,
    }


@dataclass
class WarmerRig:
    permit_server: PermitServer
    fake: FakeOpticOdds
    clock: UtcClock
    odds: OpticOddsClient
    scheduler: WarmingScheduler
    calls: list[float] = field(default_factory=list)
    """Virtual Unix seconds of each GET /fixtures/odds the warmer sent."""

    def list_fixtures(self, *fixtures: dict[str, Any]) -> None:
        self.fake._list(list(fixtures))

    def calls_in_any_window(self, window: float) -> int:
        """The most calls any interval of `window` seconds held."""
        return max(
            (sum(1 for c in self.calls if t <= c < t + window) for t in self.calls), default=0
        )


MakeWarmerRig = Callable[..., Awaitable[WarmerRig]]


@pytest.fixture
async def make_warmer_rig() -> AsyncIterator[MakeWarmerRig]:
    """make_warmer_rig(start=KICKOFF - 30 min, leases=None, **warming settings) -> WarmerRig."""
    made: list[tuple[WarmerRig, httpx.AsyncClient, PermitClient]] = []

    async def make(
        *,
        start: datetime = KICKOFF - timedelta(minutes=30),
        leases: FixtureLeases | None = None,
        cache_url: str = "memory://",
        clock: UtcClock | None = None,
        **warming: Any,
    ) -> WarmerRig:
        config = WarmerConfig.load()
        config = replace(config, warming=replace(config.warming, **warming))
        server = PermitServer(
            Settings(
                listen="127.0.0.1:0",
                policy=PermitPolicy(
                    limit=config.warming.limit, window=config.warming.window, queue=10
                ),
                grace=0.5,
            )
        )
        await server.start()
        app = create_app(FakeSettings(api_key=API_KEY, limit=50, window=60.0))
        clock = clock or UtcClock(start)
        # The fake judges its window on the test's clock too, virtual time included.
        app.state.fake.limit = FixtureCallLimit(
            50, 60.0, monotonic=clock.timestamp, wall=clock.timestamp
        )
        calls: list[float] = []

        async def record(request: httpx.Request) -> None:
            if request.url.path.endswith("/fixtures/odds"):
                calls.append(clock.timestamp())

        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), event_hooks={"request": [record]}
        )
        permits = PermitClient(
            f"127.0.0.1:{server.port}",
            client_id="hotspot-warmer",
            retry=UnavailableRetry(give_up_after=0.2),
        )
        cache = OddsCache.from_url(
            cache_url, now=clock.timestamp, freshness=config.warming.freshness
        )
        odds = OpticOddsClient(
            permits, api_key=API_KEY, base_url="http://fake.invalid", http=http, cache=cache
        )
        scheduler = WarmingScheduler(odds, config, clock, leases)
        rig = WarmerRig(server, app.state.fake, clock, odds, scheduler, calls)
        made.append((rig, http, permits))
        return rig

    yield make
    for rig, http, permits in made:
        await rig.scheduler.stop()
        if rig.odds.cache is not None:
            await rig.odds.cache.close()
        await rig.scheduler.leases.close()
        await http.aclose()
        await permits.close()
        await rig.permit_server.stop(0)
