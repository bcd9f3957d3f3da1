"""Every permit semantic over real gRPC on loopback, with 1-2 s windows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from hotspot.v1 import permits_pb2 as pb
from tests.integration.conftest import DEPLOYMENTS, Harness, StartServer

# Every test runs on one memory:// server and on three replicas sharing one Redis.
pytestmark = pytest.mark.parametrize("start_server", DEPLOYMENTS, indirect=True)


@dataclass
class RichError:
    code: grpc.StatusCode
    message: str
    retry_delay: float | None
    reason: str | None
    domain: str | None
    metadata: dict[str, str]
    violations: list[tuple[str, str]]
    retry_after_header: str | None


def read_error(error: grpc.aio.AioRpcError) -> RichError:
    """Decode the error the way a client does, with grpc_status.rpc_status.from_call."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no grpc-status-details-bin"
    assert status.code == error.code().value[0]
    retry_delay = reason = domain = None
    metadata: dict[str, str] = {}
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            retry_delay = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            info = error_details_pb2.BadRequest()
            detail.Unpack(info)
            violations = [(v.field, v.description) for v in info.field_violations]
    # grpc.aio metadata iterates as (key, value) pairs; grpc-stubs types it as Metadatum objects.
    pairs = cast("Iterable[tuple[str, str]]", error.trailing_metadata() or ())
    trailers = dict(pairs)
    return RichError(
        error.code(),
        error.details() or "",
        retry_delay,
        reason,
        domain,
        metadata,
        violations,
        trailers.get("retry-after"),
    )


async def next_stats(stream: object) -> pb.StatsResponse:
    message = await stream.read()  # type: ignore[attr-defined]
    assert isinstance(message, pb.StatsResponse), message
    return message


async def refused(call: object) -> RichError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return read_error(info.value)


async def fill(h: Harness, fixture_id: str, n: int) -> list[pb.AcquireResponse]:
    """n permits granted and still in flight: each holds its slot until its release + window."""
    return [await h.stub.Acquire(pb.AcquireRequest(fixture_id=fixture_id)) for _ in range(n)]


async def used(h: Harness, fixture_id: str, n: int) -> list[pb.AcquireResponse]:
    """n calls made and over at once: each leaves the window one window after its grant."""
    grants = await fill(h, fixture_id, n)
    for r in grants:
        await h.stub.Release(pb.ReleaseRequest(permit_id=r.permit_id))
    return grants


async def stats_for(h: Harness, fixture_id: str) -> pb.FixtureStats:
    response = await h.stub.Stats(pb.StatsRequest(fixture_ids=[fixture_id]))
    return response.fixtures[0]


async def wait_for_depth(h: Harness, fixture_id: str, depth: int, within: float = 2.0) -> None:
    """Poll Stats until the fixture's queue holds `depth` waiters."""
    deadline = time.monotonic() + within
    while (await stats_for(h, fixture_id)).queue_depth != depth:
        assert time.monotonic() < deadline, f"queue depth never reached {depth}"
        await asyncio.sleep(0.02)


async def settled_row(h: Harness, fixture_id: str, within: float = 2.0) -> pb.FixtureStats:
    """The fixture's stats once no permit is in flight (a release may still be on its way)."""
    deadline = time.monotonic() + within
    while (row := await stats_for(h, fixture_id)).in_flight:
        assert time.monotonic() < deadline, f"{row.in_flight} permits still in flight"
        await asyncio.sleep(0.01)
    return row


# -- Acquire, window, queue -----------------------------------------------------------------


async def test_grant_carries_its_lease_and_remaining(start_server: StartServer) -> None:
    h = await start_server(limit=5, window=2, lease=7)
    before = time.time()
    r = await h.stub.Acquire(pb.AcquireRequest(fixture_id="f1", client_id="odds-api"))
    assert r.permit_id
    assert r.fixture_id == "f1"
    assert (r.queue_position, r.remaining) == (0, 4)
    assert r.waited.ToTimedelta().total_seconds() == 0
    granted = r.granted_at.ToMicroseconds() / 1e6
    assert before - 0.5 < granted < time.time() + 0.5
    assert r.lease_expires_at.ToMicroseconds() / 1e6 - granted == pytest.approx(7, abs=0.001)


