"""The client wheel installed alone, in a fresh venv, takes a permit from a real server."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from tests.packaging.conftest import CONSTRAINTS, RunningServer, Wheels

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

HERE = Path(__file__).resolve().parent
# What only the server needs; none of it may come with the client.
SERVER_ONLY = {
    "aiohttp",
    "prometheus-client",
    "rich",
    "grpcio-reflection",
    "grpcio-health-checking",
}


def isolated_env() -> dict[str, str]:
    """No PYTHONPATH: the suite puts the source tree on it, which would hide a broken wheel."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


@pytest.fixture(scope="session")
def client_venv(wheels: Wheels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the client wheel and what it pulls in, nothing else; its python."""
    root = tmp_path_factory.mktemp("client-venv")
    venv.create(root, with_pip=True)
    python = root / "bin" / "python"
    # pip's own cache (shared with the dev venv) keeps this to seconds after the first run.
    install = subprocess.run(
        [
            *(str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("-c", str(CONSTRAINTS), str(wheels.client)),
        ],
        capture_output=True,
        text=True,
        timeout=540,
        env=isolated_env(),
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return python


def run_isolated(python: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    # -I: no user site, no PYTHON* variables, no current directory on sys.path.
    return subprocess.run(
        [python, "-I", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=isolated_env(),
        cwd=python.parent,
    )


def test_client_alone_takes_and_releases_a_permit(client_venv: Path, server: RunningServer) -> None:
    result = run_isolated(client_venv, HERE / "take_permit.py", server.address)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {
        "fixture_id": "wheel-fixture",
        "remaining": 49,
        "local": False,  # granted by the server, not by the fail-open fallback
        "already_released": False,
        "calls_in_window": 1,  # OUTCOME_SUCCESS keeps the call in the window
        "in_flight": 0,
    }


def test_server_is_not_importable_next_to_the_client(client_venv: Path) -> None:
    probe = (
        "import importlib.util, hotspot_client, hotspot_core, hotspot.v1.permits_pb2; "
        "print(importlib.util.find_spec('hotspot_server'))"
    )
    result = run_isolated(client_venv, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_client_pulls_in_nothing_the_server_needs(client_venv: Path) -> None:
    listed = run_isolated(client_venv, "-m", "pip", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert "hotspot-permits-client" in installed
    assert installed & SERVER_ONLY == set()
    assert "hotspot-permits" not in installed


def test_constraints_hold_the_tested_grpcio(client_venv: Path) -> None:
    pinned = dict(
        line.split("==")
        for line in CONSTRAINTS.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    version = run_isolated(client_venv, "-c", "import grpc; print(grpc.__version__)")
    assert version.stdout.strip() == pinned["grpcio"]
