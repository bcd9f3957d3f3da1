"""FixtureWindow: the sliding log and its grant-time forecast."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotspot_core.window import FixtureWindow


def window_of(*leaves_at: float) -> FixtureWindow:
    w = FixtureWindow()
    for t in leaves_at:
        w.record(t)
    return w


def test_prune_drops_grants_that_have_left() -> None:
    w = window_of(1.0, 2.0, 2.0, 5.0)
    assert w.count_at(2.0) == 1
    assert len(w) == 4  # count_at does not change the log
    w.prune(2.0)
    assert len(w) == 1


def test_refund_takes_back_one_grant() -> None:
    w = window_of(1.0, 2.0, 2.0)
    assert w.refund(2.0)
    assert len(w) == 2
    assert not w.refund(7.0)


def test_full_window_stays_small() -> None:
    # 50 grants fit in a packed array: the bulk of the 1 KiB-per-fixture budget.
    import sys

    w = window_of(*[float(i) for i in range(50)])
    assert sys.getsizeof(w) <= 600


def simulate(
    log: list[float], n: int, now: float, limit: int, window: float, not_before: float
) -> float:
    """Grant n requests one by one at the earliest moment the window allows."""
    times = list(log)  # leave times of grants already made
    t = max(now, not_before)
    for _ in range(n):
        while True:
            in_window = [x for x in times if x > t]
            if len(in_window) < limit:
                break
            t = sorted(in_window)[len(in_window) - limit]  # the moment enough of them leave
        times.append(t + window)
    return t


@given(
    limit=st.integers(1, 6),
    n=st.integers(1, 20),
    offsets=st.lists(st.floats(0.01, 10.0), max_size=6),
    pause=st.floats(0.0, 25.0),
)
def test_grant_time_matches_a_one_by_one_simulation(
    limit: int, n: int, offsets: list[float], pause: float
) -> None:
    window, now = 10.0, 100.0
    log = sorted(now + o for o in offsets)[-limit:]  # never more than limit in the window
    w = window_of(*log)
    expected = simulate(log, n, now, limit, window, now + pause)
    got = w.grant_time(n, now, limit=limit, window=window, not_before=now + pause)
    assert got == pytest.approx(expected)
