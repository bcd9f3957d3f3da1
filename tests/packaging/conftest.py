"""Wheels built once per session, and a hotspot server process started from the dev venv."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
CLIENT_DIST = "hotspot_permits_client"
SERVER_DIST = "hotspot_permits"


@dataclass(frozen=True)
class Wheels:
    client: Path
    server: Path


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    """`pip wheel --no-deps` of ./client and ., as a user would build them (about 7 s)."""
    out = tmp_path_factory.mktemp("wheels")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"),
            *("--wheel-dir", str(out), str(ROOT / "client"), str(ROOT)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (client,) = out.glob(f"{CLIENT_DIST}-*.whl")
    (server,) = out.glob(f"{SERVER_DIST}-*.whl")
    return Wheels(client=client, server=server)


@dataclass
class RunningServer:
    proc: subprocess.Popen[str]
    address: str
    log: list[str]


READY = re.compile(r"ready: gRPC on (\S+?),")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """hotspot-server from the dev venv on a port the kernel picks, read from its ready line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotspot_server", "--listen", "127.0.0.1:0", "--http", "off"],
        stderr=subprocess.PIPE,
        text=True,
        # Any state the server keeps goes to a temporary directory, never into the work tree.
        cwd=tmp_path,
        env={**os.environ, "HOTSPOT_STATE_DIR": str(tmp_path / "state")},
    )
    assert proc.stderr is not None
    log: list[str] = []
    address = None
    deadline = time.monotonic() + 15
    while address is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        log.append(line)
        if match := READY.search(line):
            address = match.group(1)
    if address is None:
        proc.kill()
        proc.wait()
        pytest.fail("server never said it was ready:\n" + "".join(log))
    yield RunningServer(proc, address, log)
    proc.terminate()
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
