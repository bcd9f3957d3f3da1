"""A replica whose clock is minutes off changes nothing, for the rules read Redis's TIME only.

Three replica processes on one redis-server, one on the true clock, one 5 minutes ahead and one
5 minutes behind (libfaketime preloaded; each one's log shows its clock), share one exact window
and one FIFO queue, and what they answer (grant and lease times, waits, retry-after, estimated
waits, pauses) is read from Redis's clock, not theirs. The e2e upstream test runs its burst
through such replicas too (tests/e2e/test_upstream_exact.py).
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from tests.e2e.processes import permit_replicas, stop_all
from tests.e2e.readings import permit_stats
from tests.integration.test_grpc_permits import refused
from tests.redis.test_failures import eventually
from tests.redis_server import RedisServer
from tests.replicas import SKEWED_CLOCKS, replicas_backend

pytestmark = pytest.mark.slow

LIMIT, WINDOW, LEASE, PAUSE = 2, 1.0, 5.0, 2
WAITERS = 6
CLOCK_SLACK = 10.0
"""How far from our clock a time Redis answered may be on a busy machine (a leak: 300 s)."""


def seconds(timestamp: Timestamp) -> float:
    return timestamp.ToNanoseconds() / 1e9


def cannot_wait(fixture_id: str) -> pb.AcquireRequest:
    """An Acquire that waits 0.1 s at most (as max_wait: a deadline that short could pass
    before the answer on a busy machine)."""
    return pb.AcquireRequest(fixture_id=fixture_id, max_wait=Duration(nanos=100_000_000))


async def test_replicas_minutes_apart_share_one_window_one_queue_and_one_clock(
    redis_server: RedisServer,
) -> None:
    fleet = permit_replicas(
        replicas_backend(redis_server),
        *("--limit", str(LIMIT), "--window", f"{WINDOW}s", "--lease", f"{LEASE}s"),
        clocks=SKEWED_CLOCKS,
    )
    channels = [grpc.aio.insecure_channel(replica.address) for replica in fleet]
    try:
        stubs = [permits_pb2_grpc.PermitServiceStub(channel) for channel in channels]
        true, ahead, behind = stubs

        # Grants made by the skewed replicas carry Redis's time, their leases too.
        before = time.time()
        used = [
            await stub.Acquire(pb.AcquireRequest(fixture_id="told")) for stub in (ahead, behind)
        ]
        for grant in used:
            assert before - CLOCK_SLACK < seconds(grant.granted_at) < time.time() + CLOCK_SLACK
            lease = seconds(grant.lease_expires_at) - seconds(grant.granted_at)
            assert lease == pytest.approx(LEASE, abs=0.001)
        for grant, stub in zip(used, (behind, true), strict=True):  # released elsewhere
            await stub.Release(pb.ReleaseRequest(permit_id=grant.permit_id))

        # The window is full until one window after those releases: every replica tells a
        # caller that cannot wait so long to come back within the window, not minutes off.
        for stub in stubs:
            error = await refused(stub.Acquire(cannot_wait("told"), timeout=5))
            assert error.reason == "WAIT_TOO_LONG", error
            assert error.retry_delay is not None
            assert 0 < error.retry_delay <= WINDOW
            assert 0 < int(error.metadata["estimated_wait_ms"]) / 1000 <= WINDOW

        # A pause the upstream asked for (a 429, retry after 2 s), reported through the replica
        # behind, lasts 2 s of Redis's time, as the replica ahead tells it.
        before = time.time()
        grant = await true.Acquire(pb.AcquireRequest(fixture_id="paused"))
        await behind.Release(
            pb.ReleaseRequest(
                permit_id=grant.permit_id,
                outcome=pb.OUTCOME_UPSTREAM_RATE_LIMITED,
                upstream_retry_after=Duration(seconds=PAUSE),
            )
        )
        error = await refused(ahead.Acquire(cannot_wait("paused"), timeout=5))
        assert error.reason == "WAIT_TOO_LONG", error
        assert 0 < int(error.metadata["paused_for_ms"]) / 1000 <= PAUSE
        paused_until = seconds((await permit_stats(fleet[1].address, "paused")).paused_until)
        assert before + PAUSE - CLOCK_SLACK < paused_until < time.time() + PAUSE + CLOCK_SLACK

        # Another fixture's window is held by two permits while waiters arrive in turn on the
        # three replicas, each queued before the next comes, each with a 10 s deadline (a
        # replica reading its own clock would misjudge it); then the permits are released.
        held = [await stub.Acquire(pb.AcquireRequest(fixture_id="q")) for stub in (behind, ahead)]

        async def wait(stub: permits_pb2_grpc.PermitServiceAsyncStub) -> pb.AcquireResponse:
            grant = await stub.Acquire(pb.AcquireRequest(fixture_id="q"), timeout=10)
            await stub.Release(pb.ReleaseRequest(permit_id=grant.permit_id))
            return grant

        async def queued(depth: int) -> bool:
            return (await permit_stats(fleet[depth % 3].address, "q")).queue_depth == depth

        waiters = []
        for i in range(WAITERS):
            waiters.append(asyncio.create_task(wait(stubs[(i + 1) % 3])))
            await eventually(lambda depth=i + 1: queued(depth), within=5)  # type: ignore[misc]
        for grant, stub in zip(held, stubs, strict=False):
            await stub.Release(pb.ReleaseRequest(permit_id=grant.permit_id))
        granted = await asyncio.gather(*waiters)
    finally:
        for channel in channels:
            await channel.close(None)
        stop_all(fleet)

    # FIFO: granted in the order they arrived, whichever replica each called.
    assert [g.queue_position for g in granted] == list(range(1, WAITERS + 1))
    times = [seconds(g.granted_at) for g in held + granted]
    assert times == sorted(times)
    for grant in granted:
        assert 0 < grant.waited.ToTimedelta().total_seconds() < 10
    # Exact: a grant needs a slot, which a grant LIMIT places earlier frees one window after
    # its release at the soonest.
    for earlier, later in zip(times, times[LIMIT:], strict=False):
        assert later - earlier >= WINDOW
