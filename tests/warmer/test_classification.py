"""Major or regular, by which rule and why, for real-shaped fixtures and the default rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hotspot_client.optic_odds import Fixture
from hotspot_warmer.config import WarmerConfig
from hotspot_warmer.rules import classify

RULES = WarmerConfig.load().rules


def fixture(**fields: Any) -> Fixture:
    base: dict[str, Any] = {
        "id": "F",
        "start_date": "2026-02-08T23:30:00Z",
        "status": "unplayed",
        "season_type": "Regular Season",
        "tournament": None,
        "tournament_stage": None,
    }
    return Fixture.from_json({**base, **fields})


def league(league_id: str) -> dict[str, Any]:
    return {"id": league_id, "name": league_id.upper()}


TABLE = [
    (
        "NFL wild card (playoffs)",
        fixture(league=league("nfl"), season_type="Playoffs", tournament_stage="Wild Card"),
        "us-playoffs",
    ),
    (
        "the Super Bowl",
        fixture(
            league=league("nfl"),
            season_type="Playoffs",
            tournament="NFL Playoffs",
            tournament_stage="Super Bowl LX",
        ),
        "super-bowl",
    ),
    (
        "AFC Championship",
        fixture(league=league("nfl"), season_type="Playoffs", tournament_stage="AFC Championship"),
        "us-championship-games",
    ),
    ("an NBA regular-season game", fixture(league=league("nba")), None),
    (
        "NBA playoffs by tournament",
        fixture(league=league("nba"), tournament="nba-playoffs-2026", tournament_stage="Round 1"),
        "us-playoff-tournaments",
    ),
    (
        "a Champions League final",
        fixture(
            league=league("uefa_-_champions_league"),
            season_type=None,
            tournament="UEFA Champions League",
            tournament_stage="Final",
        ),
        "soccer-finals",
    ),
    (
        "a Champions League semi-final",
        fixture(league=league("uefa_-_champions_league"), tournament_stage="Semi-final"),
        "soccer-knockouts",
    ),
    (
        "a friendly",
        fixture(league=league("international_-_friendlies"), tournament="Club Friendlies"),
        None,
    ),
    ("a Premier League game", fixture(league=league("england_-_premier_league")), None),
]


@pytest.mark.parametrize(("what", "fx", "rule"), TABLE, ids=[t[0] for t in TABLE])
def test_each_fixture_gets_its_class_and_rule(what: str, fx: Fixture, rule: str | None) -> None:
    decision = classify(fx, RULES)
    assert decision.major is (rule is not None)
    assert (decision.rule.name if decision.rule else None) == rule
    if rule is None:
        assert decision.explain() == "F: regular (no rule matched)"
    else:
        assert decision.reasons  # every criterion of the rule says why


def test_the_explanation_names_the_rule_each_reason_and_the_others_that_matched() -> None:
    super_bowl = TABLE[1][1]
    text = classify(super_bowl, RULES).explain()
    assert text.splitlines()[0] == "F: major, rule 'super-bowl' (priority 100)"
    assert "because league.id 'nfl' is one of" in text
    assert "tournament_stage 'Super Bowl LX' matches /super ?bowl/" in text
    assert "also matched: us-playoffs, us-playoff-tournaments" in text


def test_explicit_fixture_ids_and_a_custom_file(tmp_path: Path) -> None:
    path = tmp_path / "warmer.toml"
    path.write_text(
        '[warming]\nlead = "30m"\nsportsbooks = ["Pinnacle"]\n\n'
        '[[rule]]\nname = "derby"\npriority = 5\nfixture_ids = ["F"]\n'
    )
    config = WarmerConfig.load(path)
    assert config.warming.lead == 1800.0
    decision = classify(fixture(), config.rules)
    assert decision.rule is not None
    assert decision.rule.name == "derby"
    assert decision.reasons == ("fixture id F is listed",)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[rule]]\nname = "empty"\n', "names no criterion"),
        ('[[rule]]\nname = "bad"\nnames = ["("]\n', "bad name pattern"),
        ("[warming]\nbudget_share = 1.5\n", "budget_share must be above 0 and at most 1"),
        ("[warmup]\n", r"unknown tables \['warmup'\]"),
        ('[warming]\nlead = "soon"\n', "lead"),
    ],
)
def test_a_bad_config_is_refused_with_its_reason(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "warmer.toml"
    path.write_text(toml)
    with pytest.raises(ValueError, match=message):
        WarmerConfig.load(path)
