"""Failure behaviour on real redis-server processes: fail fast and closed while Redis is away
(stopped, or not answering), readiness says why, everything resumes once it is back; the tickets
of a replica killed with -9 expire and the queue moves on."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import grpc
import pytest
import redis.asyncio as aioredis

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_core.errors import BackendUnavailable
from hotspot_core.grants import Outcome
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView
from hotspot_server.redis_backend import RedisBackend
from hotspot_server.redis_backend.backend import TICKET_LEASE
from hotspot_server.server import PermitServer
from hotspot_server.settings import Settings
from tests.integration.test_grpc_permits import refused
from tests.redis_server import RedisServer

FAIL_FAST = 0.2
"""The issue's target: every caller is answered within this of an outage."""
LENIENT = 1.0
"""The call timeout of tests that do not test it: a busy 2-core machine delays healthy calls
past the default 0.1 s. A stopped Redis refuses connections at once whatever the timeout."""


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> float:
    """Seconds until `check` holds; fails after `within`."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < within, "never happened"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_redis_stopped_fails_every_caller_fast_then_recovers(
    redis_server: RedisServer,
) -> None:
    backend = RedisBackend(redis_server.url, PermitPolicy(limit=5, window=1), call_timeout=LENIENT)
    try:
        await backend.acquire("f")
        assert backend.unready_reason() is None
        redis_server.stop()
        start = time.monotonic()
        results = await asyncio.gather(
            *(backend.acquire("f") for _ in range(20)), return_exceptions=True
        )
        assert time.monotonic() - start < FAIL_FAST
        assert all(isinstance(r, BackendUnavailable) for r in results), results
        assert {r.reason for r in results if isinstance(r, BackendUnavailable)} == {
            "BACKEND_UNAVAILABLE"
        }
        why = backend.unready_reason()
        assert why is not None
        assert why.startswith("redis unreachable")
        # Still failing fast a while later (the circuit breaker's probes fail at once too).
        await asyncio.sleep(0.7)
        start = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await backend.acquire("f")
        assert time.monotonic() - start < FAIL_FAST

        redis_server.start()  # same port, empty (no persistence)
        # Readiness comes back without any caller: the replica's sweep is the probe.
        await eventually(lambda: _ready(backend), within=2.5)
        grant = await backend.acquire("f")
        assert grant.remaining == 4  # the restarted Redis kept nothing (no AOF)
        assert not await backend.release(grant.permit_id)
    finally:
        await backend.close()


async def _ready(backend: RedisBackend) -> bool:
    return backend.unready_reason() is None


async def test_redis_not_answering_times_out_within_the_call_timeout(
    redis_server: RedisServer,
) -> None:
    backend = RedisBackend(redis_server.url, PermitPolicy())  # the default timeout, 0.1 s
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await eventually(lambda: _acquires(backend), within=2)
        await admin.client_pause(600, all=True)  # Redis stalls every client for 0.6 s
        start = time.monotonic()
        with pytest.raises(BackendUnavailable, match="Timeout"):
            await backend.acquire("f")
        assert time.monotonic() - start < FAIL_FAST + 0.2  # the 0.1 s timeout, on a busy box
        assert backend.unready_reason() is not None
        await asyncio.sleep(0.7)
        await eventually(lambda: _acquires(backend), within=1.5)
        assert backend.unready_reason() is None
    finally:
        await admin.aclose()
        await backend.close()


async def _acquires(backend: RedisBackend) -> bool:
    try:
        await backend.acquire("f")
    except BackendUnavailable:
        return False
    return True


async def test_grpc_answers_unavailable_with_retry_info_and_readyz_says_why(
    redis_server: RedisServer,
) -> None:
    backend = f"{redis_server.url}?timeout={LENIENT}"
    settings = Settings(listen="127.0.0.1:0", backend=backend, http="127.0.0.1:0")
    server = PermitServer(settings)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    stub = permits_pb2_grpc.PermitServiceStub(channel)
    try:
        async with aiohttp.ClientSession() as http:
            readyz = f"{server.http_url}/readyz"
            async with http.get(readyz) as response:
                assert response.status == 200
            await stub.Acquire(pb.AcquireRequest(fixture_id="f"))
            redis_server.stop()
            start = time.monotonic()
            error = await refused(stub.Acquire(pb.AcquireRequest(fixture_id="f")))
            assert time.monotonic() - start < FAIL_FAST + 0.1
            assert (error.code, error.reason) == (
                grpc.StatusCode.UNAVAILABLE,
                "BACKEND_UNAVAILABLE",
            )
            assert error.retry_delay is not None
            assert 0 < error.retry_delay <= 1
            async with http.get(readyz) as response:
                assert response.status == 503
                body = await response.json()
            assert body["reason"].startswith("redis unreachable")
            redis_server.start()

            async def ready() -> bool:
                async with http.get(readyz) as response:
                    return response.status == 200

            await eventually(ready, within=2.5)
            await stub.Acquire(pb.AcquireRequest(fixture_id="f"))
    finally:
        await channel.close(None)
        await server.stop(0)


DEAD_REPLICA = """
import asyncio, sys
from hotspot_core.policy import PermitPolicy
from hotspot_server.redis_backend import RedisBackend

