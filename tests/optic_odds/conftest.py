"""A permit server and a fake Optic Odds, both real servers on loopback in the test's loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from fake_optic_odds.app import FakeSettings
from fake_optic_odds.server import FakeOpticOddsServer
from hotspot_client import PermitClient, UnavailableRetry
from hotspot_client.optic_odds import OpticOddsClient
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import FixtureStats, StatsView
from hotspot_server.server import PermitServer
from hotspot_server.settings import Settings

API_KEY = "unit-key"


@dataclass
class Rig:
    permit_server: PermitServer
    upstream: FakeOpticOddsServer
    permits: PermitClient
    odds: OpticOddsClient

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.permit_server.port}"

    async def permit_stats(self, fixture_id: str) -> FixtureStats:
        snapshot = await self.permit_server.backend.stats(StatsView(fixture_ids=(fixture_id,)))
        return snapshot.fixtures[0]

    async def grants_total(self) -> int:
        return (await self.permit_server.backend.stats(StatsView())).totals.calls_total

    def tally(self, fixture_id: str) -> dict[str, Any]:
        fixtures: dict[str, dict[str, Any]] = self.upstream.fake.limit.stats()["fixtures"]
        return fixtures.get(fixture_id, {"calls": 0, "violations": 0, "served": 0})


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig() -> AsyncIterator[MakeRig]:
    """make_rig(limit=5, window=60, upstream_limit=50, **odds_client_options) -> Rig."""
    made: list[Rig] = []

    async def make(
        *,
        limit: int = 5,
        window: float = 60.0,
        queue: int = 10,
        upstream_limit: int = 50,
        upstream_window: float = 60.0,
        base_url: str | None = None,
        **options: Any,
    ) -> Rig:
        server = PermitServer(
            Settings(
                listen="127.0.0.1:0",
                policy=PermitPolicy(limit=limit, window=window, queue=queue),
                grace=0.5,
            )
        )
        await server.start()
        upstream = FakeOpticOddsServer(
            FakeSettings(api_key=API_KEY, limit=upstream_limit, window=upstream_window)
        )
        await upstream.start()
        permits = PermitClient(
            f"127.0.0.1:{server.port}", retry=UnavailableRetry(give_up_after=0.2)
        )
        options.setdefault("api_key", API_KEY)
        odds = OpticOddsClient(permits, base_url=base_url or upstream.base_url, **options)
        rig = Rig(server, upstream, permits, odds)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        await rig.odds.close()
        await rig.permits.close()
        await rig.upstream.stop()
        await rig.permit_server.stop(0)
