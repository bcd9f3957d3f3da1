"""The generator's own check of the upstream limit, from its log alone (not from the server's
figures): how many calls any window-long interval could have caught."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence


def most_in_any_window(granted: Sequence[float], released: Sequence[float], window: float) -> int:
    """The most of these calls any interval [t, t + window) can catch, each call reaching the
    upstream at any moment from its grant to its release (the worst case the server's rule
    guards against: a grant leaves the window only at release + window).

    Call i is caught by [t, t + window) when granted_i < t + window and released_i >= t, that is
    for t in (granted_i - window, released_i]: the answer is the deepest overlap of those spans.
    """
    events = [(g - window, 1) for g in granted] + [(r, -1) for r in released]
    # At one instant an ending span (closed) goes before a starting one (open): they never meet.
    events.sort()
    depth = most = 0
    for _, step in events:
        depth += step
        most = max(most, depth)
    return most


def over_limit_fixtures(
    fixtures: Sequence[int],
    granted: Sequence[float],
    released: Sequence[float],
    window: float,
    limit: int,
) -> dict[int, int]:
    """Fixture index -> the most calls one window could catch, for every fixture over `limit`."""
    spans: dict[int, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for fixture, grant, release in zip(fixtures, granted, released, strict=True):
        spans[fixture][0].append(grant)
        spans[fixture][1].append(release)
    over = {}
    for fixture, (grants, releases) in spans.items():
        if len(grants) > limit and (most := most_in_any_window(grants, releases, window)) > limit:
            over[fixture] = most
    return over


def most_grants_in_any_window(granted: Sequence[float], window: float) -> int:
    """The most grants (by grant time alone) in any interval [t, t + window)."""
    times = sorted(granted)
    most = first = 0
    for last, t in enumerate(times):
        while times[first] <= t - window:
            first += 1
        most = max(most, last - first + 1)
    return most
