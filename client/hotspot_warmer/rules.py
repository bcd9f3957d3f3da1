"""Major-event rules: which fixtures are major, by which rule, and why.

A rule matches when every criterion it names matches (and); a criterion matches
when any of its values does (or). Of the rules that match, the highest priority
wins; a fixture that matches none is regular.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hotspot_client.optic_odds import Fixture

CRITERIA = ("fixture_ids", "leagues", "season_types", "tournaments", "names")


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int = 0
    fixture_ids: tuple[str, ...] = ()
    """Explicit fixture ids."""
    leagues: tuple[str, ...] = ()
    """`league.id`, e.g. nfl, nba, uefa_-_champions_league (any case)."""
    season_types: tuple[str, ...] = ()
    """`season_type`, e.g. Playoffs (any case)."""
    tournaments: tuple[str, ...] = ()
    """Text found in `tournament` or `tournament_stage` (any case), e.g. playoffs."""
    names: tuple[str, ...] = ()
    """Regular expressions (any case) searched in the fixture's names: tournament,
    tournament stage, and "home vs away"."""
    _patterns: tuple[re.Pattern[str], ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a rule needs a name")
        if not any(getattr(self, c) for c in CRITERIA):
            raise ValueError(
                f"rule {self.name!r} names no criterion (one of {', '.join(CRITERIA)})"
            )
        try:
            patterns = tuple(re.compile(n, re.IGNORECASE) for n in self.names)
        except re.error as error:
            raise ValueError(f"rule {self.name!r}: bad name pattern: {error}") from None
        object.__setattr__(self, "_patterns", patterns)

    def explain(self, fixture: Fixture) -> list[str] | None:
        """Why the rule matches, one reason per criterion; None if it does not."""
        reasons: list[str] = []
        for criterion in CRITERIA:
            wanted = getattr(self, criterion)
            if not wanted:
                continue
            reason = getattr(self, f"_match_{criterion}")(fixture)
            if reason is None:
                return None
            reasons.append(reason)
        return reasons

    def _match_fixture_ids(self, fixture: Fixture) -> str | None:
        return f"fixture id {fixture.id} is listed" if fixture.id in self.fixture_ids else None

    def _match_leagues(self, fixture: Fixture) -> str | None:
        league = (fixture.league.id or "") if fixture.league else ""
        hit = league.casefold() in {w.casefold() for w in self.leagues}
        return f"league.id {league!r} is one of {list(self.leagues)}" if hit and league else None

    def _match_season_types(self, fixture: Fixture) -> str | None:
        season = fixture.season_type or ""
        hit = season.casefold() in {w.casefold() for w in self.season_types}
        return f"season_type {season!r} is one of {list(self.season_types)}" if hit else None

    def _match_tournaments(self, fixture: Fixture) -> str | None:
        for where, text in _tournament_texts(fixture):
            for wanted in self.tournaments:
                if wanted.casefold() in text.casefold():
                    return f"{where} {text!r} contains {wanted!r}"
        return None

    def _match_names(self, fixture: Fixture) -> str | None:
        texts = [*_tournament_texts(fixture), ("teams", _teams(fixture))]
        for where, text in texts:
            for pattern in self._patterns:
                if pattern.search(text):
                    return f"{where} {text!r} matches /{pattern.pattern}/"
        return None


@dataclass(frozen=True)
class Decision:
    fixture_id: str
    major: bool
    rule: Rule | None
    reasons: tuple[str, ...]
    """Why the winning rule matched; empty for a regular fixture."""
    also_matched: tuple[str, ...] = ()
    """Other rules that matched, with a lower priority."""

    def explain(self) -> str:
        if self.rule is None:
            return f"{self.fixture_id}: regular (no rule matched)"
        lines = [
            f"{self.fixture_id}: major, rule {self.rule.name!r} (priority {self.rule.priority})"
        ]
        lines += [f"  because {reason}" for reason in self.reasons]
        if self.also_matched:
            lines.append(f"  also matched: {', '.join(self.also_matched)}")
        return "\n".join(lines)


def classify(fixture: Fixture, rules: Sequence[Rule]) -> Decision:
    matched = [(rule, reasons) for rule in rules if (reasons := rule.explain(fixture)) is not None]
    if not matched:
        return Decision(fixture.id, major=False, rule=None, reasons=())
    # Highest priority first; among equals, the one listed first (a stable sort keeps it).
    matched.sort(key=lambda m: -m[0].priority)
    (rule, reasons), rest = matched[0], matched[1:]
    return Decision(fixture.id, True, rule, tuple(reasons), tuple(r.name for r, _ in rest))


def _text(value: Any) -> str:
    if isinstance(value, dict):  # some feeds send {"id", "name"} objects
        return str(value.get("name") or value.get("id") or "")
    return "" if value is None else str(value)


def _tournament_texts(fixture: Fixture) -> list[tuple[str, str]]:
    pairs = [("tournament", _text(fixture.tournament))]
    pairs.append(("tournament_stage", _text(fixture.tournament_stage)))
    return [(where, text) for where, text in pairs if text]


def _teams(fixture: Fixture) -> str:
    return f"{fixture.home_team_display or ''} vs {fixture.away_team_display or ''}"
