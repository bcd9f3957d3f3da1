"""Alert hysteresis: the cool-down threshold stays at least one call below the raise threshold."""

from __future__ import annotations

import pytest

from hotspot_core.alerts import AlertBoard
from hotspot_core.policy import PermitPolicy


@pytest.mark.parametrize("alert_ratio", [0.11, 0.2, 0.5, 0.75, 0.8, 0.95, 1.0])
def test_clear_below_leaves_a_gap_at_every_limit(alert_ratio: float) -> None:
    for limit in range(2, 501):
        policy = PermitPolicy(limit=limit, alert_ratio=alert_ratio)
        if policy.raise_at == 1:
            # Nothing lies between 1 and 0 calls: the fixture cools when its window empties.
            assert policy.clear_below == 1
            continue
        assert 1 <= policy.clear_below <= policy.raise_at - 1, (limit, alert_ratio)


def test_the_default_thresholds_stay_40_and_35() -> None:
    assert (PermitPolicy().raise_at, PermitPolicy().clear_below) == (40, 35)


def test_a_small_limit_does_not_flap_at_the_threshold() -> None:
    policy = PermitPolicy(limit=5)
    assert (policy.raise_at, policy.clear_below) == (4, 3)
    board = AlertBoard(threshold=policy.raise_at, clear_below=policy.clear_below)
    hot = board.observe("f", 4, False, at=0.0)
    assert hot
    # One call leaving the window (4 -> 3) keeps it hot; the next (3 -> 2) cools it.
    hot = board.observe("f", 3, hot, at=1.0)
    assert hot
    assert not board.observe("f", 2, hot, at=2.0)
