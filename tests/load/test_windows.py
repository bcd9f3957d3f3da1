"""The generator's own over-limit check: a call may reach the upstream anywhere from its grant to
its release, so a window catches every call whose span it touches."""

from __future__ import annotations

from hotspot_load.windows import (
    most_grants_in_any_window,
    most_in_any_window,
    over_limit_fixtures,
)


def test_calls_a_window_apart_never_meet() -> None:
    # Released at 1 and granted at 1 + window: no window-long interval holds both.
    assert most_in_any_window([0.0, 11.0], [1.0, 11.5], window=10.0) == 1


def test_a_release_keeps_its_call_in_reach_of_a_later_grant() -> None:
    # Granted at 0, released at 5: a call at 5 and one granted at 14 fit in [5, 15).
    assert most_in_any_window([0.0, 14.0], [5.0, 14.0], window=10.0) == 2
    # By grant times alone they are 14 apart: the release is what joins them.
    assert most_grants_in_any_window([0.0, 14.0], window=10.0) == 1


def test_over_limit_fixtures_names_only_the_fixture_over() -> None:
    fixtures = [0, 0, 0, 1, 1, 1]
    granted = [0.0, 1.0, 2.0, 0.0, 10.0, 20.0]
    released = [0.5, 1.5, 2.5, 0.5, 10.5, 20.5]
    assert over_limit_fixtures(fixtures, granted, released, window=10.0, limit=2) == {0: 3}