async def test_full_window_queues_then_grants_when_the_oldest_leaves(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=3, window=1)
    await used(h, "f", 3)
    t = time.monotonic()
    r = await h.stub.Acquire(pb.AcquireRequest(fixture_id="f"))
    elapsed = time.monotonic() - t
    assert r.queue_position == 1
    assert 0.8 < elapsed < 1.5
    assert r.waited.ToTimedelta().total_seconds() == pytest.approx(elapsed, abs=0.1)


async def test_waiters_are_served_in_arrival_order(start_server: StartServer) -> None:
    h = await start_server(limit=2, window=1, queue=10)
    await used(h, "f", 2)

    async def wait(i: int) -> float:
        r = await h.stub.Acquire(pb.AcquireRequest(fixture_id="f", client_id=str(i)))
        await h.stub.Release(pb.ReleaseRequest(permit_id=r.permit_id))
        return r.granted_at.ToNanoseconds() / 1e9

    tasks = []
    for i in range(4):
        tasks.append(asyncio.create_task(wait(i)))
        await wait_for_depth(h, "f", i + 1)
    granted_at = await asyncio.gather(*tasks)
    # Granted in arrival order: two grants of one instant may reach callers on two replicas
    # in either order, but no later arrival is granted before an earlier one.
    assert granted_at == sorted(granted_at)
    assert granted_at[2] - granted_at[0] > 0.8  # the last two waited for the first two's slots


async def test_overflow_is_refused_at_once_with_rich_details(start_server: StartServer) -> None:
    h = await start_server(limit=2, window=2, queue=2)
    await used(h, "big-game", 2)

    async def call_over_at_once() -> pb.AcquireResponse:
        granted = await h.stub.Acquire(pb.AcquireRequest(fixture_id="big-game"))
        await h.stub.Release(pb.ReleaseRequest(permit_id=granted.permit_id))
        return granted

    waiters = [asyncio.ensure_future(call_over_at_once()) for _ in range(2)]
    await wait_for_depth(h, "big-game", 2)
    t = time.monotonic()
    error = await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="big-game")))
    assert time.monotonic() - t < 0.5
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (error.reason, error.domain) == ("QUEUE_FULL", "hotspot.v1")
    assert error.metadata["fixture_id"] == "big-game"
    assert error.metadata["queue_depth"] == "2"
    assert error.metadata["limit"] == "2"
    assert error.retry_delay is not None
    assert 1.0 < error.retry_delay <= 2.0  # until the head is granted, when the first grants leave
    # Unbounded, the 3rd in line would wait one more window.
    assert int(error.metadata["estimated_wait_ms"]) / 1000 == pytest.approx(
        error.retry_delay + 2, abs=0.05
    )
    assert error.retry_after_header == "2"

    await asyncio.sleep(error.retry_delay)
    retry = asyncio.ensure_future(h.stub.Acquire(pb.AcquireRequest(fixture_id="big-game")))
    granted = await asyncio.gather(*waiters, retry)  # the retry was admitted and served
    assert granted[-1].queue_position >= 1
    assert (await stats_for(h, "big-game")).rejected_total == 1


# -- Deadlines, max_wait, cancellation ------------------------------------------------------


async def test_deadline_shorter_than_the_wait_is_refused_at_once(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=1, window=2)
    await used(h, "f", 1)
    t = time.monotonic()
    error = await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="f"), timeout=0.5))
    assert time.monotonic() - t < 0.4
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "WAIT_TOO_LONG")
    assert error.retry_delay is not None
    assert 1.0 < error.retry_delay < 1.6
    assert (await stats_for(h, "f")).queue_depth == 0


async def test_zero_max_wait_never_queues(start_server: StartServer) -> None:
    h = await start_server(limit=1, window=2)
    await used(h, "f", 1)
    request = pb.AcquireRequest(fixture_id="f", max_wait=Duration(seconds=0))
    error = await refused(h.stub.Acquire(request))
    assert error.reason == "WAIT_TOO_LONG"
    assert "longer than it can wait (0.000s)" in error.message


async def test_max_wait_long_enough_is_served(start_server: StartServer) -> None:
    h = await start_server(limit=1, window=1)
    await used(h, "f", 1)
    request = pb.AcquireRequest(fixture_id="f", max_wait=Duration(seconds=2))
    r = await h.stub.Acquire(request, timeout=3)
    assert r.queue_position == 1


