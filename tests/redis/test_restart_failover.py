"""Redis restarted (with an AOF, and without persistence) and failed over by a real Sentinel:
what the fleet's windows keep and lose, on real redis-server processes.

The restart tests drive time themselves (`now`), so the state before and after the restart is
compared at one instant, exactly. The failover test kills -9 the primary while a replica
grants, and counts the acknowledged grants the promoted replica never heard of: Redis
replicates asynchronously, so a failover can forget the old primary's last writes."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from hotspot_core.errors import BackendUnavailable, PermitRefused, WaitTooLong
from hotspot_core.grants import Grant, Outcome
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsSnapshot, StatsView
from hotspot_server.redis_backend import RedisBackend
from tests.redis.test_failures import LENIENT, eventually
from tests.redis_server import RedisSentinel, RedisServer, redis_server_missing

POLICY = PermitPolicy(limit=3, window=1.0, queue=3, lease=2.0, max_wait=5.0)
VIEW = StatsView(fixture_ids=("f", "p"))
RESUME_BOUND = 20.0
"""Seconds grants must resume within after the primary dies (generous: not a timing test)."""


@pytest.fixture(autouse=True)
def _needs_redis_server() -> None:
    missing = redis_server_missing()
    if missing:
        pytest.skip(missing)


class Clock:
    """Redis's TIME replaced by a time only the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def manual_backend(url: str, clock: Clock) -> RedisBackend:
    return RedisBackend(
        url, POLICY, now=clock, call_timeout=LENIENT, ticket_lease=math.inf, background=False
    )


async def _stats_once_redis_answers(backend: RedisBackend, view: StatsView = VIEW) -> StatsSnapshot:
    """The first stats the backend gets after Redis came back (its breaker probes every 0.5 s)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return await backend.stats(view)
        except BackendUnavailable:
            assert time.monotonic() < deadline, "redis never answered again"
            await asyncio.sleep(0.1)


async def _true(condition: bool) -> bool:
    return condition


async def _refusal(backend: RedisBackend) -> PermitRefused:
    with pytest.raises(WaitTooLong) as refused:
        await backend.acquire("f", budget=0.01)
    return refused.value


async def _fill_and_queue(backend: RedisBackend) -> tuple[list[Grant], asyncio.Future[Grant]]:
    """The window of "f" full of held grants, and one caller queued behind them."""
    held = [await backend.acquire("f") for _ in range(POLICY.limit)]
    waiter = asyncio.ensure_future(backend.acquire("f", budget=4.0))
    await eventually(lambda: _true(backend.waiters_here() == 1), within=5)
    return held, waiter


async def test_aof_restart_keeps_windows_queue_and_pause(tmp_path: Path) -> None:
    clock = Clock()
    with RedisServer(tmp_path / "redis", appendonly=True) as server:
        backend = manual_backend(server.url, clock)
        try:
            held, waiter = await _fill_and_queue(backend)
            paused = await backend.acquire("p")
            await backend.release(paused.permit_id, Outcome.UPSTREAM_RATE_LIMITED, 1.0)
            clock.now += 0.25
            refused_before = await _refusal(backend)
            before = await backend.stats(VIEW)
            assert [row.paused_until is not None for row in before.fixtures] == [False, True]

            server.kill()  # a crash: only what the AOF's fsync'd writes hold comes back
            server.start()

            assert await _stats_once_redis_answers(backend) == before
            # The grants before the restart still count: the same refusal, the same retry-after.
            assert vars(await _refusal(backend)) == vars(refused_before)
            # And the queue moves on from where it was: a freed slot goes to the waiter.
            await backend.release(held[0].permit_id, Outcome.NOT_SENT)
            await backend.poll_waiters()
            granted = await asyncio.wait_for(waiter, 5)
            assert (granted.queue_position, granted.remaining) == (1, 0)
        finally:
            await backend.close()


async def test_restart_without_persistence_forgets_the_windows(tmp_path: Path) -> None:
    """The documented loss: the restarted Redis grants the whole limit again in the same
    window, and the waiter's ticket is gone (answered BACKEND_UNAVAILABLE)."""
    clock = Clock()
    with RedisServer(tmp_path / "redis") as server:
        backend = manual_backend(server.url, clock)
        try:
            _, waiter = await _fill_and_queue(backend)
            server.kill()
            server.start()

            after = await _stats_once_redis_answers(backend)
            assert [(row.calls_total, row.queue_depth) for row in after.fixtures] == [(0, 0)] * 2
            await backend.poll_waiters()
            with pytest.raises(BackendUnavailable, match="place in the queue was lost"):
                await asyncio.wait_for(waiter, 5)
            again = [await backend.acquire("f", budget=0.01) for _ in range(POLICY.limit)]
            assert [grant.remaining for grant in again] == [2, 1, 0]  # at the same instant
        finally:
            await backend.close()


