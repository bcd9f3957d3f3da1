"""A hot spot absorbed end to end: permit server, fake Optic Odds and the gateway, real processes.

The permit server and the fake upstream enforce the very same LIMIT per WINDOW.
The upstream counts a call when it arrives, which can be any time between its
grant and its release; a grant holds its slot until release + window, so the
upstream never sees one call too many, with no margin.

The requests are sent with aiohttp: httpx's pool took 6 s to open 300
connections at once here (longer than the window), aiohttp 0.3 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from hotspot_core.hold_time import DEFAULT_HOLD
from tests.e2e.processes import (
    API_KEY,
    ServiceProcess,
    fake_optic_odds,
    odds_gateway,
    permit_server,
    running,
)
from tests.e2e.readings import permit_stats, upstream_tally

pytestmark = pytest.mark.slow

LIMIT = 5
WINDOW = 3.0
QUEUE = 5
UPSTREAM_WINDOW = WINDOW  # the same limit and window: no margin
BURST = 300


@dataclass
class Stack:
    permits: ServiceProcess
    upstream: ServiceProcess
    gateway: ServiceProcess


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running() as started:
        started.append(
            permit_server("--limit", str(LIMIT), "--window", f"{WINDOW}s", "--queue", str(QUEUE))
        )
        started.append(fake_optic_odds(LIMIT, f"{UPSTREAM_WINDOW}s"))
        started.append(odds_gateway(started[0].address, started[1].address, HOTSPOT_MAX_WAIT="10s"))
        yield Stack(*started)


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    retry_after: int | None
    at: float
    """time.monotonic() when it arrived."""

    @property
    def permit(self) -> dict[str, Any]:
        first: dict[str, Any] = self.body["permits"][0]
        return first


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=0)  # no cap: the burst is 300 requests at once
    async with aiohttp.ClientSession(stack.gateway.address, connector=connector) as session:
        yield session


async def odds(http: aiohttp.ClientSession, path: str, *params: tuple[str, str]) -> Answer:
    async with http.get(path, params=[("sportsbook", "DraftKings"), *params]) as response:
        body = await response.json()
        header = response.headers.get("Retry-After")
    return Answer(
        response.status, body, int(header) if header is not None else None, time.monotonic()
    )


async def test_a_burst_on_one_fixture_is_absorbed(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    hot, calm = "/fixtures/e2e-hot/odds", "/fixtures/e2e-calm/odds"
    burst = [asyncio.create_task(odds(http, hot)) for _ in range(BURST)]
    # Once every request that is not queued has its answer, the queue is full and waiting.
    while sum(t.done() for t in burst) < BURST - QUEUE:
        await asyncio.wait([t for t in burst if not t.done()], return_when="FIRST_COMPLETED")
    refusals = [t.result() for t in burst if t.done() and t.result().status == 429]
    assert refusals, "a burst of 300 on a queue of 5 must turn some away"

    # Meanwhile another fixture is served without waiting behind the hot one.
    calm_answers = [await odds(http, calm) for _ in range(3)]
    assert [a.status for a in calm_answers] == [200, 200, 200]
    assert [a.permit["queue_position"] for a in calm_answers] == [0, 0, 0]
    assert not all(t.done() for t in burst), "the calm fixture waited for the hot queue"

    # A refused request retried after its Retry-After is served.
    last = max(refusals, key=lambda a: a.at)
    assert last.retry_after is not None
    await asyncio.sleep(last.at + last.retry_after - time.monotonic())
    retried = await odds(http, hot)
    assert retried.status == 200, retried.body
    answers = await asyncio.gather(*burst)

    served = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status == 429]
    assert len(served) + len(refused) == BURST, {a.status for a in answers}
    assert len(served) == LIMIT + QUEUE

    # Each refusal: Retry-After in whole seconds, rounded up, and the JSON body.
    for answer in refused:
        assert answer.body["error"] == "rate_limited"
        assert answer.body["reason"] == "QUEUE_FULL"
        assert answer.body["fixture_id"] == "e2e-hot"
        delay = answer.body["retry_after"]
        # The permits in flight are expected back after the expected hold: 1 s before any release.
        assert 0 < delay <= DEFAULT_HOLD + WINDOW
        assert answer.retry_after is not None
        assert delay <= answer.retry_after < delay + 1.001  # the body has milliseconds

    # The queued requests were granted later, in the order they arrived.
    queued = sorted(
        (a for a in served if a.permit["queue_position"] > 0),
        key=lambda a: a.permit["queue_position"],
    )
    assert [a.permit["queue_position"] for a in queued] == list(range(1, QUEUE + 1))
    grant_times = [a.permit["granted_at"] for a in queued]
    assert grant_times == sorted(grant_times)
    assert all(a.permit["waited"] > 0 for a in queued)

    # Exactly LIMIT grants per window: the burst's, then the queue's, then the retry.
    grants = sorted(a.permit["granted_at"] for a in [*served, retried])
    per_window = [
        sum(grants[0] + k * WINDOW <= g < grants[0] + (k + 1) * WINDOW for g in grants)
        for k in range(3)
    ]
    assert per_window == [LIMIT, LIMIT, 1]

    # The upstream saw each of those calls once, and never one too many.
    tally = await upstream_tally(stack.upstream.address, "e2e-hot")
    assert tally["violations"] == 0, tally
    assert tally["served"] == len(grants)
    arrivals = tally["served_at"]
    assert all(b - a >= UPSTREAM_WINDOW for a, b in zip(arrivals, arrivals[LIMIT:], strict=False))


async def test_a_refused_multi_fixture_call_leaves_no_grant_behind(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    free, full = "e2e-multi-free", "e2e-multi-full"
    assert (await odds(http, f"/fixtures/{free}/odds")).status == 200
    for _ in range(LIMIT):
        assert (await odds(http, f"/fixtures/{full}/odds")).status == 200
    before = await permit_stats(stack.permits.address, free)
    assert before.calls_in_window == 1

    refused = await odds(
        http, "/odds", ("fixture_id", free), ("fixture_id", full), ("max_wait", "0")
    )

    assert refused.status == 429, refused.body
    assert refused.body["reason"] == "WAIT_TOO_LONG"
    assert refused.body["fixture_id"] == full
    after = await permit_stats(stack.permits.address, free)
    assert after.calls_in_window == before.calls_in_window
    assert after.in_flight == 0
    assert after.calls_total == before.calls_total + 1  # granted, then refunded as NOT_SENT
    assert (await upstream_tally(stack.upstream.address, free))["calls"] == 1


async def test_an_upstream_429_pauses_the_fixture_for_its_retry_after(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    fixture = "e2e-upstream-429"
    # Someone calls Optic Odds without asking hotspot and spends the fixture's upstream budget.
    async with aiohttp.ClientSession(stack.upstream.address) as rogue:
        for _ in range(LIMIT):
            params = {"fixture_id": fixture, "sportsbook": "Pinnacle"}
            async with rogue.get(
                "/fixtures/odds", params=params, headers={"X-Api-Key": API_KEY}
            ) as response:
                assert response.status == 200

    sent = time.time()
    limited = await odds(http, f"/fixtures/{fixture}/odds")
    answered = time.time()

    assert limited.status == 429, limited.body
    assert limited.body["reason"] == "UPSTREAM_RATE_LIMITED"
    assert limited.body["fixture_id"] == fixture
    upstream_delay = limited.retry_after  # the fake's own Retry-After, passed on
    assert upstream_delay is not None
    assert upstream_delay >= 1
    row = await permit_stats(stack.permits.address, fixture)
    assert row.HasField("paused_until")
    paused_until = row.paused_until.ToNanoseconds() / 1e9
    assert sent + upstream_delay <= paused_until <= answered + upstream_delay

    # While paused: a request that will not wait is refused, one that waits is served after.
    hurried = await odds(http, f"/fixtures/{fixture}/odds", ("max_wait", "0"))
    assert hurried.status == 429
    assert hurried.body["reason"] == "WAIT_TOO_LONG"
    patient = await odds(http, f"/fixtures/{fixture}/odds")
    assert patient.status == 200, patient.body
    assert patient.permit["granted_at"] >= paused_until
    assert (await upstream_tally(stack.upstream.address, fixture))["violations"] == 1
