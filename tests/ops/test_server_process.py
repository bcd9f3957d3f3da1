"""The commands as operators run them: environment, --version, bad starts, SIGHUP, reflection."""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from tests.integration.test_process import BUF, ServerProcess
from tests.visibility.test_processes import HOTSPOT, hotspot

SERVER = [sys.executable, "-m", "hotspot_server"]


def run_server(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER, "--listen", "127.0.0.1:0", "--http", "off", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_version_on_every_command() -> None:
    server = subprocess.run([*SERVER, "--version"], capture_output=True, text=True, timeout=30)
    assert server.returncode == 0, server.stderr
    assert server.stdout.startswith(f"hotspot-server {metadata.version('hotspot-permits')} (")
    assert f"grpcio {grpc.__version__}" in server.stdout
    console = subprocess.run([HOTSPOT, "--version"], capture_output=True, text=True, timeout=30)
    assert console.returncode == 0, console.stderr
    assert console.stdout.strip() == (
        f"hotspot {metadata.version('hotspot-permits-client')} (hotspot-permits-client)"
    )


def test_environment_sets_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTSPOT_LIMIT", "3")
    monkeypatch.setenv("HOTSPOT_WINDOW", "2s")
    process = ServerProcess()  # inherits the environment
    try:
        assert "limit 3 per 2s" in process.log[-1]
    finally:
        assert process.stop() == 0


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def bad_starts(tmp_path: Path, taken_port: int) -> list[tuple[list[str], int, str]]:
    unknown_key = tmp_path / "unknown.toml"
    unknown_key.write_text("limt = 10\n")
    return [
        (["--limit", "many"], 2, "limit: invalid literal for int() with base 10: 'many'"),
        (["--window", "0s"], 2, "window must be positive"),
        (["--config", str(unknown_key)], 2, "unknown keys ['limt']"),
        (["--backend", "etcd://127.0.0.1:2379"], 2, "backend: unknown backend 'etcd://"),
        (["--listen", f"127.0.0.1:{taken_port}"], 1, "could not listen for gRPC on 127.0.0.1:"),
        (["--http", f"127.0.0.1:{taken_port}"], 1, "could not listen for HTTP on 127.0.0.1:"),
        (["--config", str(tmp_path)], 1, "cannot read the config file: [Errno 21] Is a directory"),
        (["--config", str(tmp_path / "none.toml")], 1, "No such file or directory"),
    ]


def test_every_bad_start_is_one_line_and_its_exit_status(tmp_path: Path, taken_port: int) -> None:
    for argv, status, message in bad_starts(tmp_path, taken_port):
        result = run_server(*argv)
        lines = result.stderr.splitlines()
        assert (result.returncode, len(lines)) == (status, 1), (argv, result.stderr)
        assert lines[0].startswith("hotspot-server: "), lines
        assert message in lines[0], (argv, lines)
    # The OS's reason for a gRPC port that is taken is named.
    taken = run_server("--listen", f"127.0.0.1:{taken_port}")
    assert "Address already in use" in taken.stderr


# -- SIGHUP -----------------------------------------------------------------------------------


class Hook(BaseHTTPRequestHandler):
    bodies: queue.Queue[Any]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.put(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet test output


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[Any]]]:
    bodies: queue.Queue[Any] = queue.Queue()
    handler = type("RecordingHook", (Hook,), {"bodies": bodies})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as http:
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{http.server_address[1]}/alerts", bodies
        http.shutdown()


