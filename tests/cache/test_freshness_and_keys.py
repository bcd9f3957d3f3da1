"""Which freshness an answer gets, what shares a key, and how the counters are exported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from hotspot_client.optic_odds import Fixture
from hotspot_client.optic_odds.cache import CacheEntry, CacheEvent, CacheMetrics, cache_key
from hotspot_client.optic_odds.cache.freshness import Freshness, FreshnessRules
from hotspot_client.optic_odds.cache.prometheus import CacheCollector

NOW = datetime(2026, 2, 8, 23, 0, tzinfo=UTC)
RULES = FreshnessRules()


def fixture(
    status: str, *, starts_in: timedelta = timedelta(hours=2), live: bool = False
) -> Fixture:
    return Fixture.from_json(
        {"id": "F", "status": status, "is_live": live, "start_date": (NOW + starts_in).isoformat()}
    )


@pytest.mark.parametrize(
    ("endpoint", "fixtures", "expected"),
    [
        ("fixtures/odds", [fixture("live", live=True)], RULES.live_odds),
        ("fixtures/odds", [fixture("half")], RULES.live_odds),
        ("fixtures/odds", [fixture("unplayed")], RULES.pregame_odds),
        # Pre-game, but kick-off is 20 s away: fresh only until then, and served stale no
        # further into the game than live odds would be (30 s).
        (
            "fixtures/odds",
            [fixture("unplayed", starts_in=timedelta(seconds=20))],
            Freshness(20.0, RULES.live_odds.max_stale),
        ),
        # Kick-off 4 min away: fresh for 60 s, then stale until 30 s past kick-off.
        (
            "fixtures/odds",
            [fixture("unplayed", starts_in=timedelta(minutes=4))],
            Freshness(60.0, 240 + 30 - 60),
        ),
        # Kick-off passed and the status has not caught up: never less than live freshness.
        (
            "fixtures/odds",
            [fixture("unplayed", starts_in=timedelta(seconds=-5))],
            RULES.live_odds,
        ),
        ("fixtures/odds", [fixture("unplayed"), fixture("live")], RULES.live_odds),
        ("fixtures/results", [fixture("live")], RULES.results),
        ("fixtures/results", [fixture("completed"), fixture("cancelled")], RULES.final_results),
        ("fixtures/results", [fixture("completed"), fixture("live")], RULES.results),
    ],
)
def test_freshness_follows_what_the_answer_says(
    endpoint: str, fixtures: list[Fixture], expected: Freshness
) -> None:
    assert RULES.choose(endpoint, fixtures, NOW) == expected


def test_identical_requests_in_any_order_or_case_share_a_key() -> None:
    a = cache_key(
        "fixtures/odds",
        [("fixture_id", "F"), ("sportsbook", "DraftKings"), ("sportsbook", "Pinnacle")],
    )
    b = cache_key(
        "fixtures/odds",
        [
            ("sportsbook", "pinnacle"),
            ("fixture_id", "F"),
            ("sportsbook", "DRAFTKINGS"),
            ("odds_format", "american"),
        ],
    )
    assert a == b
    assert a.startswith("hotspot:odds:v1:fixtures/odds?")
    other_market = cache_key("fixtures/odds", [("fixture_id", "F"), ("market", "Moneyline")])
    other_fixture = cache_key("fixtures/odds", [("fixture_id", "G")])
    other_endpoint = cache_key("fixtures/odds/historical", [("fixture_id", "F")])
    assert len({a, other_market, other_fixture, other_endpoint}) == 4
    # Fixture ids are data, not names: their case matters.
    assert cache_key("fixtures/results", [("fixture_id", "f")]) != cache_key(
        "fixtures/results", [("fixture_id", "F")]
    )


def test_an_entry_survives_its_trip_through_bytes() -> None:
    entry = CacheEntry(b'{"data": []}\n', 1_800_000_000.125, 3.0, 30.0)
    assert CacheEntry.from_bytes(entry.to_bytes()) == entry
    with pytest.raises(ValueError, match="not a v1 cache entry"):
        CacheEntry.from_bytes(b'{"data": []}')


def test_counters_are_exported_per_endpoint_with_no_fixture_label() -> None:
    metrics = CacheMetrics()
    for _ in range(3):
        metrics.count("fixtures/odds", CacheEvent.HIT)
    metrics.count("fixtures/results", CacheEvent.STALE)
    registry = CollectorRegistry()
    registry.register(CacheCollector(metrics, endpoints=("fixtures/odds/historical",)))
    text = generate_latest(registry).decode()
    assert 'optic_odds_cache_hits_total{endpoint="fixtures/odds"} 3.0' in text
    assert 'optic_odds_cache_stale_served_total{endpoint="fixtures/results"} 1.0' in text
    assert 'optic_odds_cache_misses_total{endpoint="fixtures/odds/historical"} 0.0' in text
    assert "fixture_id" not in text
