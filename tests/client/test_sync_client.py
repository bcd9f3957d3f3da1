"""SyncPermitClient: scripted server behaviour (grpc_testing), then a real server on loopback.

The scripted refusals are the real thing: raised by the server's core and encoded
by the server's own grpc_status_for, then played back through a grpc_testing channel.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc
import grpc_testing  # type: ignore[import-untyped]
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from hotspot.v1 import permits_pb2 as pb
from hotspot_client import (
    InvalidFixtureId,
    PermitPolicy,
    PermitServiceUnavailable,
    RateLimitExceeded,
    SyncPermitClient,
    UnavailableRetry,
)
from hotspot_core import errors as core
from hotspot_core.fixture_id import check_fixture_id
from hotspot_core.memory import MemoryBackend
from hotspot_server.transport.grpc_errors import grpc_status_for
from tests.client.conftest import StartServer
from tests.integration.test_grpc_permits import stats_for

SERVICE = pb.DESCRIPTOR.services_by_name["PermitService"]
ACQUIRE = SERVICE.methods_by_name["Acquire"]
RELEASE = SERVICE.methods_by_name["Release"]
FAST_RETRY = UnavailableRetry(first_delay=0.02, max_delay=0.1, give_up_after=2.0)
ANSWER = 5.0  # seconds a scripted exchange may take before the test calls it stuck


class ScriptedService:
    """A grpc_testing channel: the test takes each RPC the client makes and answers it."""

    def __init__(self) -> None:
        self.channel = grpc_testing.channel(
            pb.DESCRIPTOR.services_by_name.values(), grpc_testing.strict_real_time()
        )
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sync-client")

    def run(self, call: Callable[[], Any]) -> Future[Any]:
        """Start a blocking client call; it waits for the answers the test scripts."""
        return self._pool.submit(call)

    def take(self, method: Any) -> tuple[Any, Any]:
        _, request, rpc = self.channel.take_unary_unary(method)
        return request, rpc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedService, SyncPermitClient]]:
    service = ScriptedService()
    client = SyncPermitClient(channel=service.channel, client_id="sync-test", retry=FAST_RETRY)
    yield service, client
    client.close()
    service.close()


def ok(rpc: Any, response: Any) -> None:
    rpc.terminate(response, (), grpc.StatusCode.OK, "")


def fail(rpc: Any, error: core.PermitError) -> None:
    """Answer as the server does: the core's error through the server's encoder."""
    code, message, trailers = grpc_status_for(error)
    rpc.terminate(None, trailers, code, message)


def granted(permit_id: str = "p-1", fixture_id: str = "F") -> pb.AcquireResponse:
    return pb.AcquireResponse(
        permit_id=permit_id,
        fixture_id=fixture_id,
        granted_at=Timestamp(seconds=1_800_000_000, nanos=500_000_000),
        waited=Duration(nanos=250_000_000),
        queue_position=3,
        remaining=0,
        lease_expires_at=Timestamp(seconds=1_800_000_030, nanos=500_000_000),
    )


async def refusal(policy: PermitPolicy, fixture_ids: list[str], budget: float) -> core.PermitError:
    """The core's own answer to the last of `fixture_ids`, after the others were granted."""
    backend = MemoryBackend(policy)
    try:
        for fixture_id in fixture_ids[:-1]:
            await backend.acquire(fixture_id)
        await backend.acquire(fixture_ids[-1], budget=budget)
    except core.PermitError as error:
        return error
    finally:
        await backend.close()
    raise AssertionError("the core granted what it should refuse")


# -- Responses and requests -------------------------------------------------------------------


def test_acquire_sends_the_request_and_reads_the_grant(
    scripted: tuple[ScriptedService, SyncPermitClient],
) -> None:
    service, client = scripted
    pending = service.run(lambda: client.acquire("F", max_wait=1.5))
    request, rpc = service.take(ACQUIRE)
    assert (request.fixture_id, request.client_id) == ("F", "sync-test")
    assert 1.4 < request.max_wait.ToNanoseconds() / 1e9 <= 1.5
    ok(rpc, granted())
    permit = pending.result(ANSWER)
    assert (permit.permit_id, permit.fixture_id) == ("p-1", "F")
    assert (permit.queue_position, permit.remaining, permit.waited) == (3, 0, 0.25)
    assert permit.granted_at == 1_800_000_000.5
    assert permit.lease_expires_at == 1_800_000_030.5
    assert not permit.local


