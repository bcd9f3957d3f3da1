"""Task 5.4's scenario with real processes: a major fixture kicks off and 2,000 users ask for
its odds over one window, through two gateways; with warming (Redis cache, two warmers) or
without (no cache, no warmer). The time scale is compressed tenfold: a 6 s window stands for
Optic Odds' 60 s, live odds stay fresh 0.3 s (3 s) and may be served 3 s (30 s) stale, pre-game
odds 6 s and 30 s (60 s and 300 s), in the gateways and the warmers alike; the warmers lead
kick-off by 3 s, and users wait at most 1 s (10 s) for a permit.

The permit server and the fake Optic Odds run at the same limit and window (50 per 6 s).
tests/e2e/test_cache_warming.py asserts on the result; bench/warming_pressure.py tables it.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from tests.e2e.processes import (
    ServiceProcess,
    fake_optic_odds,
    odds_gateway,
    permit_server,
    running,
    warmer,
)
from tests.e2e.readings import upstream_tally
from tests.redis_server import RedisServer

LIMIT = 50
WINDOW = "6s"
WINDOW_SECONDS = 6.0
SCALE = 10
"""Real seconds per second of the scenario."""
REQUESTS = 2000
LEAD = 3.0
GATEWAY = {
    "HOTSPOT_MAX_WAIT": "1s",
    "CACHE_LIVE_FRESH": "300ms",
    "CACHE_LIVE_MAX_STALE": "3s",
    "CACHE_PREGAME_FRESH": "6s",
    "CACHE_PREGAME_MAX_STALE": "30s",
}
QUERY = "sportsbook=DraftKings&sportsbook=Pinnacle&market=Moneyline"
WARMER_TOML = f"""
[warming]
lead = "{LEAD}s"
lookahead = "1h"
poll_every = "500ms"
max_game_length = "1h"
budget_share = 0.2
limit = {LIMIT}
window = "{WINDOW}"
sportsbooks = ["DraftKings", "Pinnacle"]
markets = ["Moneyline"]
# The entries a warmer stores carry its freshness to every reader: the gateways' own, scaled.
live_fresh = "300ms"
live_max_stale = "3s"
pregame_fresh = "6s"
pregame_max_stale = "30s"

