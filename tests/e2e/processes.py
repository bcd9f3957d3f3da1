"""The three real processes of the end-to-end tests: permit server, fake Optic Odds, gateway.

Each binds port 0 and names its address in its ready line, so no port is fixed
and none is picked before the process binds it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import libfaketime  # type: ignore[import-untyped]

from tests.replicas import REPLICAS

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-key"


class ServiceProcess:
    """A process that is ready once it logs a line matching `ready` (group `address`).

    A thread keeps reading its output, so a chatty process never blocks on a full pipe.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        ready: str,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.log: list[str] = []
        self._ready = re.compile(ready)
        self._found = threading.Event()
        self.address = ""
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"{name}-output", daemon=True)
        self._reader.start()
        if not self._found.wait(timeout) or not self.address:
            self.kill()
            raise AssertionError(f"{name} never said it was ready:\n" + "".join(self.log))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            if not self._found.is_set():
                match = self._ready.search(line)
                if match is not None:
                    self.address = match.group("address")
                    self._found.set()
        self._found.set()  # the process ended: stop waiting for a ready line

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(5)


@contextmanager
def running() -> Iterator[list[ServiceProcess]]:
    """Collects the processes a fixture starts; stops them in reverse order, each cleanly."""
    processes: list[ServiceProcess] = []
    try:
        yield processes
    finally:
        codes = {p.name: p.stop() for p in reversed(processes)}
    # uvicorn re-raises SIGTERM once it has shut down cleanly.
    unclean = {name: code for name, code in codes.items() if code not in (0, -signal.SIGTERM)}
    assert not unclean, f"unclean exits {unclean}:\n" + "".join(
        line for p in processes for line in p.log[-20:]
    )


def permit_server(
    *flags: str, listen: str = "127.0.0.1:0", env: dict[str, str] | None = None
) -> ServiceProcess:
    return ServiceProcess(
        "hotspot-server",
        [
            sys.executable,
            "-m",
            "hotspot_server",
            "--listen",
            listen,
            "--http",
            "off",
            *flags,
        ],
        ready=r"ready: gRPC on (?P<address>[\d.]+:\d+)",
        env=env,
    )


def permit_replicas(
    backend: str, *flags: str, clocks: Sequence[int] = (0,) * REPLICAS
) -> list[ServiceProcess]:
    """One permit server per entry of `clocks` on one shared `backend`, with its HTTP side
    (metrics_url); a non-zero entry sets that replica's wall clock off by so many seconds,
    checked in its log before it is used."""
    argv = ("--backend", backend, "--http", "127.0.0.1:0", *flags)
    with ThreadPoolExecutor(len(clocks)) as threads:  # their start-ups overlap
        starts = [
            threads.submit(permit_server, *argv, env=clock_off_by(offset) if offset else None)
            for offset in clocks
        ]
    replicas = [start.result() for start in starts if start.exception() is None]
    try:
        for start, offset in zip(starts, clocks, strict=True):
            seen = wall_clock_offset(start.result())
            assert abs(seen - offset) < CLOCK_SLACK, f"clock off by {seen:.1f}s, not {offset}s"
    except BaseException:
        for replica in replicas:
            replica.kill()
        raise
    return replicas


def stop_all(processes: Sequence[ServiceProcess]) -> None:
    """SIGTERM to every process at once, then wait for each: their shutdowns overlap."""
    for process in processes:
        if process.proc.poll() is None:
            process.proc.send_signal(signal.SIGTERM)
    for process in processes:
        process.stop()


CLOCK_SLACK = 30.0
"""Seconds a clock read from a log line may be off, whatever a busy machine delays."""


def clock_off_by(seconds: int) -> dict[str, str]:
    """The environment of a process whose wall clock is `seconds` off, as a host's drifting
    clock would be: libfaketime preloaded, the monotonic clock left true."""
    _, preload = libfaketime.get_reload_information()
    return {**preload, "DONT_FAKE_MONOTONIC": "1", "FAKETIME": f"{seconds:+d}"}


def metrics_url(process: ServiceProcess) -> str:
    """The /metrics of a permit server started with an HTTP side, from its ready line."""
    match = next(filter(None, (re.search(r"HTTP on (http://[\d.]+:\d+)", x) for x in process.log)))
    return match.group(1) + "/metrics"


def wall_clock_offset(process: ServiceProcess) -> float:
    """Seconds the process's wall clock is ahead of ours, from its ready line's timestamp (text
    logs, local time); the time since that line was written adds a little."""
    line = next(line for line in process.log if process.address in line)
    logged = datetime.strptime(line[: len("2000-01-01 00:00:00,000")], "%Y-%m-%d %H:%M:%S,%f")
    return (logged - datetime.now()).total_seconds()


def fake_optic_odds(
    limit: int, window: str, latency: str = "0s", fixtures: Path | None = None
) -> ServiceProcess:
    return ServiceProcess(
        "fake-optic-odds",
        [
            *(sys.executable, "-m", "fake_optic_odds", "--listen", "127.0.0.1:0"),
            *("--limit", str(limit), "--window", window, "--api-key", API_KEY),
            *("--latency", latency),
            *(("--fixtures", str(fixtures)) if fixtures else ()),
        ],
        ready=r"ready on (?P<address>http://[\d.]+:\d+)",
    )


def odds_gateway(permit_target: str, optic_odds_url: str, **env: str) -> ServiceProcess:
    """The example gateway under uvicorn; `env` adds its settings (HOTSPOT_MAX_WAIT=...)."""
    return ServiceProcess(
        "odds-gateway",
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "examples.odds_gateway.app:create_app"),
            *("--host", "127.0.0.1", "--port", "0", "--no-access-log"),
        ],
        env={
            "HOTSPOT_TARGET": permit_target,
            "OPTIC_ODDS_BASE_URL": optic_odds_url,
            "OPTIC_ODDS_API_KEY": API_KEY,
            **env,
        },
        ready=r"Uvicorn running on (?P<address>http://[\d.]+:\d+)",
    )


def warmer(
    permit_target: str, optic_odds_url: str, cache_url: str, config: Path, warmer_id: str
) -> ServiceProcess:
    """hotspot-warmer run, its /status on a port of its own."""
    return ServiceProcess(
        f"hotspot-warmer-{warmer_id}",
        [
            *(sys.executable, "-m", "hotspot_warmer", "run", "--config", str(config)),
            *("--optic-odds-url", optic_odds_url, "--api-key", API_KEY),
            *("--hotspot-target", permit_target, "--cache-url", cache_url),
            *("--http", "127.0.0.1:0", "--warmer-id", warmer_id),
        ],
        ready=r"hotspot-warmer ready: http on (?P<address>[\d.]+:\d+)",
    )