async def test_cancelled_call_leaves_the_queue_at_once(start_server: StartServer) -> None:
    h = await start_server(limit=1, window=1.5, queue=5)
    await used(h, "f", 1)
    first = h.stub.Acquire(pb.AcquireRequest(fixture_id="f"))
    await wait_for_depth(h, "f", 1)
    second = asyncio.ensure_future(h.stub.Acquire(pb.AcquireRequest(fixture_id="f")))
    await wait_for_depth(h, "f", 2)
    first.cancel()
    await wait_for_depth(h, "f", 1, within=0.5)
    r = await second
    assert r.queue_position == 2  # it got the slot the cancelled caller would have had
    stats = await stats_for(h, "f")
    assert (stats.calls_total, stats.calls_in_window) == (2, 1)


async def test_pause_answers_waiters_it_pushes_past_their_deadline(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=1, window=1, queue=5, max_upstream_pause=10)
    await used(h, "other", 1)  # calls seen so far are over at once: the holder is expected back
    (held,) = await fill(h, "f", 1)
    waiter = h.stub.Acquire(pb.AcquireRequest(fixture_id="f"), timeout=1.5)
    await wait_for_depth(h, "f", 1)
    await h.stub.Release(
        pb.ReleaseRequest(
            permit_id=held.permit_id,
            outcome=pb.OUTCOME_UPSTREAM_RATE_LIMITED,
            upstream_retry_after=Duration(seconds=5),
        )
    )
    t = time.monotonic()
    error = await refused(waiter)
    assert time.monotonic() - t < 0.5
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "WAIT_TOO_LONG")
    assert "paused_for_ms" in error.metadata
    assert (await stats_for(h, "f")).rejected_total == 1


# -- Release, refunds, pauses, leases -------------------------------------------------------


async def test_not_sent_refunds_and_wakes_the_next_waiter(start_server: StartServer) -> None:
    h = await start_server(limit=1, window=30, queue=5)
    (held,) = await fill(h, "f", 1)
    waiter = asyncio.ensure_future(h.stub.Acquire(pb.AcquireRequest(fixture_id="f")))
    await wait_for_depth(h, "f", 1)
    t = time.monotonic()
    await h.stub.Release(pb.ReleaseRequest(permit_id=held.permit_id, outcome=pb.OUTCOME_NOT_SENT))
    r = await waiter
    assert time.monotonic() - t < 0.5
    assert r.queue_position == 1


async def test_upstream_rate_limited_pauses_the_fixture(start_server: StartServer) -> None:
    h = await start_server(limit=5, window=30)
    (held,) = await fill(h, "f", 1)
    before = time.time()
    await h.stub.Release(
        pb.ReleaseRequest(
            permit_id=held.permit_id,
            outcome=pb.OUTCOME_UPSTREAM_RATE_LIMITED,
            upstream_retry_after=Duration(seconds=1),
        )
    )
    stats = await stats_for(h, "f")
    assert stats.HasField("paused_until")
    assert stats.paused_until.ToMicroseconds() / 1e6 == pytest.approx(before + 1, abs=0.3)
    error = await refused(
        h.stub.Acquire(pb.AcquireRequest(fixture_id="f", max_wait=Duration(seconds=0)))
    )
    assert error.reason == "WAIT_TOO_LONG"
    assert 700 < int(error.metadata["paused_for_ms"]) <= 1000
    t = time.monotonic()
    await h.stub.Acquire(pb.AcquireRequest(fixture_id="f"))
    assert 0.6 < time.monotonic() - t < 1.5


async def test_release_twice_unknown_and_bad_outcome(start_server: StartServer) -> None:
    h = await start_server()
    (r,) = await fill(h, "f", 1)
    first = await h.stub.Release(pb.ReleaseRequest(permit_id=r.permit_id))
    second = await h.stub.Release(pb.ReleaseRequest(permit_id=r.permit_id))
    assert (first.already_released, second.already_released) == (False, True)

    error = await refused(h.stub.Release(pb.ReleaseRequest(permit_id="no-such-permit")))
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "PERMIT_NOT_FOUND")
    assert error.metadata == {"permit_id": "no-such-permit"}

    (r2,) = await fill(h, "f", 1)
    error = await refused(h.stub.Release(pb.ReleaseRequest(permit_id=r2.permit_id, outcome=99)))  # type: ignore[arg-type]
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.violations[0][0] == "outcome"
    assert "OUTCOME_NOT_SENT" in error.message
    # The bad request lost nothing: the permit is still held and can be released.
    assert (await stats_for(h, "f")).in_flight == 1
    assert not (await h.stub.Release(pb.ReleaseRequest(permit_id=r2.permit_id))).already_released


