"""Several RedisBackend replicas on one real redis-server: FIFO with no barging across replicas,
a lost wake-up message only delays a grant, and the window holds under concurrent load."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from hotspot_core.errors import PermitRefused
from hotspot_core.grants import Grant, Outcome
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView
from hotspot_server.redis_backend import RedisBackend
from hotspot_server.redis_backend.backend import HEARTBEAT
from tests.redis.test_failures import LENIENT
from tests.redis_server import RedisServer


async def until_queued(backend: RedisBackend, count: int = 1) -> None:
    """Until the backend's callers hold `count` tickets (nothing to wait on but the count)."""
    while backend.waiters_here() < count:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


class DeafReplica(RedisBackend):
    """A replica that never hears its channel: every wake-up message to it is lost."""

    async def _listen(self) -> None:
        return


async def test_a_newcomer_on_another_replica_never_overtakes_a_ticket(
    redis_server: RedisServer,
) -> None:
    policy = PermitPolicy(limit=1, window=60)
    # The waiter's replica drives nothing by itself: its grant waits in Redis, unheard.
    quiet = RedisBackend(redis_server.url, policy, background=False, call_timeout=LENIENT)
    other = RedisBackend(redis_server.url, policy, call_timeout=LENIENT)
    try:
        held = await other.acquire("f")
        waiter = asyncio.ensure_future(quiet.acquire("f"))
        await until_queued(quiet)
        await other.release(held.permit_id, Outcome.NOT_SENT)  # the slot frees at once
        # The slot went to the ticket in that same script, before anyone answered its caller.
        with pytest.raises(PermitRefused) as refusal:
            await other.acquire("f", budget=0)
        assert refusal.value.reason == "WAIT_TOO_LONG"
        assert not waiter.done()
        await quiet.poll_waiters()
        grant = await asyncio.wait_for(waiter, 1)
        assert grant.queue_position == 1
    finally:
        await quiet.close()
        await other.close()


async def test_a_lost_wake_up_only_delays_the_grant(redis_server: RedisServer) -> None:
    policy = PermitPolicy(limit=1, window=60)
    deaf = DeafReplica(redis_server.url, policy, call_timeout=LENIENT)
    hearing = RedisBackend(redis_server.url, policy, call_timeout=LENIENT)
    other = RedisBackend(redis_server.url, policy, call_timeout=LENIENT)
    try:
        delays = []
        for waiting_on in (hearing, deaf):
            held = await other.acquire("f")
            waiter = asyncio.ensure_future(waiting_on.acquire("f"))
            await until_queued(waiting_on)
            start = time.monotonic()
            await other.release(held.permit_id, Outcome.NOT_SENT)
            grant = await asyncio.wait_for(waiter, 2 * HEARTBEAT + 1)
            delays.append(time.monotonic() - start)
            await waiting_on.release(grant.permit_id, Outcome.NOT_SENT)
        heard, unheard = delays
        assert heard < 0.4  # woken by its channel
        assert unheard < HEARTBEAT + 0.3  # found by its own timer, at most a heartbeat later
    finally:
        for backend in (deaf, hearing, other):
            await backend.close()


async def test_three_replicas_never_let_more_than_the_limit_into_a_window(
    redis_server: RedisServer,
) -> None:
    """Each grant holds its slot from its grant to its release + window. Taking the moment its
    caller sent the release (no later than the release itself) gives every grant a span within
    its true one, so a count over the limit here is a real breach."""
    policy = PermitPolicy(limit=4, window=0.3, queue=100)
    replicas = [RedisBackend(redis_server.url, policy, call_timeout=LENIENT) for _ in range(3)]
    spans: list[tuple[float, float]] = []
    rng = random.Random(7)

    async def call(replica: RedisBackend) -> None:
        grant: Grant = await replica.acquire("hot")
        await asyncio.sleep(rng.uniform(0, 0.05))  # the upstream call
        sent = time.time()
        await rng.choice(replicas).release(grant.permit_id)
        spans.append((grant.granted_at, sent + policy.window))

    try:
        await asyncio.gather(*(call(replicas[i % 3]) for i in range(24)))
        assert_never_over_the_limit(spans, policy, windows=4)
        stats = await replicas[0].stats(StatsView(fixture_ids=("hot",)))
        assert (stats.totals.calls_total, stats.totals.in_flight) == (24, 0)
    finally:
        for replica in replicas:
            await replica.close()


def assert_never_over_the_limit(
    spans: list[tuple[float, float]], policy: PermitPolicy, *, windows: int
) -> None:
    """No grant saw more than the limit holding (each span: grant to release + window), and the
    load really was over the limit: the grants took more than `windows` windows."""
    for granted_at, _ in spans:
        holding = sum(1 for start, end in spans if start <= granted_at < end)
        assert holding <= policy.limit
    first = min(start for start, _ in spans)
    last = max(start for start, _ in spans)
    assert last - first > windows * policy.window


async def test_one_replicas_concurrent_callers_are_served_in_the_order_they_came(
    redis_server: RedisServer,
) -> None:
    replica = RedisBackend(
        redis_server.url, PermitPolicy(limit=1, window=60, queue=0), call_timeout=LENIENT
    )
    try:
        calls = [asyncio.ensure_future(replica.acquire("f", client_id=str(i))) for i in range(20)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        granted = [i for i, r in enumerate(results) if isinstance(r, Grant)]
        assert granted == [0]  # the first caller, though all twenty were in flight at once
        assert all(isinstance(r, PermitRefused) for r in results[1:])
    finally:
        await replica.close()
