"""Real processes: `hotspot-server` with its HTTP side, and the `hotspot` console command."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from tests.integration.test_process import ServerProcess

HOTSPOT = Path(sys.executable).parent / "hotspot"


def http_url(process: ServerProcess) -> str:
    match = re.search(r"HTTP on (http://127\.0\.0\.1:\d+)", process.log[-1])
    assert match, process.log[-1]
    return match.group(1)


def get(url: str) -> tuple[int, object]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


@pytest.fixture(scope="module")
def busy_server() -> Iterator[ServerProcess]:
    """One server process for the module, with an HTTP side and known traffic."""
    process = ServerProcess("--http", "127.0.0.1:0", "--limit", "5", "--window", "30s")
    with grpc.insecure_channel(process.address) as channel:
        stub = permits_pb2_grpc.PermitServiceStub(channel)
        for fixture_id, n in [("hot", 5), ("warm", 2)]:
            for _ in range(n):
                stub.Acquire(pb.AcquireRequest(fixture_id=fixture_id))
        with pytest.raises(grpc.RpcError):
            stub.Acquire(pb.AcquireRequest(fixture_id="hot", max_wait=Duration()))
    yield process
    # With the HTTP side running too, SIGTERM still ends the process cleanly.
    assert process.stop() == 0, "".join(process.log)


def hotspot(*args: str, columns: int = 100, tty: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the console script; `tty` makes rich draw as on a terminal (cursor moves included)."""
    assert HOTSPOT.exists(), f"{HOTSPOT} is missing: `make` installs the console scripts"
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    if tty:
        env["TTY_COMPATIBLE"] = "1"
    return subprocess.run(
        [str(HOTSPOT), *args], capture_output=True, text=True, timeout=30, env=env
    )


def test_server_process_serves_http_on_the_address_it_names(busy_server: ServerProcess) -> None:
    url = http_url(busy_server)
    assert get(f"{url}/healthz") == (200, {"status": "alive"})
    assert get(f"{url}/readyz") == (200, {"status": "serving"})
    status, body = get(f"{url}/health/hot-spots?top=1")
    assert status == 200
    assert isinstance(body, dict)
    assert [(r["fixture_id"], r["rejected_total"]) for r in body["fixtures"]] == [("hot", 1)]


def test_http_port_taken_is_one_clear_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["--listen", "127.0.0.1:0", "--http", f"127.0.0.1:{port}"]
        result = subprocess.run(
            [sys.executable, "-m", "hotspot_server", *argv],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"could not listen for HTTP on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_hotspot_stats_json_is_one_snapshot(busy_server: ServerProcess) -> None:
    result = hotspot("--target", busy_server.address, "stats", "--json")
    assert result.returncode == 0, result.stderr
    snapshot = json.loads(result.stdout)
    rows = {r["fixture_id"]: r for r in snapshot["fixtures"]}
    assert list(rows) == ["hot", "warm"]
    assert (rows["hot"]["calls_in_window"], rows["hot"]["hot"]) == (5, True)
    assert int(rows["hot"]["rejected_total"]) == 1  # uint64 is a string in proto3 JSON
    assert (rows["warm"]["calls_in_window"], rows["warm"]["hot"]) == (2, False)
    assert int(snapshot["totals"]["calls_total"]) == 7
    assert [a["fixture_id"] for a in snapshot["alerts"]] == ["hot"]


def test_hotspot_stats_prints_a_table(busy_server: ServerProcess) -> None:
    result = hotspot("--target", busy_server.address, "stats", "--top", "1", columns=80)
    assert result.returncode == 0, result.stderr
    [row] = [line for line in result.stdout.splitlines() if re.match(r"\s*1\s+hot\s", line)]
    assert row.split()[-1] == "HOT"
    assert "5/5" in row
    assert "warm" not in result.stdout


def test_hotspot_top_redraws_in_place_from_the_stream(busy_server: ServerProcess) -> None:
    result = hotspot(
        "--target", busy_server.address, "top", "--interval", "0.1", "--iterations", "3", tty=True
    )
    assert result.returncode == 0, result.stderr
    out = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # styles; cursor moves stay
    for update in (1, 2, 3):
        assert f"(update {update})" in out
    assert "\x1b[1A" in out  # the cursor moves up: each update replaces the previous one
    last = out[out.rindex("(update 3)") :]
    assert re.search(r"\bhot\b.*5/5.*HOT", last)


def test_hotspot_names_an_unreachable_server() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        result = hotspot("--target", f"127.0.0.1:{port}", "stats")
    assert result.returncode == 1
    assert f"cannot reach the permit server at 127.0.0.1:{port}" in result.stderr


def test_hotspot_bad_flag_names_the_rule() -> None:
    result = hotspot("top", "--interval", "0.01")
    assert result.returncode == 2
    assert "must be seconds, at least 0.1" in result.stderr