async def test_expired_lease_is_abandoned_then_not_found(start_server: StartServer) -> None:
    h = await start_server(lease=0.3, window=2)
    (r,) = await fill(h, "f", 1)
    await asyncio.sleep(0.5)
    stats = await stats_for(h, "f")
    assert (stats.in_flight, stats.abandoned_total) == (0, 1)
    error = await refused(h.stub.Release(pb.ReleaseRequest(permit_id=r.permit_id)))
    assert error.code is grpc.StatusCode.NOT_FOUND


# -- Input and memory -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "semi;colon"])
async def test_bad_fixture_id_names_the_rule(start_server: StartServer, bad: str) -> None:
    h = await start_server()
    error = await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id=bad)))
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "1 to 128 characters of [A-Za-z0-9._:-]" in error.message
    assert error.violations[0][0] == "fixture_id"
    assert error.reason == "INVALID_FIXTURE_ID"


async def test_negative_max_wait_is_invalid(start_server: StartServer) -> None:
    h = await start_server()
    error = await refused(
        h.stub.Acquire(pb.AcquireRequest(fixture_id="f", max_wait=Duration(seconds=-1)))
    )
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.violations[0][0] == "max_wait"


async def test_too_many_fixtures(start_server: StartServer) -> None:
    h = await start_server(max_fixtures=2)
    await used(h, "a", 1)
    await used(h, "b", 1)
    error = await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="c")))
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_FIXTURES")
    assert error.retry_delay is not None


async def test_idle_fixtures_are_forgotten(start_server: StartServer) -> None:
    h = await start_server(window=0.5)
    for r in await fill(h, "f", 3):
        await h.stub.Release(pb.ReleaseRequest(permit_id=r.permit_id))
    assert (await h.stub.Stats(pb.StatsRequest())).totals.fixtures_tracked == 1
    await asyncio.sleep(0.7)
    assert (await h.stub.Stats(pb.StatsRequest())).totals.fixtures_tracked == 0


# -- Stats and WatchStats -------------------------------------------------------------------


async def test_stats_rank_hottest_first(start_server: StartServer) -> None:
    h = await start_server(limit=10, window=30)
    for fixture_id, n in [("warm", 3), ("hot", 9), ("cool", 1)]:
        await used(h, fixture_id, n)
    top = await h.stub.Stats(pb.StatsRequest(top_n=2))
    assert [f.fixture_id for f in top.fixtures] == ["hot", "warm"]
    hot = top.fixtures[0]
    assert (hot.calls_in_window, hot.limit, hot.queue_capacity) == (9, 10, 100)
    assert hot.utilization == pytest.approx(0.9)
    assert hot.hot
    assert hot.window.seconds == 30
    assert [a.fixture_id for a in top.alerts] == ["hot"]
    assert top.alerts[0].state == pb.ALERT_STATE_RAISED
    assert (top.alerts[0].threshold, top.alerts[0].clear_below) == (8, 7)
    assert top.totals.fixtures_tracked == 3
    assert top.totals.calls_total == 13
    everyone = await h.stub.Stats(pb.StatsRequest())
    assert len(everyone.fixtures) == 3


async def test_stats_rejects_bad_requests(start_server: StartServer) -> None:
    h = await start_server()
    error = await refused(h.stub.Stats(pb.StatsRequest(top_n=5000)))
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "top_n must be at most 1000" in error.message
    error = await refused(h.stub.Stats(pb.StatsRequest(fixture_ids=["ok", "not ok"])))
    assert error.violations[0][0] == "fixture_id"


async def test_watch_stats_streams_at_the_interval_with_alert_events(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=5, window=30)
    stream = h.stub.WatchStats(pb.WatchStatsRequest(interval=Duration(nanos=200_000_000)))
    t = time.monotonic()
    first = await next_stats(stream)
    assert time.monotonic() - t < 0.3  # the first message comes at once
    assert list(first.fixtures) == []
    await used(h, "f", 4)  # 4 of 5 is 80 %: raised
    received = [await next_stats(stream) for _ in range(3)]
    elapsed = time.monotonic() - t
    assert 0.5 < elapsed < 1.2  # three more at 200 ms each
    events = [e for m in received for e in m.alert_events]
    assert [(e.fixture_id, e.state, e.calls_in_window) for e in events] == [
        ("f", pb.ALERT_STATE_RAISED, 4)
    ]
    assert received[-1].fixtures[0].calls_in_window == 4
    stream.cancel()


