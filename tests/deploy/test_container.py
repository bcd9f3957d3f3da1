"""The server's image, built from the Containerfile with podman, run and stopped for real."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotspot_client import Outcome, SyncPermitClient
from tests.deploy.podman import PODMAN, Podman, containers_conf

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),  # a first run builds the base image and installs from PyPI
    pytest.mark.skipif(
        PODMAN is None, reason="podman not found: .ci/run installs podman, runc and mmdebstrap"
    ),
]

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/hotspot:test"
GRACE = 3.0  # --grace, passed as a flag after the image name


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    return Podman(containers_conf(tmp_path_factory.mktemp("podman") / "containers.conf"))


@pytest.fixture(scope="session")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    podman.ensure_base_image(tmp_path_factory.mktemp("base"))
    podman.build(IMAGE, ROOT)
    return IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Container:
    name: str
    grpc: str
    http: str
    started: float


@pytest.fixture
def container(podman: Podman, image: str) -> Iterator[Container]:
    name = f"hotspot-test-{free_port()}"
    grpc_port, http_port = free_port(), free_port()
    podman.check(
        *("run", "--detach", "--name", name),
        *("--publish", f"127.0.0.1:{grpc_port}:50051"),
        *("--publish", f"127.0.0.1:{http_port}:8080"),
        image,
        *("--limit", "3", "--grace", f"{GRACE:g}s"),
    )
    started = time.monotonic()
    try:
        yield Container(name, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}", started)
    finally:
        podman.run("rm", "--force", "--time", "0", name)


def wait_ready(podman: Podman, container: Container, timeout: float = 30) -> float:
    """Seconds from `podman run` returning to /readyz answering 200."""
    while True:
        try:
            with urllib.request.urlopen(container.http + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - container.started
        except (urllib.error.URLError, ConnectionError):
            pass  # the port is published before the server inside listens
        running = podman.check("inspect", "--format", "{{.State.Running}}", container.name)
        if running.strip() != "true" or time.monotonic() - container.started > timeout:
            logs = podman.run("logs", container.name)
            pytest.fail(f"never ready (running: {running.strip()}):\n{logs.stdout}{logs.stderr}")
        time.sleep(0.1)


def test_image_runs_unprivileged_with_a_state_volume_and_a_health_check(
    podman: Podman, image: str
) -> None:
    (inspected,) = json.loads(podman.check("image", "inspect", image))
    config = inspected["Config"]
    assert "/readyz" in " ".join(inspected["Healthcheck"]["Test"])
    assert config["User"] == "10001:10001"
    assert "/var/lib/hotspot" in config["Volumes"]
    assert config["StopSignal"] == "SIGTERM"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HOTSPOT_STATE_DIR"] == "/var/lib/hotspot"
    assert env["HOTSPOT_LISTEN"] == "0.0.0.0:50051"
    assert env["HOTSPOT_HTTP"] == "0.0.0.0:8080"


def test_container_grants_a_permit_and_stops_within_its_grace(
    podman: Podman, container: Container
) -> None:
    ready_after = wait_ready(podman, container)
    print(f"ready {ready_after:.2f}s after podman run")

    with SyncPermitClient(container.grpc, client_id="container-test") as client:
        permit = client.acquire("container-fixture", max_wait=5.0)
        assert not permit.local  # from the server in the container, not the fail-open window
        assert permit.remaining == 2  # --limit 3 after the image name reached the server
        assert client.release(permit, Outcome.SUCCESS) is False

    health = podman.run("healthcheck", "run", container.name)
    assert health.returncode == 0, health.stdout + health.stderr
    assert podman.check("exec", container.name, "id", "-u").strip() == "10001"
    # The unprivileged user owns the state volume.
    podman.check("exec", container.name, "touch", "/var/lib/hotspot/written")

    t = time.monotonic()
    podman.check("stop", "--time", "10", container.name, timeout=30)
    stopped_after = time.monotonic() - t
    print(f"stopped in {stopped_after:.2f}s")
    # Stopped by its own SIGTERM handling within --grace, not killed at podman's 10 s.
    assert stopped_after < GRACE + 1.5
    state = json.loads(podman.check("inspect", "--format", "{{json .State}}", container.name))
    assert state["ExitCode"] == 0
    logs = podman.run("logs", container.name)
    assert "ready: gRPC on 0.0.0.0:50051" in logs.stdout + logs.stderr
    assert "stopped" in logs.stdout + logs.stderr
