"""WarmerConfig: the TOML file's [warming] settings and its [[rule]]s."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hotspot_client.optic_odds.cache import Freshness, FreshnessRules
from hotspot_client.optic_odds.query import MAX_SPORTSBOOKS
from hotspot_core.durations import parse_duration
from hotspot_warmer.rules import Rule

DEFAULT_CONFIG = resources.files("hotspot_warmer").joinpath("default_warmer.toml")
_FRESHNESS = ("live_fresh", "live_max_stale", "pregame_fresh", "pregame_max_stale")
_DURATIONS = ("lead", "lookahead", "poll_every", "max_game_length", "window", *_FRESHNESS)
_RULE_LISTS = ("fixture_ids", "leagues", "season_types", "tournaments", "names")


@dataclass(frozen=True)
class WarmingSettings:
    lead: float = 900.0
    lookahead: float = 7200.0
    poll_every: float = 60.0
    max_game_length: float = 6 * 3600.0
    budget_share: float = 0.2
    limit: int = 50
    window: float = 60.0
    sportsbooks: tuple[str, ...] = ("DraftKings",)
    markets: tuple[str, ...] = ()
    # The freshness the warmer's entries carry in the shared cache: every reader serves an
    # entry by the freshness stored with it, so these should match the gateways' CACHE_*.
    live_fresh: float = 3.0
    live_max_stale: float = 30.0
    pregame_fresh: float = 60.0
    pregame_max_stale: float = 300.0

    def __post_init__(self) -> None:
        if not 0 < self.budget_share <= 1:
            raise ValueError(f"budget_share must be above 0 and at most 1, got {self.budget_share}")
        if self.limit < 1 or self.window <= 0:
            raise ValueError("limit must be at least 1 and window above 0")
        if not self.sportsbooks:
            raise ValueError("sportsbooks must name at least one sportsbook")
        if self.lead < 0 or self.poll_every <= 0 or self.lookahead <= 0:
            raise ValueError("lead must be 0 or more; poll_every and lookahead above 0")
        if any(not getattr(self, name) >= 0 for name in _FRESHNESS):
            raise ValueError(f"{', '.join(_FRESHNESS)} must be 0 or more")

    @property
    def freshness(self) -> FreshnessRules:
        """The cache's freshness rules for what the warmer stores."""
        return FreshnessRules(
            live_odds=Freshness(self.live_fresh, self.live_max_stale),
            pregame_odds=Freshness(self.pregame_fresh, self.pregame_max_stale),
        )

    @property
    def sportsbook_batches(self) -> list[tuple[str, ...]]:
        """The sportsbooks in calls of at most 5, as the API takes them."""
        books = self.sportsbooks
        return [books[i : i + MAX_SPORTSBOOKS] for i in range(0, len(books), MAX_SPORTSBOOKS)]

    @property
    def refresh_every(self) -> float:
        """Seconds between refreshes of one fixture, so that its calls stay within
        budget_share x limit per window (each refresh makes one call per batch)."""
        calls_per_window = self.budget_share * self.limit
        return self.window * len(self.sportsbook_batches) / calls_per_window


@dataclass(frozen=True)
class WarmerConfig:
    warming: WarmingSettings
    rules: tuple[Rule, ...]

    @classmethod
    def load(cls, path: Path | None = None) -> WarmerConfig:
        """The file at `path`, or the packaged defaults; ValueError names what is wrong."""
        text = path.read_text() if path is not None else DEFAULT_CONFIG.read_text()
        where = str(path) if path is not None else "the default config"
        try:
            return cls.from_toml(tomllib.loads(text))
        except (tomllib.TOMLDecodeError, ValueError, TypeError) as error:
            raise ValueError(f"{where}: {error}") from None

    @classmethod
    def from_toml(cls, data: dict[str, Any]) -> WarmerConfig:
        unknown = set(data) - {"warming", "rule"}
        if unknown:
            raise ValueError(f"unknown tables {sorted(unknown)}: use [warming] and [[rule]]")
        warming = dict(data.get("warming", {}))
        for key in _DURATIONS:
            if key in warming:
                try:
                    warming[key] = parse_duration(str(warming[key]))
                except ValueError as error:
                    raise ValueError(f"warming.{key}: {error}") from None
        for key in ("sportsbooks", "markets"):
            if key in warming:
                warming[key] = tuple(warming[key])
        rules = []
        for raw in data.get("rule", []):
            rule = dict(raw)
            for key in _RULE_LISTS:
                if key in rule:
                    rule[key] = tuple(rule[key])
            rules.append(Rule(**rule))
        return cls(WarmingSettings(**warming), tuple(rules))
