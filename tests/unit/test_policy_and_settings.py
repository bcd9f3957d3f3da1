"""PermitPolicy rules, durations, flags and the TOML config."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotspot_core.durations import parse_duration
from hotspot_core.policy import PermitPolicy
from hotspot_server.settings import load_settings, parse_address


def test_default_alert_thresholds_are_40_and_35() -> None:
    policy = PermitPolicy()
    assert (policy.limit, policy.window, policy.queue) == (50, 60.0, 100)
    assert (policy.raise_at, policy.clear_below) == (40, 35)


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"limit": 0}, "limit must be at least 1"),
        ({"window": 0}, "window must be positive"),
        ({"queue": -1}, "queue must be 0 or more"),
        ({"alert_ratio": 0.05}, "alert_ratio must be above 0.1"),
        ({"lease": 0}, "lease must be positive"),
        ({"max_fixtures": 0}, "max_fixtures must be at least 1"),
    ],
)
def test_policy_rules(kwargs: dict[str, float], rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        PermitPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60s", 60), ("500ms", 0.5), ("2m", 120), ("1h", 3600), ("1.5s", 1.5), ("7", 7), (3, 3)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5 minutes", "-1s", "1d", "s"])
def test_bad_durations_name_the_format(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


def test_addresses() -> None:
    assert parse_address("127.0.0.1:50051") == ("127.0.0.1", 50051)
    assert parse_address("[::1]:80") == ("::1", 80)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address("localhost")


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "hotspot.toml"
    config.write_text('limit = 10\nwindow = "2s"\nalert-ratio = 0.5\nmax_wait = "500ms"\n')
    settings = load_settings(["--config", str(config), "--limit", "20", "--grace", "1s"])
    assert settings.policy.limit == 20
    assert settings.policy.window == 2.0
    assert settings.policy.alert_ratio == 0.5
    assert settings.policy.max_wait == 0.5
    assert settings.grace == 1.0
    assert settings.listen == "127.0.0.1:50051"


def test_unknown_config_key_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hotspot.toml"
    config.write_text("limt = 10\n")
    with pytest.raises(SystemExit) as info:
        load_settings(["--config", str(config)])
    assert info.value.code == 2
    assert "unknown keys ['limt']" in capsys.readouterr().err


def test_bad_flag_value_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_settings(["--window", "soon"])
    assert "window: not a duration" in capsys.readouterr().err