class LogTail:
    """The server's stderr, line by line, from a thread: waiting for a line has a deadline."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        stderr = process.proc.stderr
        assert stderr is not None
        self._thread = threading.Thread(target=self._read, args=(stderr,), daemon=True)
        self._thread.start()

    def _read(self, stderr: Iterable[str]) -> None:
        for line in stderr:
            self.lines.put(line)

    def expect(self, pattern: str, within: float = 15.0) -> str:
        deadline = time.monotonic() + within
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def stop(self) -> list[str]:
        """SIGTERM, and every line the server wrote until it exited."""
        self.process.proc.send_signal(signal.SIGTERM)
        assert self.process.proc.wait(timeout=10) == 0
        self._thread.join(5)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen


def test_sighup_reloads_what_can_change_live_and_names_the_rest(
    tmp_path: Path, webhook: tuple[str, queue.Queue[Any]]
) -> None:
    url, bodies = webhook
    config = tmp_path / "hotspot.toml"
    config.write_text('limit = 5\nwindow = "30s"\nlog_level = "info"\n')
    process = ServerProcess("--config", str(config))
    log = LogTail(process)
    try:
        config.write_text(
            f'limit = 10\nwindow = "30s"\nlog_level = "debug"\nalert_webhook = "{url}"\n'
        )
        process.proc.send_signal(signal.SIGHUP)
        applied = log.expect("SIGHUP: settings reloaded")
        assert f"log_level info -> debug, alert_webhook None -> {url}" in applied
        kept = log.expect("SIGHUP: kept")
        assert "kept limit as they were (limit stays 5, asked 10); a restart changes them" in kept

        # The webhook is live: the running limit (5) raises the alert at 4 calls.
        with grpc.insecure_channel(process.address) as channel:
            stub = permits_pb2_grpc.PermitServiceStub(channel)
            for _ in range(4):
                stub.Acquire(pb.AcquireRequest(fixture_id="f"), timeout=5)
        alert = bodies.get(timeout=5)
        assert (alert["fixture_id"], alert["state"], alert["threshold"]) == ("f", "raised", 4)

        # A broken file changes nothing, and the server keeps serving.
        config.write_text("limit = \n")
        process.proc.send_signal(signal.SIGHUP)
        assert "not valid TOML" in log.expect("settings not reloaded, all kept as they were")

        # Raised to warning, info lines stop: the reload's own, and shutting down's.
        config.write_text(
            f'limit = 10\nwindow = "30s"\nlog_level = "warning"\nalert_webhook = "{url}"\n'
        )
        process.proc.send_signal(signal.SIGHUP)
        log.expect("SIGHUP: kept limit")
        after = log.stop()[len(log.seen) :]
        assert not any("shutting down" in line for line in after), after
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def test_sighup_moves_the_alert_threshold(tmp_path: Path) -> None:
    config = tmp_path / "hotspot.toml"
    config.write_text('limit = 5\nwindow = "30s"\n')
    process = ServerProcess("--config", str(config))
    log = LogTail(process)
    try:
        config.write_text('limit = 5\nwindow = "30s"\nalert_ratio = 0.5\n')
        process.proc.send_signal(signal.SIGHUP)
        assert "alert_ratio 0.8 -> 0.5" in log.expect("SIGHUP: settings reloaded")
    finally:
        log.stop()


# -- Reflection and hotspot top ---------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    process = ServerProcess("--limit", "2", "--window", "30s")
    yield process
    assert process.stop() == 0


def buf(*args: str) -> subprocess.CompletedProcess[str]:
    assert BUF is not None, "buf-bin is a dev dependency"
    return subprocess.run(
        [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_buf_curl_works_at_once_over_reflection_v1(server: ServerProcess) -> None:
    base = f"http://{server.address}"
    v1 = ["--reflect-protocol", "grpc-v1"]
    listed = buf(*v1, "--list-services", base)
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {
        "hotspot.v1.PermitService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    acquired = buf(*v1, "-d", '{"fixture_id": "f"}', f"{base}/hotspot.v1.PermitService/Acquire")
    assert acquired.returncode == 0, acquired.stderr
    assert json.loads(acquired.stdout)["remaining"] == 1
    # buf's default (v1 first, then v1alpha) succeeds on its first try, with no warning.
    default = buf("-d", "{}", f"{base}/hotspot.v1.PermitService/Stats")
    assert (default.returncode, default.stderr) == (0, "")


def test_reflection_v1_answers_a_grpc_client(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        call = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        request = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="grpc.reflection.v1.ServerReflection"
        )
        [response] = list(call(iter([request]), timeout=5))
    assert response.WhichOneof("message_response") == "file_descriptor_response"


def test_hotspot_top_prints_plain_tables_through_a_pipe(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        permits_pb2_grpc.PermitServiceStub(channel).Acquire(pb.AcquireRequest(fixture_id="piped"))
    result = hotspot("--target", server.address, "top", "--interval", "0.1", "--iterations", "2")
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout  # no cursor moves or styles
    for update in (1, 2):
        assert f"(update {update})" in result.stdout
    assert result.stdout.count("piped") == 2  # one table per update
