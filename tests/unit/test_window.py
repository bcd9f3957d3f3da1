"""FixtureWindow: grants held from grant to release + window, and the grant-time forecast."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotspot_core.window import FixtureWindow


def window_of(held: list[float] = (), released: list[float] = ()) -> FixtureWindow:  # type: ignore[assignment]
    w = FixtureWindow()
    for t in held:
        w.record(t)
    w.released.extend(sorted(released))
    return w


def test_a_grant_in_flight_counts_until_it_is_released_then_one_window_more() -> None:
    w = window_of(held=[1.0, 2.0])
    assert w.count_at(1000.0) == 2  # in flight: no time ends it
    assert w.release(1.0, 15.0)
    assert (w.count_at(14.9), w.count_at(15.0)) == (2, 1)
    assert not w.release(7.0, 20.0)  # no such grant in flight
    w.prune(15.0)
    assert len(w) == 1
    assert list(w.held) == [2.0]


def test_refund_frees_the_slot_at_once() -> None:
    w = window_of(held=[1.0, 2.0, 2.0])
    assert w.refund(2.0)
    assert len(w) == 2
    assert not w.refund(7.0)


def test_releases_out_of_order_stay_sorted() -> None:
    w = window_of(held=[1.0, 2.0, 3.0])
    w.release(2.0, 30.0)
    w.release(1.0, 25.0)  # a lease end + window, earlier than a release already logged
    assert list(w.released) == [25.0, 30.0]
    assert w.next_leave() == 25.0
    assert w.idle_at() is None  # one still in flight
    assert w.falls_to(1) == 30.0
    assert w.falls_to(0) is None


def test_full_window_stays_small() -> None:
    # 50 grants fit in packed arrays: the bulk of the 1 KiB-per-fixture budget.
    w = window_of(held=[float(i) for i in range(25)], released=[float(i) for i in range(25)])
    size = sys.getsizeof(w) + sys.getsizeof(w.held) + sys.getsizeof(w.released)
    assert size <= 640


def simulate(
    held: list[float],
    released: list[float],
    n: int,
    now: float,
    *,
    limit: int,
    window: float,
    hold: float,
    lease: float,
    not_before: float,
) -> float:
    """Grant n requests one by one at the earliest moment the window allows, every permit in
    flight coming back `hold` after its grant (not before now, not after its lease)."""
    leaves = list(released) + [min(max(g + hold, now), g + lease) + window for g in held]
    t = max(now, not_before)
    for _ in range(n):
        while True:
            in_window = sorted(x for x in leaves if x > t)
            if len(in_window) < limit:
                break
            t = in_window[len(in_window) - limit]  # the moment enough of them leave
        leaves.append(t + hold + window)
    return t


@given(
    limit=st.integers(1, 6),
    n=st.integers(1, 20),
    held_ago=st.lists(st.floats(0.0, 30.0), max_size=6),
    released_in=st.lists(st.floats(0.01, 10.0), max_size=6),
    hold=st.floats(0.0, 8.0),
    pause=st.floats(0.0, 25.0),
)
def test_grant_time_matches_a_one_by_one_simulation(
    limit: int,
    n: int,
    held_ago: list[float],
    released_in: list[float],
    hold: float,
    pause: float,
) -> None:
    window, now, lease = 10.0, 100.0, 8.0
    held = sorted(now - min(a, lease - 0.001) for a in held_ago)[:limit]  # leases still running
    released = sorted(now + r for r in released_in)[: limit - len(held)]
    w = window_of(held, released)
    expected = simulate(
        held,
        released,
        n,
        now,
        limit=limit,
        window=window,
        hold=hold,
        lease=lease,
        not_before=now + pause,
    )
    got = w.grant_time(
        n, now, limit=limit, window=window, hold=hold, lease=lease, not_before=now + pause
    )
    assert got == pytest.approx(expected)
