"""The upstream never sees more than the limit: the permit server and the fake Optic Odds enforce
the same limit and window, the calls go through a small connection pool to a slow upstream, and
the permit server is even killed (kill -9) in the middle of the burst. The same holds through
three replicas on one redis-server, the client spreading its calls over them, with two of their
clocks 5 minutes off, or with one replica killed in the middle of the burst.

What the upstream counts is an arrival, which can come any time between a grant and its
release: the 4-connection pool holds requests back, and each answer takes 150 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import pytest

from hotspot_client import PermitClient, PermitError
from hotspot_client.optic_odds import OpticOddsClient, OpticOddsError
from tests.client.conftest import CallRecorder
from tests.e2e.processes import (
    API_KEY,
    ServiceProcess,
    fake_optic_odds,
    metrics_url,
    permit_replicas,
    permit_server,
    stop_all,
)
from tests.e2e.readings import permit_stats, upstream_tally
from tests.integration.test_process import free_port
from tests.redis_server import RedisServer, redis_server_missing
from tests.replicas import (
    REPLICAS,
    SKEWED_CLOCKS,
    replicas_backend,
    round_robin_channel,
    until_every_replica_answered,
)

pytestmark = pytest.mark.slow

LIMIT = 10
WINDOW = "0.5s"
CALLS = 150
LATENCY = "150ms"
POOL = 4
REPLICA_CALLS = 40
"""Calls of a burst through replicas: fewer, for the suite's time (a call there takes longer:
a grant on one replica for a release on another is a message and a poll away)."""
POLICY = ("--limit", str(LIMIT), "--window", WINDOW, "--queue", str(CALLS))


@pytest.fixture
def upstream() -> Iterator[ServiceProcess]:
    process = fake_optic_odds(LIMIT, WINDOW, latency=LATENCY)
    yield process
    process.stop()


def permits(state_dir: Path, listen: str) -> ServiceProcess:
    return permit_server(
        *POLICY,
        *("--max-wait", "60s", "--lease", "2s", "--state-dir", str(state_dir)),
        listen=listen,
    )


@contextlib.contextmanager
def replicas_on_redis(directory: Path, clocks: Sequence[int]) -> Iterator[list[ServiceProcess]]:
    """Replicas (one per entry of `clocks`: its wall clock's offset) on one redis-server."""
    missing = redis_server_missing()
    if missing:
        pytest.skip(missing)
    with RedisServer(directory) as redis:
        fleet = permit_replicas(
            replicas_backend(redis), *POLICY, "--max-wait", "60s", "--lease", "2s", clocks=clocks
        )
        try:
            yield fleet
        finally:
            stop_all(fleet)


async def burst(
    servers: str | Sequence[ServiceProcess],
    upstream_url: str,
    fixture_id: str,
    calls: int = CALLS,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> list[BaseException | None]:
    """`calls` odds calls on one fixture at once, through a pool of POOL connections. `servers`:
    one server's address, or replicas (permit_replicas) over which each Acquire and Release goes
    to the next one (unary calls: a stream would keep to the replica it opened on), through
    `interceptors`."""
    async with contextlib.AsyncExitStack() as stack:
        pool = await stack.enter_async_context(
            httpx.AsyncClient(limits=httpx.Limits(max_connections=POOL), timeout=60)
        )
        if isinstance(servers, str):
            client = PermitClient(servers)
        else:
            channel = round_robin_channel([replica.address for replica in servers], interceptors)
            await stack.enter_async_context(channel)
            await until_every_replica_answered(channel, [metrics_url(r) for r in servers])
            client = PermitClient(channel=channel, streaming=False)
        await stack.enter_async_context(client)
        optic_odds = await stack.enter_async_context(
            OpticOddsClient(client, api_key=API_KEY, base_url=upstream_url, http=pool, max_wait=60)
        )

        async def call() -> BaseException | None:
            try:
                await optic_odds.fixture_odds(fixture_id, "DraftKings")
            except (PermitError, OpticOddsError) as error:
                return error
            return None

        return await asyncio.gather(*(call() for _ in range(calls)))


async def until_served(
    upstream: ServiceProcess, fixture_id: str, served: int, calls: asyncio.Task[object]
) -> None:
    """Until the upstream has served `served` calls of the fixture (the burst still running)."""
    while (await upstream_tally(upstream.address, fixture_id))["served"] < served:
        assert not calls.done(), calls
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "clocks",
    [None, SKEWED_CLOCKS],
    ids=["one server", "3 replicas on redis, 2 clocks 5 min off"],
)
async def test_a_slow_upstream_behind_a_small_pool_sees_no_more_than_the_limit(
    upstream: ServiceProcess, tmp_path: Path, clocks: Sequence[int] | None
) -> None:
    """On one server (memory://), then through three replicas on one Redis, one of them
    5 minutes ahead and one 5 minutes behind (the replica test below has true clocks)."""
    fixture_id, calls = "exact-slow", CALLS if clocks is None else REPLICA_CALLS
    with contextlib.ExitStack() as stack:
        if clocks is None:
            fleet = [permits(tmp_path / "state", "127.0.0.1:0")]
            stack.callback(fleet[0].stop)
        else:
            fleet = stack.enter_context(replicas_on_redis(tmp_path / "redis", clocks))
        servers = fleet[0].address if clocks is None else fleet
        outcomes = await burst(servers, upstream.address, fixture_id, calls)
        row = await permit_stats(fleet[-1].address, fixture_id)
    assert [o for o in outcomes if o is not None] == []
    tally = await upstream_tally(upstream.address, fixture_id)
    assert tally["served"] == calls
    assert tally["violations"] == 0, tally
    assert row.calls_total == calls
    assert row.abandoned_total == 0


async def test_a_permit_server_killed_mid_burst_restarts_with_its_windows(
    upstream: ServiceProcess, tmp_path: Path
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    state = tmp_path / "state"
    server = permits(state, listen)
    calls = asyncio.create_task(burst(listen, upstream.address, "exact-crash"))
    try:
        await until_served(upstream, "exact-crash", CALLS // 3, calls)
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


async def test_a_replica_killed_mid_burst_leaves_the_others_exact(
    upstream: ServiceProcess, tmp_path: Path
) -> None:
    """kill -9 of one of three replicas while callers wait on it: they retry on the others,
    and the upstream still never sees more than the limit (the killed replica's tickets leave
    the queue with their ticket lease, its grants end with their leases)."""
    with replicas_on_redis(tmp_path / "redis", (0,) * REPLICAS) as fleet:
        killed, *survivors = fleet
        recorder = CallRecorder()
        calls = asyncio.create_task(
            burst(fleet, upstream.address, "replica-crash", REPLICA_CALLS, [cast(Any, recorder)])
        )
        await until_served(upstream, "replica-crash", REPLICA_CALLS // 3, calls)
        killed.kill()
        outcomes = await calls
        row = await permit_stats(survivors[0].address, "replica-crash")
    tally = await upstream_tally(upstream.address, "replica-crash")
    assert tally["violations"] == 0, tally
    # Callers were waiting on the killed replica (UNAVAILABLE), and retried on the others.
    assert recorder.attempts("Acquire") > REPLICA_CALLS
    assert [o for o in outcomes if o is not None] == []
    assert tally["served"] == REPLICA_CALLS
    assert row.calls_total >= REPLICA_CALLS