async def main() -> None:
    backend = RedisBackend(sys.argv[1], PermitPolicy(limit=1, window=1), call_timeout=1.0)
    waiter = asyncio.ensure_future(backend.acquire("f"))
    while backend.waiters_here() == 0:
        await asyncio.sleep(0.01)
    print("queued", flush=True)
    await waiter

asyncio.run(main())
"""


async def test_a_killed_replicas_tickets_expire_and_the_queue_moves_on(
    redis_server: RedisServer,
) -> None:
    policy = PermitPolicy(limit=1, window=1)
    live = RedisBackend(redis_server.url, policy, call_timeout=LENIENT)
    replica = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DEAD_REPLICA, redis_server.url, stdout=subprocess.PIPE
    )
    try:
        held = await live.acquire("f")
        assert replica.stdout is not None
        line = await asyncio.wait_for(replica.stdout.readline(), 10)
        assert line == b"queued\n"
        behind = asyncio.ensure_future(live.acquire("f"))
        await eventually(lambda: _depth(live, 2), within=2)
        replica.send_signal(signal.SIGKILL)
        await replica.wait()
        # Its ticket, at the head, is dropped once its lease runs out unrenewed.
        gone_after = await eventually(lambda: _depth(live, 1), within=TICKET_LEASE + 1.5)
        assert gone_after > TICKET_LEASE - 1  # not before its lease could have run out
        start = time.monotonic()
        await live.release(held.permit_id, Outcome.NOT_SENT)  # the slot frees at once
        grant = await asyncio.wait_for(behind, 1)
        assert time.monotonic() - start < 0.5
        assert grant.queue_position == 2
    finally:
        if replica.returncode is None:
            replica.kill()
            await replica.wait()
        await live.close()


async def _depth(backend: RedisBackend, depth: int) -> bool:
    row = (await backend.stats(StatsView(fixture_ids=("f",)))).fixtures[0]
    return row.queue_depth == depth


@pytest.mark.parametrize("refusal", ["NOREPLICAS", "READONLY"])
async def test_a_redis_that_refuses_writes_fails_callers_closed_not_internal(
    redis_server: RedisServer, refusal: str, tmp_path: Path
) -> None:
    """min-replicas-to-write unmet (NOREPLICAS), or a primary demoted to a replica behind the
    replicas' backs (READONLY): Redis answers, but runs no script that writes."""
    target = redis_server
    with contextlib.ExitStack() as stack:
        if refusal == "READONLY":
            target = stack.enter_context(
                RedisServer(tmp_path / "replica", replicaof=redis_server.port)
            )
        backend = RedisBackend(target.url, PermitPolicy(limit=5, window=1), call_timeout=LENIENT)
        try:
            if refusal == "NOREPLICAS":
                await backend.acquire("f")  # fine until the rule is set
                async with aioredis.Redis.from_url(redis_server.url) as admin:
                    await admin.config_set("min-replicas-to-write", 1)
            with pytest.raises(BackendUnavailable) as failed:
                await backend.acquire("f")
            named = "ReadOnlyError" if refusal == "READONLY" else refusal
            assert named in str(failed.value)
            assert failed.value.retry_after > 0
            assert named in (backend.unready_reason() or "")  # the acquire's or the probe's
            await asyncio.sleep(0.6)  # the breaker's pause
            # Reads still work (the sweep's overview): they do not make the replica ready; the
            # sweep's write probe is refused again.
            with pytest.raises(BackendUnavailable):
                await backend.sweep()
            assert named in (backend.unready_reason() or "")
            if refusal == "NOREPLICAS":
                async with aioredis.Redis.from_url(redis_server.url) as admin:
                    await admin.config_set("min-replicas-to-write", 0)
                await asyncio.sleep(0.6)
                await backend.sweep()  # with no traffic at all, its probe makes it ready
                assert backend.unready_reason() is None
                await backend.acquire("f")  # and grants resume
                assert backend.unready_reason() is None
        finally:
            await backend.close()