@dataclass
class Failover:
    acknowledged: int
    """Grants the granting replica answered, old primary and new."""
    counted: int
    """Grants the new primary's window holds."""
    resumed_after: float
    """Seconds from the kill -9 to the first grant on the new primary."""

    @property
    def forgotten(self) -> int:
        return self.acknowledged - self.counted


@contextlib.contextmanager
def primary_replica_sentinel(directory: Path) -> Iterator[tuple[RedisServer, RedisSentinel]]:
    """A primary, its replica in sync, and one Sentinel that knows both, on loopback."""
    with contextlib.ExitStack() as stack:
        primary = stack.enter_context(RedisServer(directory / "primary"))
        replica = stack.enter_context(RedisServer(directory / "replica", replicaof=primary.port))
        sentinel = stack.enter_context(RedisSentinel(directory / "sentinel", primary.port))
        _wait_for(lambda: _sentinel_sees_replica(sentinel, replica), "sentinel sees the replica")
        yield primary, sentinel


def _sentinel_sees_replica(sentinel: RedisSentinel, replica: RedisServer) -> bool:
    with redis.Redis(port=sentinel.port, decode_responses=True) as client:
        known = client.execute_command("SENTINEL", "REPLICAS", sentinel.service)
    return any(
        int(entry["port"]) == replica.port and entry["master-link-status"] == "ok"
        for entry in known
    )


def _wait_for(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


async def kill_primary_while_granting(directory: Path, *, workers: int = 4) -> Failover:
    """Grant as fast as `workers` callers can, kill -9 the primary after some grants, and go
    on until the promoted replica grants; then compare the grants answered with its count."""
    policy = PermitPolicy(limit=100_000, window=1.0, lease=60.0)  # held: every grant counts
    with primary_replica_sentinel(directory) as (primary, sentinel):
        backend = RedisBackend(sentinel.url, policy, call_timeout=LENIENT)
        acknowledged = 0
        killed_at: float | None = None
        resumed_at: float | None = None

        async def grant_until_resumed() -> None:
            nonlocal acknowledged, resumed_at
            while resumed_at is None:
                asked_after_kill = killed_at is not None
                try:
                    await backend.acquire("f")
                except BackendUnavailable:
                    await asyncio.sleep(0.02)
                    continue
                acknowledged += 1
                if asked_after_kill and resumed_at is None:
                    resumed_at = time.monotonic()

        try:
            granting = [asyncio.ensure_future(grant_until_resumed()) for _ in range(workers)]
            await eventually(lambda: _true(acknowledged >= 200), within=RESUME_BOUND)
            primary.kill()
            killed_at = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*granting), RESUME_BOUND)
            assert resumed_at is not None
            # Another caller's call may have failed on the old primary just after: its breaker.
            stats = await _stats_once_redis_answers(backend, StatsView(fixture_ids=("f",)))
            row = stats.fixtures[0]
            return Failover(acknowledged, row.calls_total, resumed_at - killed_at)
        finally:
            await backend.close()


async def test_sentinel_failover_grants_resume_on_the_new_primary(tmp_path: Path) -> None:
    result = await kill_primary_while_granting(tmp_path)
    print(
        f"failover: first grant on the new primary {result.resumed_after:.2f} s after kill -9; "
        f"{result.acknowledged} grants answered, the new primary counts {result.counted} "
        f"({result.forgotten} forgotten)"
    )
    assert result.counted > 0  # the new primary holds the replicated window
    assert result.resumed_after < RESUME_BOUND
