"""The permit service stopped under two gateways: one fails closed, one fails open.

Real processes: the permit server, the fake Optic Odds, and two gateways that
differ only in HOTSPOT_FAIL_OPEN.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.e2e.processes import (
    ServiceProcess,
    fake_optic_odds,
    odds_gateway,
    permit_server,
    running,
)
from tests.e2e.readings import upstream_tally

pytestmark = pytest.mark.slow

LIMIT = 3
WINDOW = 2.0
MAX_WAIT = 10.0
RETRY_FOR = 1.0


@dataclass
class Outage:
    upstream: ServiceProcess
    fail_closed: ServiceProcess
    fail_open: ServiceProcess


@pytest.fixture(scope="module")
def outage() -> Iterator[Outage]:
    """Both gateways first served through the permit service, which is then stopped."""
    with running() as started:
        permits = permit_server("--limit", str(LIMIT), "--window", f"{WINDOW}s")
        started.append(permits)
        upstream = fake_optic_odds(LIMIT, f"{WINDOW}s")
        started.append(upstream)
        common = {"HOTSPOT_MAX_WAIT": f"{MAX_WAIT}s", "HOTSPOT_RETRY_FOR": f"{RETRY_FOR}s"}
        fallback = {
            "FALLBACK_LIMIT": str(LIMIT),
            "FALLBACK_WINDOW": f"{WINDOW}s",
            "FALLBACK_QUEUE": "0",
        }
        closed = odds_gateway(permits.address, upstream.address, **common)
        started.append(closed)
        opened = odds_gateway(
            permits.address, upstream.address, HOTSPOT_FAIL_OPEN="1", **common, **fallback
        )
        started.append(opened)
        asyncio.run(_both_serve(closed, opened))
        assert permits.stop() == 0
        yield Outage(upstream, closed, opened)


async def get(gateway: ServiceProcess, fixture_id: str) -> tuple[int, dict[str, Any], str | None]:
    async with (
        aiohttp.ClientSession(gateway.address) as http,
        http.get(f"/fixtures/{fixture_id}/odds", params={"sportsbook": "Pinnacle"}) as response,
    ):
        return response.status, await response.json(), response.headers.get("Retry-After")


async def _both_serve(*gateways: ServiceProcess) -> None:
    for gateway in gateways:
        status, body, _ = await get(gateway, "e2e-before-outage")
        assert status == 200, body
        assert body["permits"][0]["local"] is False


async def test_fail_closed_answers_503_at_once(outage: Outage) -> None:
    for _ in range(2):
        start = time.monotonic()
        status, body, retry_after = await get(outage.fail_closed, "e2e-closed")
        took = time.monotonic() - start
        assert status == 503, body
        assert body["error"] == "permit_service_unavailable"
        assert retry_after is not None
        assert int(retry_after) >= 1
        # Not after waiting out max_wait: at most the short retry budget for a blip.
        assert took < MAX_WAIT / 2
    assert (await upstream_tally(outage.upstream.address, "e2e-closed"))["calls"] == 0


async def test_fail_open_serves_within_the_local_limit(outage: Outage) -> None:
    answers = await asyncio.gather(*(get(outage.fail_open, "e2e-open") for _ in range(2 * LIMIT)))

    served = [body for status, body, _ in answers if status == 200]
    refused = [body for status, body, _ in answers if status == 429]
    assert len(served) == LIMIT, answers
    assert len(refused) == LIMIT, answers
    assert all(body["permits"][0]["local"] for body in served)
    assert all(body["reason"] == "QUEUE_FULL" for body in refused)
    tally = await upstream_tally(outage.upstream.address, "e2e-open")
    assert tally["served"] == LIMIT
    assert tally["violations"] == 0
