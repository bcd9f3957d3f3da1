"""Fixtures, odds and results shaped like Optic Odds v3, derived from the fixture id.

Any fixture id is served: its teams, start time, prices and score come from a
hash of the id, so the same id always gets the same answer and a demo or test
can use whatever ids it likes without seeding anything.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

JSON = dict[str, Any]

SEEDED_FIXTURE_IDS = ("20260831B2BB37AB", "2026090120B43D21", "20260902A7C1E0F4")
"""What GET /fixtures lists when no id is asked for (and no test listed its own)."""
LIVE_STATUSES = frozenset({"live", "half"})
FINAL_STATUSES = frozenset({"completed", "cancelled"})

SPORTSBOOKS = {
    "draftkings": "DraftKings",
    "fanduel": "FanDuel",
    "pinnacle": "Pinnacle",
    "betmgm": "BetMGM",
    "caesars": "Caesars",
    "bet365": "bet365",
}
MARKETS = {"moneyline": "Moneyline", "point_spread": "Point Spread", "total_points": "Total Points"}

# (sport, league, teams); display names are the ids in title or upper case.
_LEAGUES = (
    ("basketball", "nba", ("Boston Celtics", "Denver Nuggets", "Miami Heat")),
    ("football", "nfl", ("Kansas City Chiefs", "Buffalo Bills", "Dallas Cowboys")),
    ("baseball", "mlb", ("New York Yankees", "Los Angeles Dodgers", "Chicago Cubs")),
)
_BASE_DATE = datetime(2026, 8, 31, 23, 0, tzinfo=UTC)


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256(":".join(parts).encode()).digest()[:8], "big")


def _competitor(name: str, n: int) -> JSON:
    slug = name.upper().replace(" ", "_")
    return {
        "id": slug,
        "name": name,
        "numerical_id": 1000 + n,
        "base_id": 500 + n,
        "abbreviation": "".join(word[0] for word in name.split()).upper(),
        "logo": f"https://cdn.example.invalid/logos/{slug}.png",
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def fixture(fixture_id: str) -> JSON:
    """The fixture object for any id."""
    h = _digest(fixture_id)
    sport_id, league_id, teams = _LEAGUES[h % len(_LEAGUES)]
    home_i = (h >> 8) % len(teams)
    away_i = (home_i + 1 + (h >> 16) % (len(teams) - 1)) % len(teams)
    home, away = teams[home_i], teams[away_i]
    start = _BASE_DATE + timedelta(hours=(h >> 24) % 240)
    return {
        "id": fixture_id,
        "numerical_id": h % 1_000_000,
        "game_id": f"{(h >> 4) % 100000:05d}-{(h >> 12) % 100000:05d}-{start:%Y-%m-%d-%H}",
        "start_date": _iso(start),
        "home_competitors": [_competitor(home, home_i)],
        "away_competitors": [_competitor(away, away_i)],
        "home_team_display": home,
        "away_team_display": away,
        "status": "unplayed",
        "is_live": False,
        "sport": {"id": sport_id, "name": sport_id.title(), "numerical_id": 10 + h % 3},
        "league": {"id": league_id, "name": league_id.upper(), "numerical_id": 100 + h % 7},
        "tournament": None,
        "tournament_stage": None,
        "season_type": "Regular Season",
        "season_year": str(start.year),
        "season_week": str(1 + (h >> 32) % 17),
        "has_odds": True,
        "updated_at": _iso(_BASE_DATE - timedelta(days=1)),
    }


def _odd(fx: JSON, book_id: str, market_id: str, selection: str, line: str | None) -> JSON:
    h = _digest(fx["id"], book_id, market_id, selection)
    points: float | None = None
    name = selection
    if market_id == "point_spread":
        points = (1 if line == "home" else -1) * (1.5 + (h % 8))
        name = f"{selection} {points:+g}"
    elif market_id == "total_points":
        points = 200.5 + (h % 30)
        name = f"{selection.title()} {points:g}"
    price = -110 - (h % 40) if h % 2 else 100 + (h % 60)
    normalized = selection.lower().replace(" ", "_")
    return {
        "id": f"{fx['game_id']}:{book_id}:{market_id}:{normalized}",
        "sportsbook": SPORTSBOOKS[book_id],
        "market": MARKETS[market_id],
        "market_id": market_id,
        "name": name,
        "is_main": True,
        "selection": selection,
        "normalized_selection": normalized,
        "selection_line": line if line in ("over", "under") else None,
        "points": points,
        "price": price,
        "timestamp": 1788217200.0 + (h % 3600) + (h % 1000) / 1000,
        "grouping_key": "default" if points is None else f"default:{abs(points):.2f}",
        "player_id": None,
        "team_id": None,
        "deep_link": None,
        "limits": None,
    }


def odds(fx: JSON, sportsbook_ids: list[str], market_ids: list[str]) -> list[JSON]:
    """One odd per selection, for the known sportsbooks and markets asked for."""
    home, away = fx["home_team_display"], fx["away_team_display"]
    selections = {
        "moneyline": ((home, "home"), (away, "away")),
        "point_spread": ((home, "home"), (away, "away")),
        "total_points": (("over", "over"), ("under", "under")),
    }
    return [
        _odd(fx, book, market, selection, line)
        for book in sportsbook_ids
        for market in market_ids
        for selection, line in selections[market]
    ]


def result(fx: JSON) -> JSON:
    """The fixture as a finished game, with its score."""
    h = _digest(fx["id"], "result")
    home, away = 80 + h % 40, 80 + (h >> 8) % 40
    return {
        **fx,
        "status": "completed",
        "result": {
            "scores": {"home": {"total": home}, "away": {"total": away}},
            "in_play": {"period": None, "clock": None},
        },
    }


def known_id(table: dict[str, str], name: str) -> str | None:
    """The id of a sportsbook or market named by id or display name, any case; None if unknown."""
    key = name.strip().lower()
    if key in table:
        return key
    return next((i for i, display in table.items() if display.lower() == key), None)
