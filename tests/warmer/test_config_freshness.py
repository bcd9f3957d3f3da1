"""[warming]'s freshness keys: the freshness the warmer's entries carry in the shared cache."""

from __future__ import annotations

import tomllib

import pytest

from hotspot_client.optic_odds.cache import Freshness
from hotspot_warmer.config import WarmerConfig, WarmingSettings


def test_the_defaults_match_the_cache_defaults_and_the_file_can_set_them() -> None:
    default = WarmerConfig.load().warming.freshness
    assert (default.live_odds, default.pregame_odds) == (Freshness(3, 30), Freshness(60, 300))
    config = WarmerConfig.from_toml(
        tomllib.loads(
            '[warming]\nlive_fresh = "300ms"\nlive_max_stale = "3s"\n'
            'pregame_fresh = "10s"\npregame_max_stale = "1m"\n'
        )
    )
    rules = config.warming.freshness
    assert (rules.live_odds, rules.pregame_odds) == (Freshness(0.3, 3.0), Freshness(10.0, 60.0))


def test_a_negative_freshness_is_refused() -> None:
    with pytest.raises(ValueError, match=r"warming\.live_fresh: not a duration"):
        WarmerConfig.from_toml({"warming": {"live_fresh": -1}})
    with pytest.raises(ValueError, match="must be 0 or more"):
        WarmingSettings(pregame_max_stale=-1.0)
