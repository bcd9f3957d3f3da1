"""A real redis-server for tests: started on a free loopback port, stopped after.

    from tests.redis_server import redis_url  # the pytest fixture, in a conftest.py

    def test_x(redis_url: str) -> None: ...

`RedisServer` itself is a context manager for tests that stop and restart it.
Tests that need it are skipped, with the reason, where redis-server is not installed
(Debian's package `redis-server`; .ci/run installs it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
START_TIMEOUT = 10.0


def redis_server_missing() -> str | None:
    """Why redis tests cannot run here, or None."""
    if not Path(REDIS_SERVER).exists():
        return "redis-server is not installed (apt-get install redis-server; .ci/run does)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _StartedInside:
    """`with` starts it and stops it after, however the block ends."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer(_StartedInside):
    """One redis-server process; `appendonly` keeps an AOF in `directory` (fsync always);
    `replicaof` makes it a replica of the redis-server on that loopback port; `cluster` makes
    it a Redis Cluster node (RedisClusterNodes joins them)."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        appendonly: bool = False,
        replicaof: int | None = None,
        cluster: bool = False,
    ) -> None:
        self.directory = directory
        self.port = port or _free_port()
        self.appendonly = appendonly
        self.replicaof = replicaof
        # A Cluster node's bus port: free too (port + 10000 by default, maybe taken or above
        # 65535), and kept across restarts, where the other nodes know it.
        self.cluster_port = _free_port() if cluster else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            REDIS_SERVER,
            *("--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory)),
            *("--save", "", "--daemonize", "no", "--protected-mode", "yes"),
            *("--logfile", str(self.directory / "redis.log")),
            # A replica's first sync starts at once, not after the default 5 s wait for others.
            *("--repl-diskless-sync-delay", "0"),
        ]
        if self.appendonly:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        if self.replicaof is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.replicaof)]
        if self.cluster_port is not None:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            argv += ["--cluster-port", str(self.cluster_port)]
        self._spawn(argv)

    def _spawn(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers_ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.directory / "redis.log"
                raise AssertionError(
                    "redis-server did not start:\n" + (log.read_text() if log.exists() else "")
                )
            time.sleep(0.02)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; the port is free afterwards."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown save, no goodbye to its clients."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class RedisSentinel(RedisServer):
    """One Sentinel (redis-server --sentinel) watching the primary on `primary_port` as
    `service`: it declares it down after `down_after_ms` without an answer and, being the only
    Sentinel (quorum 1), promotes a replica at once."""

    def __init__(
        self,
        directory: Path,
        primary_port: int,
        *,
        service: str = "hotspot",
        down_after_ms: int = 500,
        failover_timeout_ms: int = 3000,
    ) -> None:
        super().__init__(directory)
        self.primary_port = primary_port
        self.service = service
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"  # Sentinel rewrites it: its own file
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"logfile {self.directory / 'redis.log'}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}\n"
        )
        self._spawn([REDIS_SERVER, str(config), "--sentinel"])


class RedisClusterNodes(_StartedInside):
    """`count` redis-server processes joined into one Redis Cluster on loopback (redis-cli
    --cluster create), no replicas: each primary serves an equal share of the 16384 slots."""

    def __init__(self, directory: Path, count: int = 3) -> None:
        self.nodes = [RedisServer(directory / f"node{i}", cluster=True) for i in range(count)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0"]
        subprocess.run(
            [*create, "--cluster-yes"], check=True, capture_output=True, timeout=START_TIMEOUT
        )
        self.until_every_slot_is_served()

    def until_every_slot_is_served(self) -> None:
        """Until every node says cluster_state:ok (after start, or a node's restart)."""
        deadline = time.monotonic() + START_TIMEOUT
        while not all(self._serves_every_slot(node) for node in self.nodes):
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("the Redis Cluster never reached cluster_state:ok")
            time.sleep(0.05)

    def _serves_every_slot(self, node: RedisServer) -> bool:
        info = subprocess.run(
            [REDIS_CLI, "-p", str(node.port), "cluster", "info"],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
        return "cluster_state:ok" in info.stdout

    def flush(self) -> None:
        """Empty every node (a test's fresh start on a Cluster shared by a module)."""
        for node in self.nodes:
            subprocess.run(
                [REDIS_CLI, "-p", str(node.port), "flushall"],
                check=True,
                capture_output=True,
                timeout=START_TIMEOUT,
            )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running redis-server of the test's own (no persistence)."""
    missing = redis_server_missing()
    if missing:
        pytest.skip(missing)
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """One three-node Cluster for the session (joining one takes a second or two), shared:
    a test that needs it empty calls flush()."""
    missing = redis_server_missing()
    if missing:
        pytest.skip(missing)
    with RedisClusterNodes(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster
