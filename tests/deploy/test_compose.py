"""deploy/compose.yaml and deploy/prometheus.yml: well-formed, and the mounts Prometheus needs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMTOOL = shutil.which("promtool")


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of each `./host:/container[:ro]` volume, from deploy/."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = (DEPLOY / source).resolve()
    return mounts


def test_compose_runs_hotspot_and_prometheus() -> None:
    services = compose()["services"]
    assert set(services) == {"hotspot", "prometheus"}
    build = services["hotspot"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == ROOT / "Containerfile"
    assert "hotspot-state:/var/lib/hotspot" in services["hotspot"]["volumes"]
    assert set(compose()["volumes"]) >= {"hotspot-state", "prometheus-data"}


def test_published_ports_bind_the_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_prometheus_mounts_exist_and_load_the_alert_rules() -> None:
    mounts = bind_mounts(compose()["services"]["prometheus"])
    assert mounts["/etc/prometheus/prometheus.yml"] == DEPLOY / "prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == ROOT / "docs" / "prometheus" / "alerts.yml"
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["hotspot:8080"]


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: install Debian's `prometheus` package (.ci/run does)",
)
def test_promtool_checks_the_config_as_the_container_sees_it(tmp_path: Path) -> None:
    # Lay the files out as compose mounts them, so the relative rule_files path resolves the
    # same way and promtool loads the real alert rules.
    etc = tmp_path / "etc" / "prometheus"
    etc.mkdir(parents=True)
    for target, source in bind_mounts(compose()["services"]["prometheus"]).items():
        assert target.startswith("/etc/prometheus/")
        shutil.copy(source, etc / Path(target).name)
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(etc / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # promtool followed rule_files to the real alerts.yml and parsed its rules.
    assert "1 rule files found" in result.stdout
    found = re.search(r"alerts\.yml\s+SUCCESS: (\d+) rules found", result.stdout)
    assert found is not None, result.stdout
    assert int(found.group(1)) > 0
