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
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from hotspot_core.errors import BackendUnavailable, PermitRefused, WaitTooLong
from hotspot_core.grants import Grant, Outcome
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView
from hotspot_server.redis_backend import RedisBackend
from tests.redis.test_failures import LENIENT, eventually
from tests.redis_server import RedisSentinel, RedisServer, redis_server_missing

POLICY = PermitPolicy(limit=3, window=1.0, queue=3, lease=2.0, max_wait=5.0)
VIEW = StatsView(fixture_ids=("f", "p"))
RESUME_BOUND = 20.0
"""Seconds grants must resume within after the primary dies (generous: not a timing test)."""
T = TypeVar("T")


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


async def once_redis_answers(call: Callable[[], Awaitable[T]]) -> T:
    """The call's first answer once Redis answers again (after a restart or a failover; the
    backend's breaker lets a call through every 0.5 s)."""
    deadline = time.monotonic() + RESUME_BOUND
    while True:
        try:
            return await call()
        except BackendUnavailable:
            assert time.monotonic() < deadline, "redis never answered again"
            await asyncio.sleep(0.05)


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

            assert await once_redis_answers(lambda: backend.stats(VIEW)) == before
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

            after = await once_redis_answers(lambda: backend.stats(VIEW))
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
        """Answered minus counted: +1 for each grant the new primary never heard of, -1 for
        each it counts whose answer died with the old primary's connection (that caller was
        told UNAVAILABLE, so the slot is only wasted)."""
        return self.acknowledged - self.counted


@contextlib.contextmanager
def primary_replica_sentinel(
    directory: Path,
) -> Iterator[tuple[RedisServer, RedisServer, RedisSentinel]]:
    """A primary, its replica in sync, and one Sentinel that knows both, on loopback."""
    with contextlib.ExitStack() as stack:
        primary = stack.enter_context(RedisServer(directory / "primary"))
        replica = stack.enter_context(RedisServer(directory / "replica", replicaof=primary.port))
        sentinel = stack.enter_context(RedisSentinel(directory / "sentinel", primary.port))
        # After a full sync the primary streams nothing to a replica until its first ACK (sent
        # once a second): a primary lost before then takes every write since with it. WAIT
        # returns once the replica has acknowledged a write, so the stream is flowing.
        with redis.Redis(port=primary.port) as client:
            client.set("hotspot-test:in-sync", 1)
            assert client.wait(1, 10_000) == 1, "the replica never acknowledged a write"
        _wait_for(lambda: _sentinel_sees_replica(sentinel, replica), "sentinel sees the replica")
        yield primary, replica, sentinel


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
    with primary_replica_sentinel(directory) as (primary, replica, sentinel):
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
            stats = await once_redis_answers(lambda: backend.stats(StatsView(fixture_ids=("f",))))
            row = stats.fixtures[0]
            # The subscription followed too: wake-ups are published on the new primary.
            await eventually(lambda: _subscribed(replica, backend), within=RESUME_BOUND)
            return Failover(acknowledged, row.calls_total, resumed_at - killed_at)
        finally:
            await backend.close()


async def _subscribed(server: RedisServer, backend: RedisBackend) -> bool:
    with redis.Redis(port=server.port, decode_responses=True) as client:
        [(_, subscribers)] = client.pubsub_numsub(backend._channel)
    return int(subscribers) == 1


async def test_sentinel_failover_grants_resume_on_the_new_primary(tmp_path: Path) -> None:
    result = await kill_primary_while_granting(tmp_path)
    print(
        f"failover: first grant on the new primary {result.resumed_after:.2f} s after kill -9; "
        f"{result.acknowledged} grants answered, the new primary counts {result.counted} "
        f"({result.forgotten} forgotten)"
    )
    assert result.counted > 0  # the new primary holds the replicated window
    assert result.resumed_after < RESUME_BOUND


async def test_a_grant_the_replica_never_received_is_granted_again_after_failover(
    tmp_path: Path,
) -> None:
    """Asynchronous replication's loss, made certain: the replica is cut off (its link killed
    while it is stopped, so it cannot sync again) before two grants, then the primary dies.
    The promoted replica never saw them: their slots are granted a second time in the window."""
    policy = PermitPolicy(limit=3, window=1.0, lease=60.0)
    with primary_replica_sentinel(tmp_path) as (primary, replica, sentinel):
        backend = RedisBackend(sentinel.url, policy, call_timeout=LENIENT)
        try:
            replicated = await backend.acquire("f")
            with redis.Redis(port=primary.port) as admin:
                admin.set("replicated", 1)
                assert admin.wait(1, 5000) == 1  # the replica holds the first grant
                assert replica.proc is not None
                replica.proc.send_signal(signal.SIGSTOP)  # briefly: not long enough to be down
                try:
                    assert admin.client_kill_filter(_type="replica") == 1
                    unreplicated = [await backend.acquire("f") for _ in range(2)]
                    primary.kill()
                finally:
                    replica.proc.send_signal(signal.SIGCONT)
            assert [g.remaining for g in (replicated, *unreplicated)] == [2, 1, 0]

            again = await once_redis_answers(lambda: backend.acquire("f"))
            assert again.remaining == 1  # the new primary counts only the replicated grant
            assert (await backend.acquire("f")).remaining == 0
            # 5 grants answered in one window of a limit of 3: the 2 it forgot, granted again.
        finally:
            await backend.close()