async def test_watch_stats_interval_under_100ms_is_invalid(start_server: StartServer) -> None:
    h = await start_server()
    stream = h.stub.WatchStats(pb.WatchStatsRequest(interval=Duration(nanos=50_000_000)))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stream.read()
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "at least 100 ms" in (info.value.details() or "")


async def test_subscriber_that_stops_reading_delays_no_one(start_server: StartServer) -> None:
    h = await start_server(limit=1000, window=30)
    interval = Duration(nanos=100_000_000)
    # The stalled subscriber asks for a large snapshot so that its unread messages
    # fill the HTTP/2 flow-control window quickly.
    stalled = h.stub.WatchStats(pb.WatchStatsRequest(interval=interval, top_n=1000))
    await stalled.read()
    for i in range(300):
        await h.stub.Acquire(pb.AcquireRequest(fixture_id=f"fixture-{i:04d}-" + "x" * 100))
    active = h.stub.WatchStats(pb.WatchStatsRequest(interval=interval))
    t = time.monotonic()
    for _ in range(15):
        await active.read()
    assert time.monotonic() - t < 2.5  # ~1.5 s of ticks, however far behind `stalled` is
    t = time.monotonic()
    await h.stub.Acquire(pb.AcquireRequest(fixture_id="after"))
    assert time.monotonic() - t < 0.5
    stalled.cancel()
    active.cancel()


# -- Health, reflection, shutdown -----------------------------------------------------------


async def test_health_and_reflection(start_server: StartServer) -> None:
    h = await start_server()
    health = health_pb2_grpc.HealthStub(h.channel)
    for service in ("", "hotspot.v1.PermitService"):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(h.channel)
    call = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    services = {s.name async for r in call for s in r.list_services_response.service}
    assert {"hotspot.v1.PermitService", "grpc.health.v1.Health"} <= services


async def test_shutdown_answers_waiters_unavailable_and_turns_health_not_serving(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=1, window=30, grace=2)
    await used(h, "f", 1)
    health = health_pb2_grpc.HealthStub(h.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service="hotspot.v1.PermitService"))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    waiter = h.stub.Acquire(pb.AcquireRequest(fixture_id="f"))
    await wait_for_depth(h, "f", 1)
    stopping = asyncio.ensure_future(h.stop())
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
    error = await refused(waiter)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.reason == "SHUTTING_DOWN"
    assert error.retry_delay is not None
    assert error.retry_delay > 0
    # During the drain a newcomer gets hotspot's own answer, not a cut connection.
    newcomer = await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="g")))
    assert (newcomer.code, newcomer.reason) == (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")
    assert newcomer.retry_after_header == "1"
    t = time.monotonic()
    await stopping
    assert time.monotonic() - t < 2.5


async def test_a_permit_can_be_released_by_the_request_id_it_was_granted_to(
    start_server: StartServer,
) -> None:
    h = await start_server(limit=2, window=30)
    granted = await h.stub.Acquire(pb.AcquireRequest(fixture_id="f", request_id="req-1"))
    r = await h.stub.Release(pb.ReleaseRequest(request_id="req-1", outcome=pb.OUTCOME_NOT_SENT))
    assert not r.already_released
    assert (await stats_for(h, "f")).calls_in_window == 0
    again = await h.stub.Release(pb.ReleaseRequest(permit_id=granted.permit_id))
    assert again.already_released
    both = await refused(
        h.stub.Release(pb.ReleaseRequest(permit_id=granted.permit_id, request_id="req-1"))
    )
    assert both.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "not both" in both.message
    unknown = await refused(h.stub.Release(pb.ReleaseRequest(request_id="never-sent")))
    assert unknown.code is grpc.StatusCode.NOT_FOUND
    bad = await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="f", request_id="a b")))
    assert bad.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id must be 1 to 64 characters" in bad.message


