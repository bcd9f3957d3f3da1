"""The upstream never sees more than the limit: the permit server and the fake Optic Odds enforce
the same limit and window, the calls go through a small connection pool to a slow upstream, and
the permit server is even killed (kill -9) in the middle of the burst.

What the upstream counts is an arrival, which can come any time between a grant and its
release: the 4-connection pool holds requests back, and each answer takes 150 ms.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hotspot_client import PermitClient, PermitError
from hotspot_client.optic_odds import OpticOddsClient, OpticOddsError
from tests.e2e.processes import API_KEY, ServiceProcess, fake_optic_odds, permit_server
from tests.e2e.readings import permit_stats, upstream_tally
from tests.integration.test_process import free_port

pytestmark = pytest.mark.slow

LIMIT = 10
WINDOW = "0.5s"
CALLS = 300
LATENCY = "150ms"
POOL = 4


@pytest.fixture
def upstream() -> Iterator[ServiceProcess]:
    process = fake_optic_odds(LIMIT, WINDOW, latency=LATENCY)
    yield process
    process.stop()


def permits(state_dir: Path, listen: str) -> ServiceProcess:
    return permit_server(
        *("--limit", str(LIMIT), "--window", WINDOW, "--queue", str(CALLS)),
        *("--max-wait", "60s", "--lease", "2s", "--state-dir", str(state_dir)),
        listen=listen,
    )


async def burst(target: str, upstream_url: str, fixture_id: str) -> list[BaseException | None]:
    """CALLS odds calls on one fixture at once, through a pool of POOL connections."""
    pool = httpx.AsyncClient(limits=httpx.Limits(max_connections=POOL), timeout=60)
    async with (
        PermitClient(target) as client,
        OpticOddsClient(
            client, api_key=API_KEY, base_url=upstream_url, http=pool, max_wait=60
        ) as optic_odds,
        pool,
    ):

        async def call() -> BaseException | None:
            try:
                await optic_odds.fixture_odds(fixture_id, "DraftKings")
            except (PermitError, OpticOddsError) as error:
                return error
            return None

        return await asyncio.gather(*(call() for _ in range(CALLS)))


async def test_a_slow_upstream_behind_a_small_pool_sees_no_more_than_the_limit(
    upstream: ServiceProcess, tmp_path: Path
) -> None:
    server = permits(tmp_path / "state", "127.0.0.1:0")
    try:
        outcomes = await burst(server.address, upstream.address, "exact-slow")
        row = await permit_stats(server.address, "exact-slow")
    finally:
        server.stop()
    assert [o for o in outcomes if o is not None] == []
    tally = await upstream_tally(upstream.address, "exact-slow")
    assert tally["served"] == CALLS
    assert tally["violations"] == 0, tally
    assert row.calls_total == CALLS
    assert row.abandoned_total == 0


async def test_a_permit_server_killed_mid_burst_restarts_with_its_windows(
    upstream: ServiceProcess, tmp_path: Path
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    state = tmp_path / "state"
    server = permits(state, listen)
    calls = asyncio.create_task(burst(listen, upstream.address, "exact-crash"))
    try:
        while (await upstream_tally(upstream.address, "exact-crash"))["served"] < CALLS // 3:
            assert not calls.done(), calls
            await asyncio.sleep(0.05)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        restarted = permits(state, listen)
        try:
            outcomes = await calls
            row = await permit_stats(restarted.address, "exact-crash")
        finally:
            restarted.stop()
    finally:
        if server.proc.poll() is None:
            server.kill()
    assert any("fixtures kept" in line and " 1 fixtures" in line for line in restarted.log)
    tally = await upstream_tally(upstream.address, "exact-crash")
    assert tally["violations"] == 0, tally
    # The callers queued at the crash retried against the restarted server within their budget.
    failures = [o for o in outcomes if o is not None]
    assert len(failures) <= LIMIT, failures  # at most the calls in flight when it died
    assert tally["served"] >= CALLS - LIMIT
    assert row.calls_total >= CALLS // 3  # the counters came back with the windows