def test_no_max_wait_leaves_the_field_out(
    scripted: tuple[ScriptedService, SyncPermitClient],
) -> None:
    service, client = scripted
    pending = service.run(lambda: client.acquire("F"))
    request, rpc = service.take(ACQUIRE)
    assert not request.HasField("max_wait")
    ok(rpc, granted())
    pending.result(ANSWER)


def test_the_with_block_releases_with_its_outcome(
    scripted: tuple[ScriptedService, SyncPermitClient],
) -> None:
    service, client = scripted

    def blocks() -> None:
        with client.permit("F"):
            pass
        with pytest.raises(KeyError), client.permit("F"):
            raise KeyError("upstream answered garbage")
        with client.permit("F") as permit:
            permit.mark_upstream_rate_limited(15.0)
        with client.permit("F") as permit:
            permit.mark_not_sent()

    pending = service.run(blocks)
    releases = []
    for n in range(4):
        _, rpc = service.take(ACQUIRE)
        ok(rpc, granted(f"p-{n}"))
        request, rpc = service.take(RELEASE)
        releases.append(
            (request.permit_id, request.outcome, request.upstream_retry_after.ToNanoseconds())
        )
        ok(rpc, pb.ReleaseResponse())
    pending.result(ANSWER)
    assert releases == [
        ("p-0", pb.OUTCOME_SUCCESS, 0),
        ("p-1", pb.OUTCOME_FAILURE, 0),
        ("p-2", pb.OUTCOME_UPSTREAM_RATE_LIMITED, 15_000_000_000),
        ("p-3", pb.OUTCOME_NOT_SENT, 0),
    ]


def test_a_release_that_fails_is_logged_not_raised(
    scripted: tuple[ScriptedService, SyncPermitClient], caplog: pytest.LogCaptureFixture
) -> None:
    service, client = scripted

    def block() -> str:
        with client.permit("F"):
            return "the block's own result"

    pending = service.run(block)
    _, rpc = service.take(ACQUIRE)
    ok(rpc, granted("p-late"))
    _, rpc = service.take(RELEASE)
    fail(rpc, core.PermitNotFound("p-late"))
    assert pending.result(ANSWER) == "the block's own result"
    [record] = [r for r in caplog.records if r.name == "hotspot.client"]
    assert record.levelno == logging.WARNING
    assert "p-late" in record.getMessage()
    assert "lease had ended" in record.getMessage()


# -- Rich errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "fixture_ids", "budget", "reason"),
    [
        (PermitPolicy(limit=1, window=60, queue=0), ["F", "F"], math.inf, "QUEUE_FULL"),
        (PermitPolicy(limit=1, window=60), ["F", "F"], 2.0, "WAIT_TOO_LONG"),
        (PermitPolicy(limit=1, window=60, max_fixtures=1), ["G", "F"], 0, "TOO_MANY_FIXTURES"),
    ],
)
async def test_refusals_are_read_from_the_rich_status_and_never_retried(
    scripted: tuple[ScriptedService, SyncPermitClient],
    policy: PermitPolicy,
    fixture_ids: list[str],
    budget: float,
    reason: str,
) -> None:
    service, client = scripted
    error = await refusal(policy, fixture_ids, budget)
    assert isinstance(error, core.PermitRefused)
    pending = service.run(lambda: client.acquire("F", max_wait=5.0))
    _, rpc = service.take(ACQUIRE)
    fail(rpc, error)
    # Answered after one attempt: a retry would block waiting for a second answer.
    refused = pending.exception(ANSWER)
    assert isinstance(refused, RateLimitExceeded)
    assert refused.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (refused.reason, refused.domain, refused.fixture_id) == (reason, "hotspot.v1", "F")
    assert refused.message == str(error)
    assert refused.retry_after == pytest.approx(error.retry_after, abs=1e-6)
    assert refused.estimated_wait == pytest.approx(error.estimated_wait, abs=0.001)
    assert (refused.queue_depth, refused.limit) == (error.queue_depth, 1)
    assert isinstance(refused.response, grpc.RpcError)


def test_an_invalid_fixture_id_names_the_rule(
    scripted: tuple[ScriptedService, SyncPermitClient],
) -> None:
    service, client = scripted
    with pytest.raises(core.InvalidFixtureId) as raised:
        check_fixture_id("no spaces")
    pending = service.run(lambda: client.acquire("no spaces"))
    _, rpc = service.take(ACQUIRE)
    fail(rpc, raised.value)
    error = pending.exception(ANSWER)
    assert isinstance(error, InvalidFixtureId)
    assert error.field == "fixture_id"
    assert error.violations == [("fixture_id", str(raised.value))]
    assert "1 to 128 characters" in error.message


