"""deploy/compose.replicas.yaml: three replicas on one Redis (with AOF) and a Prometheus that
scrapes every replica; well-formed, loopback-only, and its Prometheus config checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_compose import DEPLOY, PROMTOOL, ROOT, bind_mounts

REPLICAS = ["hotspot-1", "hotspot-2", "hotspot-3"]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.replicas.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_three_replicas_share_one_redis_with_aof() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "prometheus", *REPLICAS}
    for name in REPLICAS:
        replica = services[name]
        assert replica["environment"]["HOTSPOT_BACKEND"] == "redis://redis:6379/0"
        assert replica["depends_on"]["redis"]["condition"] == "service_healthy"
        build = replica["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == ROOT / "Containerfile"
    assert "--appendonly" in services["redis"]["command"]
    published = [p.rsplit(":", 2)[1] for name in REPLICAS for p in services[name]["ports"]]
    assert len(published) == len(set(published)) == 6


def test_published_ports_bind_the_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_prometheus_scrapes_every_replica() -> None:
    mounts = bind_mounts(compose()["services"]["prometheus"])
    assert mounts["/etc/prometheus/prometheus.yml"] == DEPLOY / "prometheus.replicas.yml"
    config = yaml.safe_load((DEPLOY / "prometheus.replicas.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"{name}:8080" for name in REPLICAS]


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: install Debian's `prometheus` package (.ci/run does)",
)
def test_promtool_checks_the_config(tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "prometheus"
    etc.mkdir(parents=True)
    for target, source in bind_mounts(compose()["services"]["prometheus"]).items():
        shutil.copy(source, etc / Path(target).name)
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(etc / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