[[rule]]
name = "super-bowl"
priority = 100
leagues = ["nfl"]
names = ["super ?bowl"]
"""


@dataclass
class ScenarioResult:
    warming: bool
    requests: int
    served: int
    user_429s: int
    other_errors: int
    upstream_calls: int
    violations: int
    latencies: list[float] = field(repr=False)
    ages: list[float] = field(repr=False)
    """Seconds of scenario time each cached answer was old (0 for uncached ones)."""
    stale_served: int
    warmer_refreshes: list[int]

    @property
    def p50_ms(self) -> float:
        return _quantile(self.latencies, 0.5) * 1000

    @property
    def p99_ms(self) -> float:
        return _quantile(self.latencies, 0.99) * 1000

    @property
    def served_per_upstream_call(self) -> float:
        return self.served / self.upstream_calls if self.upstream_calls else float("inf")

    def age_quantile(self, q: float) -> float:
        """Staleness served, in real-scale seconds (scenario seconds x SCALE)."""
        return _quantile(self.ages, q) * SCALE if self.ages else 0.0


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def super_bowl(fixture_id: str, kickoff: datetime, status: str = "unplayed") -> dict[str, Any]:
    return {
        "id": fixture_id,
        "start_date": kickoff.isoformat().replace("+00:00", "Z"),
        "status": status,
        "league": {"id": "nfl", "name": "NFL", "numerical_id": 367},
        "season_type": "Playoffs",
        "tournament_stage": "Super Bowl LX",
    }


async def run_scenario(tmp: Path, *, warming: bool, fixture_id: str) -> ScenarioResult:
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    kickoff = datetime.now(UTC) + timedelta(seconds=LEAD + 4)
    listing = tmp / "fixtures.json"
    listing.write_text(json.dumps([super_bowl(fixture_id, kickoff)]))
    config = tmp / "warmer.toml"
    config.write_text(WARMER_TOML)
    with ExitStack() as stack, running() as processes:
        upstream = fake_optic_odds(LIMIT, WINDOW, fixtures=listing)
        processes.append(upstream)
        permits = permit_server("--limit", str(LIMIT), "--window", WINDOW, "--queue", "100")
        processes.append(permits)
        env = dict(GATEWAY)
        warmers: list[ServiceProcess] = []
        if warming:
            redis = stack.enter_context(RedisServer(tmp / "redis"))
            env["CACHE_URL"] = redis.url
        gateways = [odds_gateway(permits.address, upstream.address, **env) for _ in range(2)]
        processes.extend(gateways)
        if warming:
            for name in ("a", "b"):
                warmers.append(warmer(permits.address, upstream.address, redis.url, config, name))
            processes.extend(warmers)
        await _sleep_until(kickoff)
        async with httpx.AsyncClient(base_url=upstream.address) as http:
            live = [super_bowl(fixture_id, kickoff, status="live")]
            (await http.post("/_fake/fixtures", json=live)).raise_for_status()
        outcomes = await _burst([g.address for g in gateways], fixture_id)
        refreshes = [await _warmer_refreshes(w.address) for w in warmers]
        tally = await upstream_tally(upstream.address, fixture_id)
    served = [o for o in outcomes if o[0] == 200]
    ages = [o[2] for o in served if o[2] is not None]
    return ScenarioResult(
        warming=warming,
        requests=len(outcomes),
        served=len(served),
        user_429s=sum(1 for o in outcomes if o[0] == 429),
        other_errors=sum(1 for o in outcomes if o[0] not in (200, 429)),
        upstream_calls=int(tally["calls"]),
        violations=int(tally["violations"]),
        latencies=[o[1] for o in outcomes],
        ages=ages,
        stale_served=sum(1 for o in served if o[3]),
        warmer_refreshes=refreshes,
    )


async def _sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


Outcome = tuple[int, float, float | None, bool]
"""(status, latency in s, cache age in s or None, stale)."""


async def _burst(gateways: list[str], fixture_id: str) -> list[Outcome]:
    """REQUESTS requests spread evenly over one window, alternating between the gateways.

    Sent with aiohttp: httpx's pool matched every queued request against every connection at
    each step, and at 2,000 requests over 400 connections the test's own client took most of
    a core and stretched the burst over several windows (py-spy)."""
    spacing = WINDOW_SECONDS / REQUESTS
    connector = aiohttp.TCPConnector(limit=400)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        start = time.perf_counter()

        async def one(i: int) -> Outcome:
            await asyncio.sleep(max(0.0, start + i * spacing - time.perf_counter()))
            url = f"{gateways[i % len(gateways)]}/fixtures/{fixture_id}/odds?{QUERY}"
            sent = time.perf_counter()
            try:
                async with http.get(url) as answer:
                    status = answer.status
                    body = await answer.json() if status == 200 else None
            except (aiohttp.ClientError, TimeoutError):
                return (0, time.perf_counter() - sent, None, False)
            took = time.perf_counter() - sent
            cache = body.get("cache") if body is not None else None
            if cache is None:
                return (status, took, None, False)
            return (status, took, float(cache["age"]), bool(cache["stale"]))

        return await asyncio.gather(*(one(i) for i in range(REQUESTS)))


async def _warmer_refreshes(address: str) -> int:
    async with httpx.AsyncClient() as http:
        status = (await http.get(f"http://{address}/status")).json()
    return sum(int(w["results"].get("refreshed", 0)) for w in status["warmings"])


def summary(result: ScenarioResult) -> str:
    return (
        f"warming={'on' if result.warming else 'off'}: {result.served}/{result.requests} served, "
        f"{result.user_429s} 429s, {result.other_errors} other errors, "
        f"{result.upstream_calls} upstream calls ({result.served_per_upstream_call:.1f} served "
        f"per call), {result.violations} violations, p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms, {result.stale_served} stale, age p50 "
        f"{result.age_quantile(0.5):.1f}s p99 {result.age_quantile(0.99):.1f}s (real scale), "
        f"warmer refreshes {result.warmer_refreshes}"
    )