def test_resource_exhausted_without_hotspot_details_is_the_service_unavailable(
    scripted: tuple[ScriptedService, SyncPermitClient],
) -> None:
    """Not hotspot's refusal (no ErrorInfo of its own): gRPC turned the call away. The caller
    learns the service is busy, with when to come back, never a bare PermitError."""
    service, client = scripted
    pending = service.run(lambda: client.acquire("F"))
    _, rpc = service.take(ACQUIRE)
    rpc.terminate(
        None, (("retry-after", "3"),), grpc.StatusCode.RESOURCE_EXHAUSTED, "message too large"
    )
    error = pending.exception(ANSWER)
    assert isinstance(error, PermitServiceUnavailable)
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.retry_after == 3
    assert "message too large" in error.message


# -- UNAVAILABLE ------------------------------------------------------------------------------


def test_unavailable_is_retried_with_what_is_left_of_max_wait(
    scripted: tuple[ScriptedService, SyncPermitClient],
) -> None:
    service, client = scripted
    pending = service.run(lambda: client.acquire("F", max_wait=1.5))
    first, rpc = service.take(ACQUIRE)
    rpc.terminate(None, (), grpc.StatusCode.UNAVAILABLE, "connection reset")
    second, rpc = service.take(ACQUIRE)
    ok(rpc, granted())
    assert pending.result(ANSWER).permit_id == "p-1"
    assert second.max_wait.ToNanoseconds() < first.max_wait.ToNanoseconds()


def test_shutting_down_is_retried_no_sooner_than_its_retry_info(
    scripted: tuple[ScriptedService, SyncPermitClient],
) -> None:
    service, client = scripted
    pending = service.run(lambda: client.acquire("F", max_wait=1.5))
    _, rpc = service.take(ACQUIRE)
    fail(rpc, core.ShuttingDown(0.3))
    told = time.monotonic()
    _, rpc = service.take(ACQUIRE)
    assert time.monotonic() - told >= 0.29
    ok(rpc, granted())
    assert pending.result(ANSWER).permit_id == "p-1"


def test_shutting_down_past_the_budget_fails_at_once(
    scripted: tuple[ScriptedService, SyncPermitClient],
) -> None:
    service, client = scripted
    pending = service.run(lambda: client.acquire("F", max_wait=1.0))
    _, rpc = service.take(ACQUIRE)
    fail(rpc, core.ShuttingDown(5.0))
    error = pending.exception(ANSWER)
    assert isinstance(error, PermitServiceUnavailable)
    assert (error.reason, error.retry_after) == ("SHUTTING_DOWN", 5.0)
    assert error.message == "the permit service is shutting down"


# -- A real server ----------------------------------------------------------------------------


async def test_the_sync_client_against_a_real_server(start_server: StartServer) -> None:
    h = await start_server(limit=1, window=2, queue=0)

    def use() -> tuple[bool, RateLimitExceeded]:
        with SyncPermitClient(h.target, client_id="sync") as client:
            with (
                client.permit("F", max_wait=0.5) as permit,
                pytest.raises(RateLimitExceeded) as info,
            ):
                client.acquire("F")
            return client.release(permit), info.value

    already, refused = await asyncio.to_thread(use)
    assert already is True  # the block released it first
    assert refused.reason == "QUEUE_FULL"
    row = await stats_for(h, "F")
    assert (row.calls_in_window, row.in_flight, row.rejected_total) == (1, 0, 1)


def test_sync_fail_open_uses_a_local_window_on_its_own_loop(dead_target: str) -> None:
    policy = PermitPolicy(limit=1, window=1)
    with SyncPermitClient(
        dead_target, fail_open=True, fallback_policy=policy, retry=FAST_RETRY
    ) as client:
        with client.permit("F", max_wait=0.2) as permit:
            assert permit.local
            with pytest.raises(RateLimitExceeded) as info:
                client.acquire("F", max_wait=0)
            assert info.value.reason == "WAIT_TOO_LONG"
        assert client.acquire("G", max_wait=0).local
        assert "hotspot-fail-open" in {t.name for t in threading.enumerate()}
    assert "hotspot-fail-open" not in {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match="closed"):
        client.acquire("F")
