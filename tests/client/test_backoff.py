"""Retry delays and the caller's budget, on a hand-moved clock (nothing sleeps)."""

from __future__ import annotations

import math

import pytest

from hotspot_client import UnavailableRetry
from hotspot_client.backoff import ANSWER_MARGIN, CallBudget


class HandClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def budget(
    clock: HandClock, jitter: float, retry: UnavailableRetry | None = None, **kwargs: float
) -> CallBudget:
    return CallBudget(retry or UnavailableRetry(), clock=clock, jitter=lambda: jitter, **kwargs)


def test_delays_double_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    clock = HandClock()
    retry = UnavailableRetry(first_delay=0.1, max_delay=0.5, give_up_after=1000)
    low = budget(clock, 0.0, retry)
    high = budget(clock, 1.0, retry)
    caps = [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    assert [low.next_delay() for _ in caps] == pytest.approx([c / 2 for c in caps])
    assert [high.next_delay() for _ in caps] == pytest.approx(caps)


def test_the_service_retry_delay_is_never_undercut() -> None:
    clock = HandClock()
    b = budget(clock, 1.0, max_wait=10)
    assert b.next_delay(asked=1.0) == 1.0
    assert b.next_delay(asked=None) == pytest.approx(0.1)


def test_no_retry_would_land_past_the_callers_budget() -> None:
    clock = HandClock()
    b = budget(clock, 1.0, UnavailableRetry(first_delay=0.1, max_delay=0.1), max_wait=0.35)
    assert b.next_delay() == pytest.approx(0.1)
    clock.now += 0.2
    assert b.next_delay() == pytest.approx(0.1)  # lands at 0.3 of 0.35
    clock.now += 0.1
    assert b.next_delay() is None


def test_retries_stop_at_give_up_after_even_with_a_longer_budget() -> None:
    clock = HandClock()
    b = budget(clock, 1.0, UnavailableRetry(first_delay=1, max_delay=1, give_up_after=2.5))
    assert b.next_delay() == 1
    clock.now += 1.0
    assert b.next_delay() == 1
    clock.now += 1.0
    assert b.next_delay() is None


def test_a_known_outage_allows_no_retry() -> None:
    assert budget(HandClock(), 0.0, max_wait=10, retry_for=0.0).next_delay() is None


def test_max_wait_shrinks_with_time_spent_and_sets_the_deadline() -> None:
    clock = HandClock()
    b = budget(clock, 0.0, max_wait=2.0)
    clock.now += 0.5
    assert b.max_wait_left() == pytest.approx(1.5)
    assert b.wait_left() == pytest.approx(1.5)
    assert b.deadline_left() == pytest.approx(1.5 + ANSWER_MARGIN)
    clock.now += 5
    assert b.max_wait_left() == 0.0


def test_no_max_wait_means_no_deadline_and_an_unbounded_wait() -> None:
    b = budget(HandClock(), 0.0)
    assert (b.max_wait_left(), b.deadline_left(), b.wait_left()) == (None, None, math.inf)


def test_a_timeout_is_the_deadline() -> None:
    clock = HandClock()
    b = budget(clock, 0.0, timeout=3.0)
    clock.now += 1
    assert b.deadline_left() == pytest.approx(2.0)
    assert b.max_wait_left() is None


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_a_negative_max_wait_is_refused_naming_the_rule(bad: float) -> None:
    with pytest.raises(ValueError, match="max_wait must be 0 or more seconds"):
        budget(HandClock(), 0.0, max_wait=bad)


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ({"first_delay": 0}, "first_delay must be positive"),
        ({"first_delay": 2, "max_delay": 1}, "max_delay must be at least first_delay"),
        ({"multiplier": 0.5}, "multiplier must be at least 1"),
        ({"give_up_after": -1}, "give_up_after must be 0 or more"),
    ],
)
def test_retry_settings_are_checked(options: dict[str, float], rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        UnavailableRetry(**options)
