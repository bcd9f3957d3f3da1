"""deploy/hotspot.service: `systemd-analyze verify`, and its sandbox against the real server.

No systemd runs as PID 1 on these machines, so the unit cannot be started here. Instead the
server runs under strace, and every system call it makes, and every memory mapping, is checked
against what the unit's SystemCallFilter and MemoryDenyWriteExecute allow.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hotspot_client import Outcome, SyncPermitClient

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "hotspot.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
STRACE = shutil.which("strace")
# The dev venv's entry point stands in for /opt/hotspot/bin/hotspot-server: verify wants an
# executable there.
DEV_SERVER = Path(sys.executable).parent / "hotspot-server"

needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze not found: install Debian's `systemd` package (.ci/run does)",
)


def directives() -> dict[str, list[str]]:
    """Each key of the unit with all its values, in order."""
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def local_copy(tmp_path: Path, text: str | None = None) -> Path:
    text = UNIT.read_text() if text is None else text
    exec_start = directives()["ExecStart"][0]
    copy = tmp_path / "hotspot.service"
    copy.write_text(text.replace(f"ExecStart={exec_start}", f"ExecStart={DEV_SERVER}"))
    return copy


def test_unit_is_sandboxed() -> None:
    d = directives()
    expected = {
        "DynamicUser": ["yes"],
        "StateDirectory": ["hotspot"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "NoNewPrivileges": ["yes"],
        "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
        "CapabilityBoundingSet": [""],
        "MemoryDenyWriteExecute": ["yes"],
        "KillSignal": ["SIGTERM"],
    }
    assert {k: d.get(k) for k in expected} == expected
    assert d["SystemCallFilter"][0] == "@system-service"
    assert d["ExecStart"] == ["/opt/hotspot/bin/hotspot-server"]
    # The server reads HOTSPOT_STATE_DIR (when it has state to keep): the StateDirectory.
    assert "HOTSPOT_STATE_DIR=%S/hotspot" in d["Environment"]


@needs_systemd_analyze
def test_systemd_analyze_verify_passes_without_a_warning(tmp_path: Path) -> None:
    result = verify(local_copy(tmp_path))
    assert result.returncode == 0, result.stderr
    # verify exits 0 on an unknown or misspelt key, only warning: any output is a finding.
    assert result.stdout + result.stderr == ""


@needs_systemd_analyze
def test_verify_would_catch_a_misspelt_key(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict")
    result = verify(local_copy(tmp_path, broken))
    assert "Unknown key" in result.stderr


def filter_groups() -> dict[str, set[str]]:
    """systemd's @groups, each expanded to plain system call names."""
    assert SYSTEMD_ANALYZE is not None
    listing = subprocess.run(
        [SYSTEMD_ANALYZE, "syscall-filter"], capture_output=True, text=True, timeout=60
    ).stdout
    raw: dict[str, list[str]] = {}
    current = ""
    for line in listing.splitlines():
        if line.startswith("@"):
            current = line.split()[0]
            raw[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            raw[current].append(line.strip())

    def expand(name: str) -> set[str]:
        if not name.startswith("@"):
            return {name}
        return set().union(*(expand(member) for member in raw[name]))

    return {name: expand(name) for name in raw}


def allowed_system_calls() -> set[str]:
    """What the unit's SystemCallFilter lines let through: allow lists, then ~deny lists."""
    groups = filter_groups()
    allowed: set[str] = set()
    denied: set[str] = set()
    for value in directives()["SystemCallFilter"]:
        target = denied if value.startswith("~") else allowed
        for name in value.removeprefix("~").split():
            target |= groups[name] if name.startswith("@") else {name}
    return allowed - denied


def exercise(grpc_address: str, http_url: str) -> None:
    """Permits, stats and the HTTP side: the paths a deployed server runs."""
    with SyncPermitClient(grpc_address, client_id="sandbox") as client:
        for i in range(30):
            permit = client.acquire(f"fixture-{i % 3}", max_wait=5.0)
            client.release(permit, Outcome.SUCCESS if i % 2 else Outcome.NOT_SENT)
    for path in ("/healthz", "/readyz", "/metrics", "/health/hot-spots"):
        # An error page is still served by the same process: its system calls count too.
        with (
            contextlib.suppress(urllib.error.HTTPError),
            urllib.request.urlopen(http_url + path, timeout=10) as response,
        ):
            response.read()


@pytest.mark.slow
@needs_systemd_analyze
@pytest.mark.skipif(
    STRACE is None, reason="strace not found: install Debian's `strace` package (.ci/run does)"
)
def test_server_stays_inside_the_units_system_call_filter(tmp_path: Path) -> None:
    assert STRACE is not None
    trace = tmp_path / "trace"
    strace = subprocess.Popen(
        [
            STRACE,
            "-f",
            "-qq",
            "-o",
            str(trace),
            "--",
            str(DEV_SERVER),
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ],
        stderr=subprocess.PIPE,
        text=True,
        # As the unit runs it: state in its own directory (so writing it is traced too).
        cwd=tmp_path,
        env={**os.environ, "HOTSPOT_STATE_DIR": str(tmp_path / "state")},
    )
    try:
        assert strace.stderr is not None
        ready = ""
        deadline = time.monotonic() + 60  # everything runs slower under strace
        while "ready" not in ready and time.monotonic() < deadline:
            ready = strace.stderr.readline()
            assert ready, "the server exited before it was ready"
        match = re.search(r"gRPC on (\S+?), HTTP on (http://\S+)", ready)
        assert match is not None, ready
        exercise(match.group(1), match.group(2))
        # SIGTERM the server itself (strace's only child), so its shutdown is traced too.
        children = Path(f"/proc/{strace.pid}/task/{strace.pid}/children").read_text().split()
        (server_pid,) = map(int, children)
        signal_server = subprocess.run(["kill", "-TERM", str(server_pid)], timeout=10)
        assert signal_server.returncode == 0
        _, log = strace.communicate(timeout=30)
        assert strace.returncode == 0, log
    finally:
        if strace.poll() is None:
            strace.kill()
            strace.communicate()

    lines = trace.read_text().splitlines()
    used = {m.group(1) for line in lines if (m := re.match(r"\d+ +([a-z0-9_]+)\(", line))}
    assert {"execve", "socket", "bind", "accept4"} <= used  # the trace is real
    if os.geteuid() == 0:
        # SQLite (the state store) hands its journal files to the database's owner, but only
        # when running as root; under DynamicUser the server never is, so never calls fchown.
        chowns = [line for line in lines if re.match(r"\d+ +fchown\(", line)]
        assert all(re.search(r"fchown\(\d+, 0, 0\b", line) for line in chowns), chowns
        used.discard("fchown")
    assert used - allowed_system_calls() == set()
    # MemoryDenyWriteExecute refuses writable+executable mappings and making memory executable.
    wx_maps = [line for line in lines if re.search(r" mmap\(.*PROT_WRITE\|PROT_EXEC", line)]
    exec_protects = [line for line in lines if re.search(r" (pkey_)?mprotect\(.*PROT_EXEC", line)]
    assert wx_maps == []
    assert exec_protects == []
