"""The warming board's rules: what an announcement may say, whose it replaces, when it lapses,
and what a snapshot lists."""

from __future__ import annotations

import pytest

from hotspot_core.errors import InvalidArgument
from hotspot_core.warming_board import (
    MAX_ANNOUNCERS,
    MAX_ANNOUNCERS_PER_CALLER,
    MAX_LISTED,
    MAX_WARMINGS,
    ScheduledWarming,
    TooManyAnnouncers,
    WarmingBoard,
)

NOW = 1_800_000_000.0


def warming(fixture_id: str, starts_in: float = 600, rule: str = "super-bowl") -> ScheduledWarming:
    starts = NOW + starts_in
    return ScheduledWarming(fixture_id, rule, starts, starts + 900, starts + 900 + 4 * 3600)


def test_an_announcement_replaces_the_same_announcers_and_an_empty_one_withdraws_it() -> None:
    board = WarmingBoard()
    assert board.announce("warmer", "a", [warming("sb"), warming("final")], 60, NOW) == NOW + 60
    board.announce("warmer", "a", [warming("final")], 60, NOW + 1)  # sb was cancelled
    assert [w.fixture_id for w in board.listed(NOW + 2)] == ["final"]
    board.announce("warmer", "a", [], None, NOW + 3)
    assert board.listed(NOW + 3) == []


def test_announcements_lapse_after_their_ttl_and_ended_warmings_are_not_listed() -> None:
    board = WarmingBoard()
    board.announce("warmer", "a", [warming("sb")], 30, NOW)
    board.announce("warmer", "b", [warming("old", starts_in=-5 * 3600)], None, NOW)
    assert [w.fixture_id for w in board.listed(NOW + 29.9)] == ["sb"]  # "old" ended an hour ago
    assert board.listed(NOW + 30) == []  # `a` lapsed; `b` lists nothing live


def test_one_row_per_fixture_the_earliest_start_soonest_first_at_most_max_listed() -> None:
    board = WarmingBoard()
    board.announce("one", "a", [warming("sb", 900), warming("cl", 60)], None, NOW)
    board.announce("two", "a", [warming("sb", 300)], None, NOW)
    listed = board.listed(NOW)
    assert [(w.fixture_id, w.starts_at - NOW) for w in listed] == [("cl", 60), ("sb", 300)]
    assert [w.state(NOW) for w in listed] == ["scheduled", "scheduled"]
    assert listed[0].state(NOW + 60) == "running"
    many = [warming(f"f{i:03d}", i) for i in range(MAX_WARMINGS)]
    board.announce("three", "a", many, None, NOW)
    assert len(board.listed(NOW)) == MAX_LISTED


def test_caps_per_caller_and_in_all_refuse_a_new_announcer_not_a_renewal() -> None:
    board = WarmingBoard()
    for i in range(MAX_ANNOUNCERS_PER_CALLER):
        board.announce("greedy", f"a{i}", [warming("sb")], None, NOW)
    with pytest.raises(TooManyAnnouncers) as refused:
        board.announce("greedy", "one-more", [warming("sb")], None, NOW)
    assert (refused.value.scope, refused.value.limit) == ("caller", MAX_ANNOUNCERS_PER_CALLER)
    assert "one caller may keep at most 4" in str(refused.value)
    board.announce("greedy", "a0", [warming("cl")], None, NOW)  # a renewal always fits
    for i in range(MAX_ANNOUNCERS - MAX_ANNOUNCERS_PER_CALLER):
        board.announce(f"caller{i}", "a", [warming("sb")], None, NOW)
    with pytest.raises(TooManyAnnouncers) as refused:
        board.announce("latecomer", "a", [warming("sb")], None, NOW)
    assert refused.value.scope == "server"
    # A lapsed announcement frees its place.
    assert board.announce("latecomer", "a", [warming("sb")], None, NOW + 301) == NOW + 601


def test_a_caller_cannot_replace_or_withdraw_another_callers_announcement() -> None:
    board = WarmingBoard()
    board.announce("warmer", "main", [warming("sb")], None, NOW)
    board.announce("intruder", "main", [], None, NOW)
    board.announce("intruder", "main", [warming("other")], None, NOW)
    assert {w.fixture_id for w in board.listed(NOW)} == {"sb", "other"}


@pytest.mark.parametrize(
    ("announcer", "warmings", "ttl", "field", "rule"),
    [
        ("", [], None, "announcer", "announcer must be 1 to 64 characters"),
        ("a b", [], None, "announcer", "announcer must be 1 to 64 characters"),
        ("a", [warming("sb")] * 2, None, "warmings.fixture_id", "each fixture once"),
        ("a", [warming("x")] * (MAX_WARMINGS + 1), None, "warmings", "at most 200 warmings"),
        ("a", [warming("bad id")], None, "fixture_id", "fixture_id must be"),
        ("a", [warming("sb", rule="\x1b[31m")], None, "warmings.rule", "printable ASCII"),
        ("a", [warming("sb", rule="r" * 65)], None, "warmings.rule", "at most 64"),
        ("a", [ScheduledWarming("sb", "", 0, 0, 0)], None, "warmings.starts_at", "all set"),
        ("a", [ScheduledWarming("sb", "", NOW + 9, NOW, NOW)], None, "warmings.starts_at", "<="),
        ("a", [ScheduledWarming("sb", "", NOW, NOW, NOW + 3 * 86400)], None, "warmings.ends_at",
         "at most 48 h"),
        ("a", [warming("sb")], 0.5, "ttl", "ttl must be from 1 s to 3600 s"),
        ("a", [warming("sb")], 3601, "ttl", "ttl must be from 1 s to 3600 s"),
    ],
)  # fmt: skip
def test_bad_announcements_are_refused_naming_the_rule_and_change_nothing(
    announcer: str, warmings: list[ScheduledWarming], ttl: float | None, field: str, rule: str
) -> None:
    board = WarmingBoard()
    board.announce("warmer", "a", [warming("kept")], None, NOW)
    with pytest.raises(InvalidArgument) as refused:
        board.announce("warmer", announcer, warmings, ttl, NOW)
    assert refused.value.field == field
    assert rule in str(refused.value)
    assert [w.fixture_id for w in board.listed(NOW)] == ["kept"]
