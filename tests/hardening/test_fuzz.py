"""Fuzzing a real server process: arbitrary well-formed messages (any strings, durations, enum
values) and raw bytes that are not messages at all. hotspot answers every one with a status it
chose (INVALID_ARGUMENT naming the rule, NOT_FOUND, a refusal...), never INTERNAL or UNKNOWN
except for bytes that do not decode; it stays healthy and its memory stays bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from tests.hardening.test_burst import rss_bytes
from tests.integration.test_process import ServerProcess

pytestmark = pytest.mark.slow

# The server's own answers; INTERNAL and UNKNOWN would mean it lost control of a request.
CHOSEN = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,  # a queued request whose call gave up first
    grpc.StatusCode.UNAVAILABLE,
}

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="abc:-._0123\n\r\x00\u2028", max_size=200),
    st.sampled_from(["", "x" * 129, "x" * 10_000, "f\nCRITICAL forged", "é", "a b"]),
)
durations = st.builds(
    Duration,
    seconds=st.one_of(st.integers(-5, 5), st.integers(-(2**62), 2**62)),
    nanos=st.one_of(st.integers(-5, 5), st.integers(-(2**31), 2**31 - 1)),
)
outcomes = st.one_of(st.sampled_from(list(pb.Outcome.values())), st.integers(-5, 2**31 - 1))


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess("--limit", "3", "--window", "1s", "--queue", "5", "--max-wait", "1s")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def stub(server: ServerProcess) -> Iterator[permits_pb2_grpc.PermitServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield permits_pb2_grpc.PermitServiceStub(channel)


def answered(call: Callable[[], object]) -> None:
    code = None
    try:
        call()
    except grpc.RpcError as error:
        code = error.code()
        details = error.details()
    assert code is None or code in CHOSEN, f"{code}: {details}"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fixture_id=texts,
    client_id=texts,
    request_id=texts,
    max_wait=st.none() | durations,
    permit_id=texts,
    outcome=outcomes,
    retry_after=st.none() | durations,
    top_n=st.integers(0, 2**32 - 1),
    fixture_ids=st.lists(texts, max_size=5),
    interval=st.none() | durations,
)
def test_any_message_gets_an_answer_the_server_chose(
    stub: permits_pb2_grpc.PermitServiceStub,
    fixture_id: str,
    client_id: str,
    request_id: str,
    max_wait: Duration | None,
    permit_id: str,
    outcome: int,
    retry_after: Duration | None,
    top_n: int,
    fixture_ids: list[str],
    interval: Duration | None,
) -> None:
    acquire = pb.AcquireRequest(fixture_id=fixture_id, client_id=client_id, request_id=request_id)
    if max_wait is not None:
        acquire.max_wait.CopyFrom(max_wait)
    answered(lambda: stub.Acquire(acquire, timeout=2))
    release = pb.ReleaseRequest(permit_id=permit_id, outcome=outcome, request_id=request_id)  # type: ignore[arg-type]
    if retry_after is not None:
        release.upstream_retry_after.CopyFrom(retry_after)
    answered(lambda: stub.Release(release, timeout=2))
    answered(lambda: stub.Stats(pb.StatsRequest(top_n=top_n, fixture_ids=fixture_ids), timeout=2))
    watch = pb.WatchStatsRequest(top_n=top_n, fixture_ids=fixture_ids)
    if interval is not None:
        watch.interval.CopyFrom(interval)

    def first_snapshot() -> None:
        stream = stub.WatchStats(watch, timeout=2)
        for _ in stream:  # the first snapshot is enough
            break
        stream.cancel()  # type: ignore[no-untyped-call]

    answered(first_snapshot)


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=300))
def test_raw_bytes_never_take_the_server_down(server: ServerProcess, raw: bytes) -> None:
    with grpc.insecure_channel(server.address) as channel:
        for method in ("Acquire", "Release", "Stats"):
            call = channel.unary_unary(
                f"/hotspot.v1.PermitService/{method}",
                request_serializer=None,
                response_deserializer=None,
            )
            code = None
            try:
                call(raw, timeout=2)
            except grpc.RpcError as error:
                code = error.code()
            # Bytes that are not a message at all may also be INTERNAL.
            assert code is None or code in CHOSEN | {grpc.StatusCode.INTERNAL}, code


def test_the_server_is_healthy_and_bounded_after_the_fuzzing(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(), timeout=2)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert rss_bytes(server.proc.pid) < 300 << 20
