"""Logs a caller cannot forge or flood: the formatters, then a real server process's stderr."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator

import grpc
import pytest

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_server.logs import JsonFormatter, TextFormatter
from tests.integration.test_process import ServerProcess

FORGED = "evil\n2026-01-01 00:00:00,000 CRITICAL hotspot.server: forged\r\x1b[2K\u2028"
"""A caller's text that would add a CRITICAL line of its own to a naive text log."""
RECORD_START = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: "
)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("hotspot.test", logging.WARNING, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def test_text_lines_escape_every_control_character_of_the_arguments() -> None:
    line = TextFormatter().format(record("permit abandoned: client_id=%s", FORGED))
    assert "\n" not in line
    assert not CONTROL.search(line)
    assert line.endswith(
        r"client_id=evil\n2026-01-01 00:00:00,000 CRITICAL hotspot.server: forged\r\x1b[2K\u2028"
    )


def test_a_traceback_follows_on_indented_lines_that_cannot_pass_for_a_record() -> None:
    try:
        raise ValueError(FORGED)
    except ValueError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()
    first, *rest = TextFormatter().format(failed).split("\n")
    assert RECORD_START.match(first)
    assert rest[0] == "    Traceback (most recent call last):"
    assert all(line.startswith("    ") for line in rest)
    assert not any(CONTROL.search(line) for line in rest)


def test_json_lines_stay_one_object_per_line_with_the_text_as_sent() -> None:
    line = JsonFormatter().format(record("client_id=%s", FORGED, client_id=FORGED))
    assert "\n" not in line
    assert not CONTROL.search(line)
    entry = json.loads(line)
    assert (entry["client_id"], entry["message"]) == (FORGED, f"client_id={FORGED}")


@pytest.fixture
def short_lease() -> Iterator[ServerProcess]:
    process = ServerProcess("--lease", "200ms", "--limit", "1000", "--window", "2s")
    yield process
    if process.proc.poll() is None:
        process.proc.kill()
        process.proc.wait()


def abandoned_total(stub: permits_pb2_grpc.PermitServiceStub) -> int:
    return int(stub.Stats(pb.StatsRequest()).totals.abandoned_total)


def wait_for_abandoned(stub: permits_pb2_grpc.PermitServiceStub, n: int) -> None:
    deadline = time.monotonic() + 10
    while abandoned_total(stub) < n:
        assert time.monotonic() < deadline, f"{abandoned_total(stub)} of {n} abandoned"
        time.sleep(0.05)


def send_forged_text(stub: permits_pb2_grpc.PermitServiceStub) -> None:
    """A client_id, a fixture id and a permit id with a forged line in each."""
    stub.Acquire(pb.AcquireRequest(fixture_id="f", client_id=FORGED))  # never released
    with pytest.raises(grpc.RpcError) as refused:
        stub.Acquire(pb.AcquireRequest(fixture_id=FORGED))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unknown:
        stub.Release(pb.ReleaseRequest(permit_id=FORGED[:60], outcome=pb.OUTCOME_SUCCESS))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    wait_for_abandoned(stub, 1)


@pytest.mark.slow
def test_caller_text_cannot_forge_a_line_of_the_text_log(short_lease: ServerProcess) -> None:
    with grpc.insecure_channel(short_lease.address) as channel:
        send_forged_text(permits_pb2_grpc.PermitServiceStub(channel))
    assert short_lease.stop() == 0
    log = "".join(short_lease.log)
    for line in log.splitlines():
        assert RECORD_START.match(line) or line.startswith("    "), line
        assert " CRITICAL " not in line[:40], line
    [abandoned] = [line for line in log.splitlines() if "permit abandoned" in line]
    assert r"client_id=evil\n2026-01-01 00:00:00,000 CRITICAL" in abandoned


@pytest.mark.slow
def test_json_log_keeps_the_callers_text_whole_in_one_object() -> None:
    process = ServerProcess("--lease", "200ms", "--log-format", "json")
    with grpc.insecure_channel(process.address) as channel:
        send_forged_text(permits_pb2_grpc.PermitServiceStub(channel))
    assert process.stop() == 0
    entries = [json.loads(line) for line in process.log]  # each line one object, or this fails
    [abandoned] = [e for e in entries if e.get("event") == "permit_abandoned"]
    assert abandoned["client_id"] == FORGED


@pytest.mark.slow
def test_many_abandoned_permits_on_a_few_fixtures_are_one_line_per_fixture(
    short_lease: ServerProcess,
) -> None:
    fixtures, per_fixture = ("f1", "f2", "f3"), 200
    with grpc.insecure_channel(short_lease.address) as channel:
        stub = permits_pb2_grpc.PermitServiceStub(channel)
        for fixture_id in fixtures:
            for _ in range(per_fixture):
                stub.Acquire(pb.AcquireRequest(fixture_id=fixture_id, client_id="crashy"))
        wait_for_abandoned(stub, len(fixtures) * per_fixture)
    assert short_lease.stop() == 0
    abandoned = [line for line in short_lease.log if "permit abandoned" in line]
    # One line per fixture; the other 199 each are counted into the minute's summary line.
    assert sorted(re.findall(r"fixture_id=(\w+)", "".join(abandoned))) == list(fixtures)
    # The summaries still counting at shutdown are written then, not lost with the process.
    summaries = [line for line in short_lease.log if "more permits abandoned" in line]
    assert sorted(
        re.findall(r"(\d+) more permits abandoned on fixture_id=(\w+)", "".join(summaries))
    ) == [("199", f) for f in fixtures]
    assert len(short_lease.log) < 12, "".join(short_lease.log)
