"""Every setting as a flag, a HOTSPOT_* variable and a TOML key; the README lists all three."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from hotspot_server.settings import (
    Settings,
    env_var,
    load_settings,
    setting_values,
    settings_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE = re.compile(r"(<!-- settings-table -->\n)(.*?)(<!-- /settings-table -->)", re.DOTALL)


def test_precedence_is_flag_then_environment_then_config_then_default(tmp_path: Path) -> None:
    config = tmp_path / "hotspot.toml"
    config.write_text("limit = 10\nqueue = 7\n")
    environ = {"HOTSPOT_LIMIT": "20", "HOTSPOT_CONFIG": str(config)}
    assert load_settings(["--limit", "30"], environ).policy.limit == 30
    settings = load_settings([], environ)
    assert (settings.policy.limit, settings.policy.queue, settings.policy.window) == (20, 7, 60.0)
    assert load_settings(["--config", str(config)], {}).policy.limit == 10
    assert load_settings([], {}).policy.limit == 50


def test_every_key_is_read_from_its_environment_variable() -> None:
    """Generic over the keys, so a key added later is covered without a new test."""
    for key in setting_values(Settings()):
        garbage = {env_var(key): "!bad"}
        status: object = None
        try:
            taken = setting_values(load_settings([], garbage))[key]
        except SystemExit as exit_:  # the variable was read, and its value refused
            status = exit_.code
        else:  # the variable was read, and taken as it is
            assert str(taken) == "!bad", key  # str: a path setting holds a Path
        assert status in (None, 2), key


def test_an_empty_variable_counts_as_unset() -> None:
    assert load_settings([], {"HOTSPOT_LIMIT": ""}).policy.limit == 50


def test_a_bad_variable_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        load_settings([], {"HOTSPOT_ALERT_RATIO": "hot"})
    assert info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert (
        "alert_ratio: could not convert string to float: 'hot' (from HOTSPOT_ALERT_RATIO)" in line
    )


def test_readme_lists_every_setting_in_its_three_spellings() -> None:
    """UPDATE_README=1 rewrites the table from the settings; otherwise it must match them."""
    text = README.read_text()
    match = TABLE.search(text)
    assert match, "README.md lost its <!-- settings-table --> markers"
    if os.environ.get("UPDATE_README"):
        README.write_text(TABLE.sub(lambda m: m[1] + settings_table() + m[3], text))
        return
    assert match[2] == settings_table(), (
        "the README's settings table is stale: UPDATE_README=1 "
        ".venv/bin/python -m pytest tests/ops/test_settings_sources.py rewrites it"
    )
