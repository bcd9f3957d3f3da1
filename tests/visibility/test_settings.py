"""The visibility flags and config keys: --http, --metrics-max-fixtures, --alert-webhook."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotspot_server.settings import DEFAULT_HTTP, Settings, load_settings


def test_command_line_defaults() -> None:
    settings = load_settings([])
    assert settings.http == DEFAULT_HTTP == "127.0.0.1:8080"
    assert settings.metrics_max_fixtures == 1000
    assert settings.alert_webhook is None
    # Embedded (tests, benchmarks): no HTTP side unless asked for.
    assert Settings().http is None


def test_flags_set_them() -> None:
    settings = load_settings(
        [
            "--http",
            "127.0.0.1:9100",
            "--metrics-max-fixtures",
            "50",
            "--alert-webhook",
            "https://alerts.example/hotspot",
        ]
    )
    assert settings.http == "127.0.0.1:9100"
    assert settings.metrics_max_fixtures == 50
    assert settings.alert_webhook == "https://alerts.example/hotspot"
    assert load_settings(["--http", "off"]).http is None
    assert load_settings(["--http", "OFF"]).http is None


def test_config_file_sets_them_and_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "hotspot.toml"
    config.write_text(
        'http = "off"\nmetrics-max-fixtures = 7\nalert_webhook = "http://127.0.0.1:9/hook"\n'
    )
    settings = load_settings(["--config", str(config)])
    assert (settings.http, settings.metrics_max_fixtures) == (None, 7)
    assert settings.alert_webhook == "http://127.0.0.1:9/hook"
    assert load_settings(["--config", str(config), "--http", "127.0.0.1:0"]).http == "127.0.0.1:0"


@pytest.mark.parametrize(
    ("argv", "rule"),
    [
        (["--http", "8080"], "http: not a HOST:PORT address"),
        (["--http", "127.0.0.1:99999"], "http: not a HOST:PORT address"),
        (["--metrics-max-fixtures", "-1"], "metrics_max_fixtures must be 0 or more"),
        (["--metrics-max-fixtures", "many"], "metrics_max_fixtures: invalid literal"),
        (["--alert-webhook", "ftp://example/x"], "alert_webhook: not an http:// or https:// URL"),
        (["--alert-webhook", "http://"], "alert_webhook: not an http:// or https:// URL"),
    ],
)
def test_bad_values_name_the_rule(
    argv: list[str], rule: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        load_settings(argv)
    assert info.value.code == 2
    assert rule in capsys.readouterr().err