@pytest.mark.parametrize(
    ("duration", "rule"),
    [
        (Duration(seconds=0, nanos=2_000_000_000), "nanos in [0, 999999999]"),
        (Duration(seconds=-1), "non-negative"),
        (Duration(seconds=1, nanos=-5), "non-negative"),
        (Duration(seconds=2**62), "at most 86400s"),
    ],
)
async def test_every_duration_is_checked_at_the_edge(
    start_server: StartServer, duration: Duration, rule: str
) -> None:
    h = await start_server()
    acquire = await refused(h.stub.Acquire(pb.AcquireRequest(fixture_id="f", max_wait=duration)))
    assert acquire.code is grpc.StatusCode.INVALID_ARGUMENT
    assert rule in acquire.message
    assert acquire.message.startswith("max_wait")
    granted = await h.stub.Acquire(pb.AcquireRequest(fixture_id="f"))
    release = await refused(
        h.stub.Release(
            pb.ReleaseRequest(
                permit_id=granted.permit_id,
                outcome=pb.OUTCOME_UPSTREAM_RATE_LIMITED,
                upstream_retry_after=duration,
            )
        )
    )
    assert release.code is grpc.StatusCode.INVALID_ARGUMENT
    assert release.message.startswith("upstream_retry_after")
    assert (await stats_for(h, "f")).in_flight == 1  # nothing was released by the bad request


async def test_an_overlong_permit_id_is_refused_before_any_lookup_and_never_echoed_whole(
    start_server: StartServer,
) -> None:
    h = await start_server()
    error = await refused(h.stub.Release(pb.ReleaseRequest(permit_id="x" * 4_000_000)))
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "permit_id must be at most 64 characters" in error.message
    assert len(error.message) < 200
    unknown = await refused(h.stub.Release(pb.ReleaseRequest(permit_id="y" * 64)))
    assert unknown.code is grpc.StatusCode.NOT_FOUND


async def test_a_warmers_grant_marks_its_fixture_as_warming_for_a_window(
    start_server: StartServer,
) -> None:
    from hotspot_client import PermitClient

    h = await start_server(limit=5, window=1)
    async with PermitClient(h.target, warming=True) as warmer:
        await warmer.release(await warmer.acquire("major"))
    await h.stub.Release(
        pb.ReleaseRequest(
            permit_id=(await h.stub.Acquire(pb.AcquireRequest(fixture_id="regular"))).permit_id
        )
    )
    assert (await stats_for(h, "major")).warming
    assert not (await stats_for(h, "regular")).warming
    await asyncio.sleep(1.05)
    assert not (await stats_for(h, "major")).warming


async def test_announced_warmings_show_on_every_replica_until_withdrawn_or_lapsed(
    start_server: StartServer,
) -> None:
    from hotspot_client import PermitClient
    from hotspot_client.errors import PermitError
    from hotspot_core.warming_board import MAX_ANNOUNCERS_PER_CALLER, ScheduledWarming

    h = await start_server()
    now = time.time()
    soon = ScheduledWarming("sb-60", "super-bowl", now + 600, now + 1500, now + 16_000)
    running = ScheduledWarming("cl-final", "cl-final", now - 60, now + 840, now + 9000)
    async with PermitClient(h.target) as warmer:
        expires = await warmer.announce_warmings([soon, running], announcer="w1", ttl=60)
        assert now + 59 < expires < time.time() + 61
        for _ in h.replicas:  # the channel takes each replica in turn: each shows the board
            listed = (await h.stub.Stats(pb.StatsRequest())).scheduled_warmings
            assert [(w.fixture_id, w.rule) for w in listed] == [
                ("cl-final", "cl-final"),
                ("sb-60", "super-bowl"),
            ]
            assert abs(listed[1].starts_at.ToMicroseconds() / 1e6 - soon.starts_at) < 1e-3

        with pytest.raises(PermitError) as refused:
            await warmer.announce_warmings([soon, soon], announcer="w1")
        assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert "each fixture once" in str(refused.value)
        for i in range(1, MAX_ANNOUNCERS_PER_CALLER):
            await warmer.announce_warmings([soon], announcer=f"w{i + 1}", ttl=1)
        with pytest.raises(PermitError) as refused:
            await warmer.announce_warmings([soon], announcer="one-too-many")
        assert refused.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 4 warming announcements" in str(refused.value)

        await warmer.announce_warmings([soon], announcer="w1", ttl=1)  # cl-final withdrawn
        listed = (await h.stub.Stats(pb.StatsRequest())).scheduled_warmings
        assert [w.fixture_id for w in listed] == ["sb-60"]
        await asyncio.sleep(1.05)
        assert not (await h.stub.Stats(pb.StatsRequest())).scheduled_warmings  # all lapsed
