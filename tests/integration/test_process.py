"""The `hotspot-server` process: ready line, buf curl through reflection, clean exit on signals."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc

BUF = shutil.which("buf", path=str(Path(sys.executable).parent))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            # No HTTP side unless a test asks (its default port 8080 is fixed, and may be taken).
            [
                sys.executable,
                "-m",
                "hotspot_server",
                "--listen",
                self.address,
                "--http",
                "off",
                *args,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            if "ready" in line:
                return
        self.proc.kill()
        raise AssertionError("server never said it was ready:\n" + "".join(self.log))

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> int:
        self.proc.send_signal(signum)
        _, err = self.proc.communicate(timeout=timeout)
        self.log.extend(err.splitlines(keepends=True))
        return self.proc.returncode


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    process = ServerProcess("--limit", "2", "--window", "2s", "--grace", "2s")
    yield process
    if process.proc.poll() is None:
        process.proc.kill()
        process.proc.wait()


def buf_curl(
    address: str, method: str, body: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    assert BUF is not None, "buf-bin is a dev dependency"
    return subprocess.run(
        [
            BUF,
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "-d",
            json.dumps(body),
            f"http://{address}/hotspot.v1.PermitService/{method}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_ready_line_names_the_address(server: ServerProcess) -> None:
    assert server.address in server.log[-1]


def test_buf_curl_drives_every_unary_rpc_through_reflection(server: ServerProcess) -> None:
    acquired = buf_curl(server.address, "Acquire", {"fixture_id": "nba-final", "client_id": "curl"})
    assert acquired.returncode == 0, acquired.stderr
    permit = json.loads(acquired.stdout)
    assert permit["fixtureId"] == "nba-final"
    assert permit["remaining"] == 1

    released = buf_curl(
        server.address, "Release", {"permit_id": permit["permitId"], "outcome": "OUTCOME_SUCCESS"}
    )
    assert released.returncode == 0, released.stderr

    stats = buf_curl(server.address, "Stats", {"fixture_ids": ["nba-final"]})
    assert json.loads(stats.stdout)["fixtures"][0]["callsInWindow"] == 1

    buf_curl(server.address, "Acquire", {"fixture_id": "nba-final"})
    overflow = buf_curl(server.address, "Acquire", {"fixture_id": "nba-final", "max_wait": "0s"})
    assert overflow.returncode != 0
    error = json.loads(overflow.stderr)
    assert error["code"] == "resource_exhausted"
    assert {d["type"] for d in error["details"]} == {"google.rpc.RetryInfo", "google.rpc.ErrorInfo"}

    kickoff = datetime.now(UTC) + timedelta(hours=1)
    warming = {
        "fixture_id": "nba-final",
        "rule": "manual",
        "starts_at": (kickoff - timedelta(minutes=15)).isoformat(),
        "kickoff": kickoff.isoformat(),
        "ends_at": (kickoff + timedelta(hours=3)).isoformat(),
    }
    announced = buf_curl(
        server.address, "AnnounceWarmings", {"announcer": "me", "ttl": "60s", "warmings": [warming]}
    )
    assert announced.returncode == 0, announced.stderr
    assert "expiresAt" in json.loads(announced.stdout)
    stats = buf_curl(server.address, "Stats", {})
    assert [w["fixtureId"] for w in json.loads(stats.stdout)["scheduledWarmings"]] == ["nba-final"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_answers_waiters_and_exits_zero_within_grace(
    server: ServerProcess, signum: int
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = permits_pb2_grpc.PermitServiceStub(channel)
        stub.Acquire(pb.AcquireRequest(fixture_id="f"))
        stub.Acquire(pb.AcquireRequest(fixture_id="f"))
        waiter = stub.Acquire.future(pb.AcquireRequest(fixture_id="f"))
        deadline = time.monotonic() + 5
        while stub.Stats(pb.StatsRequest()).totals.queue_depth == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        t = time.monotonic()
        assert server.stop(signum) == 0
        assert time.monotonic() - t < 2.5  # --grace 2s
        with pytest.raises(grpc.RpcError) as info:
            waiter.result()
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert any("stopped" in line for line in server.log)


def test_config_file_sets_the_policy(tmp_path: Path) -> None:
    config = tmp_path / "hotspot.toml"
    config.write_text('limit = 7\nwindow = "1500ms"\nqueue = 3\n')
    process = ServerProcess("--config", str(config))
    try:
        with grpc.insecure_channel(process.address) as channel:
            stub = permits_pb2_grpc.PermitServiceStub(channel)
            stub.Acquire(pb.AcquireRequest(fixture_id="f"))
            row = stub.Stats(pb.StatsRequest()).fixtures[0]
        assert (row.limit, row.queue_capacity) == (7, 3)
        assert row.window.ToMilliseconds() == 1500
    finally:
        assert process.stop() == 0


def test_bad_flag_exits_with_a_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hotspot_server", "--limit", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "limit must be at least 1" in result.stderr
