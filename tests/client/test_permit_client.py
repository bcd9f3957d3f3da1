"""PermitClient against a real permit server on loopback (1-2 s windows)."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import pytest

from hotspot.v1 import permits_pb2 as pb
from hotspot_client import (
    InvalidArgument,
    InvalidFixtureId,
    Outcome,
    Permit,
    PermitClient,
    PermitError,
    PermitNotFound,
    PermitPolicy,
    PermitServiceUnavailable,
    RateLimitExceeded,
    UnavailableRetry,
)
from hotspot_client.channel_options import CHANNEL_OPTIONS
from hotspot_server.server import SERVER_OPTIONS, PermitServer
from hotspot_server.settings import Settings
from tests.client.conftest import StartServer, recorded_client
from tests.integration.test_grpc_permits import settled_row, stats_for, wait_for_depth

FAST_RETRY = UnavailableRetry(first_delay=0.05, max_delay=0.2)


# -- Permits and outcomes -------------------------------------------------------------------


async def test_acquire_and_release_read_the_grant(start_server: StartServer) -> None:
    h = await start_server(limit=3, window=2, lease=7)
    async with PermitClient(h.target, client_id="odds-gateway") as client:
        before = time.time()
        permit = await client.acquire("f1", max_wait=1.0)
        assert permit.fixture_id == "f1"
        assert permit.permit_id
        assert (permit.queue_position, permit.remaining, permit.waited) == (0, 2, 0.0)
        assert not permit.local
        assert before - 0.5 < permit.granted_at < time.time() + 0.5
        assert permit.lease_expires_at - permit.granted_at == pytest.approx(7, abs=0.001)
        assert (await stats_for(h, "f1")).in_flight == 1
        assert await client.release(permit) is False
        assert await client.release(permit) is True  # already released: nothing changes
        row = await stats_for(h, "f1")
        assert (row.in_flight, row.calls_in_window) == (0, 1)


async def test_permit_block_releases_with_the_outcome_of_the_block(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=10, window=2)
    client, recorder = recorded_client(h.target)
    async with client:
        async with client.permit("f") as permit:
            assert (await stats_for(h, "f")).in_flight == 1
        with pytest.raises(RuntimeError, match="upstream broke"):
            async with client.permit("f"):
                raise RuntimeError("upstream broke")
        async with client.permit("f") as permit:
            permit.mark_not_sent()
        async with client.permit("f") as permit:
            permit.mark_upstream_rate_limited(1.5)
    outcomes = [
        (r.outcome, r.upstream_retry_after.ToNanoseconds()) for r in recorder.requests("Release")
    ]
    assert outcomes == [
        (pb.OUTCOME_SUCCESS, 0),
        (pb.OUTCOME_FAILURE, 0),
        (pb.OUTCOME_NOT_SENT, 0),
        (pb.OUTCOME_UPSTREAM_RATE_LIMITED, 1_500_000_000),
    ]
    row = await stats_for(h, "f")
    assert row.in_flight == 0
    assert row.calls_in_window == 3  # the NOT_SENT grant was refunded
    assert row.HasField("paused_until")
    assert row.paused_until.ToMicroseconds() / 1e6 == pytest.approx(time.time() + 1.5, abs=0.5)


async def test_a_marked_outcome_wins_over_an_exception(start_server: StartServer) -> None:
    h = await start_server(limit=10, window=2)
    client, recorder = recorded_client(h.target)

    async def refuse_before_sending() -> None:
        async with client.permit("f") as permit:
            permit.mark_not_sent()
            raise LookupError("refused before sending")

    async with client:
        with pytest.raises(LookupError):
            await refuse_before_sending()
    [release] = recorder.requests("Release")
    assert release.outcome == pb.OUTCOME_NOT_SENT
    assert (await stats_for(h, "f")).calls_in_window == 0


async def test_a_full_window_queues_the_caller_in_order(start_server: StartServer) -> None:
    h = await start_server(limit=1, window=0.5)
    async with PermitClient(h.target) as client:
        await client.release(await client.acquire("f"))  # over at once
        permit = await client.acquire("f", max_wait=2.0)
    assert permit.queue_position == 1
    assert 0.3 < permit.waited < 1.5


async def test_release_arguments_are_checked_before_sending(start_server: StartServer) -> None:
    h = await start_server(limit=10, window=2)
    async with PermitClient(h.target) as client:
        permit = await client.acquire("f")
        with pytest.raises(ValueError, match=r"only with Outcome\.UPSTREAM_RATE_LIMITED"):
            await client.release(permit, Outcome.SUCCESS, upstream_retry_after=3.0)
        with pytest.raises(ValueError, match="0 or more seconds"):
            permit.mark_upstream_rate_limited(-1)
        # An upstream asking for more than the service's one-hour cap is held to the cap.
        permit.mark_upstream_rate_limited(7200)
        assert permit.upstream_retry_after == 3600
        assert (await stats_for(h, "f")).in_flight == 1  # nothing was released on the way


# -- Errors, read from rich statuses ----------------------------------------------------------


async def test_queue_full_is_a_rate_limit_error_and_is_not_retried(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=1, window=2, queue=0)
    client, recorder = recorded_client(h.target, retry=FAST_RETRY)
    async with client:
        await client.release(await client.acquire("big-game"))  # over at once
        with pytest.raises(RateLimitExceeded) as info:
            await client.acquire("big-game", max_wait=5.0)
    error = info.value
    assert isinstance(error, PermitError)
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (error.reason, error.domain, error.fixture_id) == (
        "QUEUE_FULL",
        "hotspot.v1",
        "big-game",
    )
    assert 1.5 < error.retry_after <= 2.0
    assert error.estimated_wait == pytest.approx(error.retry_after, abs=0.01)
    assert (error.queue_depth, error.limit) == (0, 1)
    assert "queue of 0 is full" in error.message
    assert recorder.attempts("Acquire") == 2  # one each: RESOURCE_EXHAUSTED is never retried


async def test_a_wait_beyond_max_wait_is_refused_as_wait_too_long(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=1, window=2)
    async with PermitClient(h.target) as client:
        await client.release(await client.acquire("f"))  # over at once
        with pytest.raises(RateLimitExceeded) as info:
            await client.acquire("f", max_wait=0.5)
    error = info.value
    assert error.reason == "WAIT_TOO_LONG"
    assert error.estimated_wait is not None
    assert 1.5 < error.estimated_wait <= 2.0
    assert error.retry_after == pytest.approx(error.estimated_wait - 0.5, abs=0.05)
    assert (await stats_for(h, "f")).queue_depth == 0


async def test_too_many_fixtures_is_a_rate_limit_error(start_server: StartServer) -> None:
    h = await start_server(limit=5, window=1, max_fixtures=1)
    async with PermitClient(h.target) as client:
        await client.acquire("first")
        with pytest.raises(RateLimitExceeded) as info:
            await client.acquire("second")
    assert (info.value.reason, info.value.fixture_id) == ("TOO_MANY_FIXTURES", "second")
    assert info.value.retry_after == pytest.approx(1.0)


async def test_a_broken_fixture_id_is_invalid_fixture_id(start_server: StartServer) -> None:
    h = await start_server()
    async with PermitClient(h.target) as client:
        with pytest.raises(InvalidFixtureId) as info:
            await client.acquire("no spaces allowed")
    error = info.value
    assert isinstance(error, InvalidArgument)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.field == "fixture_id"
    assert "1 to 128 characters of [A-Za-z0-9._:-]" in error.message
    assert error.violations[0][0] == "fixture_id"


async def test_releasing_an_unknown_permit_is_permit_not_found(start_server: StartServer) -> None:
    h = await start_server()
    ghost = Permit("feedface-1", "f", 0, 0, 0.0, 0.0, 0.0)
    async with PermitClient(h.target) as client:
        with pytest.raises(PermitNotFound) as info:
            await client.release(ghost)
    assert info.value.permit_id == "feedface-1"


async def test_shutting_down_is_unavailable_with_its_retry_delay(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=1, window=2)
    # No retrying, so the error read is the server's own SHUTTING_DOWN answer.
    no_retry = UnavailableRetry(give_up_after=0)
    async with PermitClient(h.target, retry=no_retry) as client:
        await client.acquire("f")
        waiter = asyncio.create_task(client.acquire("f", max_wait=3.0))
        await wait_for_depth(h, "f", 1)
        await h.server.stop(0.5)
        with pytest.raises(PermitServiceUnavailable) as info:
            await waiter
    error = info.value
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")
    assert error.retry_after == 1.0


# -- UNAVAILABLE: retried within the budget ---------------------------------------------------


async def test_unreachable_service_is_retried_within_max_wait_then_fails_closed(
    dead_target: str,
) -> None:
    client, recorder = recorded_client(dead_target, retry=FAST_RETRY)
    async with client:
        t = time.monotonic()
        with pytest.raises(PermitServiceUnavailable) as info:
            await client.acquire("f", max_wait=0.6)
        assert time.monotonic() - t < 0.6 + 0.5  # gave up within the caller's budget
        assert info.value.code is grpc.StatusCode.UNAVAILABLE
        assert recorder.attempts("Acquire") > 2
        # The outage is known now: the next call tries once and fails at once.
        with pytest.raises(PermitServiceUnavailable):
            await client.acquire("f", max_wait=0.6)
        attempts = recorder.attempts("Acquire")
        with pytest.raises(PermitServiceUnavailable):
            await client.acquire("f", max_wait=0.6)
        assert recorder.attempts("Acquire") == attempts + 1


async def test_a_service_that_comes_up_within_the_budget_grants(dead_target: str) -> None:
    server = PermitServer(Settings(listen=dead_target, policy=PermitPolicy(limit=5, window=1)))

    async def start_later() -> None:
        await asyncio.sleep(0.5)
        await server.start()

    client, recorder = recorded_client(dead_target, retry=FAST_RETRY)
    starting = asyncio.create_task(start_later())
    try:
        async with client:
            permit = await client.acquire("f", max_wait=4.0)
            assert not permit.local
            assert recorder.attempts("Acquire") > 1
            assert await client.release(permit) is False
    finally:
        await starting
        await server.stop(0)


# -- Fail-open --------------------------------------------------------------------------------


async def test_fail_open_takes_permits_from_a_local_window_at_the_same_limit(
    dead_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hotspot.client")
    policy = PermitPolicy(limit=2, window=1)
    async with PermitClient(
        dead_target, fail_open=True, fallback_policy=policy, retry=FAST_RETRY
    ) as client:
        first = await client.acquire("f", max_wait=0.3)
        async with client.permit("f", max_wait=0.3) as second:
            assert (first.local, second.local) == (True, True)
            assert (first.remaining, second.remaining) == (1, 0)
        with pytest.raises(RateLimitExceeded) as info:
            await client.acquire("f", max_wait=0)
        assert (info.value.reason, info.value.fixture_id) == ("WAIT_TOO_LONG", "f")
        assert 0.5 < info.value.retry_after <= 1.0
        # A local permit released as NOT_SENT goes back to the local window.
        assert await client.release(first, Outcome.NOT_SENT) is False
        third = await client.acquire("f", max_wait=0)
        assert third.local
        other = await client.acquire("g", max_wait=0)
        assert other.local
    fail_open = [r for r in caplog.records if "failing open" in r.getMessage()]
    assert [r.fixture_id for r in fail_open] == ["f", "g"]  # type: ignore[attr-defined]
    assert all(r.levelno == logging.WARNING for r in fail_open)
    assert "in-process window of 2 per 1s" in fail_open[0].getMessage()


async def test_fail_open_returns_to_the_service_when_it_answers_again(dead_target: str) -> None:
    server = PermitServer(Settings(listen=dead_target, policy=PermitPolicy(limit=5, window=1)))
    async with PermitClient(dead_target, fail_open=True, retry=FAST_RETRY) as client:
        assert (await client.acquire("f", max_wait=0.2)).local
        await server.start()
        try:
            deadline = time.monotonic() + 5
            while (permit := await client.acquire("f", max_wait=0.2)).local:
                assert time.monotonic() < deadline, "the client never went back to the service"
                await asyncio.sleep(0.1)
            assert await client.release(permit) is False  # the service knew the permit
        finally:
            await server.stop(0)


async def test_fail_closed_is_the_default(dead_target: str) -> None:
    async with PermitClient(dead_target, retry=FAST_RETRY) as client:
        assert client.fail_open is False
        with pytest.raises(PermitServiceUnavailable):
            await client.acquire("f", max_wait=0.2)


# -- Channel and lifecycle --------------------------------------------------------------------


async def test_a_given_channel_stays_open_and_a_closed_client_says_so(
    start_server: StartServer,
) -> None:
    h = await start_server()
    async with PermitClient(channel=h.channel) as client:
        permit = await client.acquire("f")
    with pytest.raises(RuntimeError, match="closed"):
        await client.acquire("f")
    with pytest.raises(RuntimeError, match="closed"):
        await client.release(permit)
    # The channel belongs to the caller and still works.
    await h.stub.Release(pb.ReleaseRequest(permit_id=permit.permit_id))


def test_a_client_needs_a_target_or_a_channel() -> None:
    with pytest.raises(ValueError, match="either the permit service's target"):
        PermitClient()
    with pytest.raises(ValueError, match="not both"):
        PermitClient("127.0.0.1:1", channel=object())  # type: ignore[arg-type]


def test_keepalive_pings_no_faster_than_the_server_accepts() -> None:
    ours = dict(CHANNEL_OPTIONS)
    server = dict(SERVER_OPTIONS)
    keepalive = ours["grpc.keepalive_time_ms"]
    assert isinstance(keepalive, int)
    assert keepalive >= server["grpc.http2.min_recv_ping_interval_without_data_ms"]
    # Pings on an idle channel are sent only because the server permits them.
    assert (
        ours["grpc.keepalive_permit_without_calls"] == server["grpc.keepalive_permit_without_calls"]
    )


# -- No grant holds a slot for nothing ----------------------------------------------------------


async def test_a_grant_whose_caller_left_while_it_was_on_the_way_is_given_back(
    start_server: StartServer,
) -> None:
    """The service grants a queued caller in the instant the caller gives up: the grant is
    released NOT_SENT at once, so it does not hold its slot until its lease ends."""
    h = await start_server(limit=1, window=30, queue=5, lease=60)
    cancelled = 0
    async with PermitClient(h.target) as client:
        for _ in range(8):
            holder = await h.stub.Acquire(pb.AcquireRequest(fixture_id="f"))
            waiter = asyncio.create_task(client.acquire("f"))
            await wait_for_depth(h, "f", 1)
            # Refunding the holder grants the waiter: its answer is on the wire now...
            await h.stub.Release(
                pb.ReleaseRequest(permit_id=holder.permit_id, outcome=pb.OUTCOME_NOT_SENT)
            )
            waiter.cancel()  # ...and its caller leaves
            try:
                permit = await waiter
            except asyncio.CancelledError:
                cancelled += 1
            else:
                await client.release(permit, Outcome.NOT_SENT)
            assert (await settled_row(h, "f")).calls_in_window == 0
    assert cancelled, "the race never happened: every waiter saw its grant before the cancel"


async def test_a_cancelled_permit_block_still_releases(start_server: StartServer) -> None:
    h = await start_server(limit=5, window=30)
    async with PermitClient(h.target) as client:
        entered = asyncio.Event()

        async def call() -> None:
            async with client.permit("f"):
                entered.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(call())
        await entered.wait()
        task.cancel()
        task.cancel()  # twice: the release must not be cut short by a second cancellation
        with pytest.raises(asyncio.CancelledError):
            await task
        row = await settled_row(h, "f")
    assert row.calls_in_window == 1  # released as FAILURE: its call may have been sent
