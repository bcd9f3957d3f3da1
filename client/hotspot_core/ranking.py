"""HeatRanking: the hottest fixtures, exact, without measuring every fixture on every tick.

A fixture's heat is (calls_in_window, queue_depth). Between two of its own
events it can only cool: grants leave the window by time alone, waiters leave
the queue. It heats only on a grant or a new waiter, and the backend tells the
ranking of both (`note`, one C-level set insertion on the permit path). So:

- the ranking holds the `size` hottest fixtures as measured at its last
  refresh, and a floor: the hottest heat any other fixture had when last
  measured, hence the hottest it can have now unless it was noted since;
- a refresh measures only the held fixtures and those noted since, at one
  moment `now`. The n hottest of those are the n hottest of all whenever the
  n-th is at least as hot as the floor (an outsider can at most tie it, and
  ties in heat come in any order);
- otherwise (the held fixtures cooled below the floor, or a reader asks for
  more than is held) it rescans every fixture, a slice per loop iteration,
  so no single step blocks the loop for long.

With no reader for IDLE_AFTER seconds the ranking goes idle: it stops noting
and forgets what it held, and the next reader pays one rescan.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable, Iterable
from operator import itemgetter

from hotspot_core.clock import Clock, Timer

HeatEntry = tuple[int, str]
"""(heat, fixture_id); heat(calls, queue) orders by calls, then queue depth, as one int: sorting
by it alone compares machine-sized ints, about 3x faster than (calls, queue, id) tuples."""
Measure = Callable[[Iterable[str], float], list[HeatEntry]]
"""The heat of each named fixture that is tracked, at the given monotonic time."""
_HEAT = itemgetter(0)

RESCAN_SLICE = 2000
"""Fixtures measured per loop iteration in a rescan (about 1-1.5 ms on the project's machine)."""
MARGIN = 64
"""Fixtures held beyond the largest n asked for (plus up to 256 more for a large n): room to
cool before a rescan."""
IDLE_AFTER = 60.0
"""Seconds without a reader after which the ranking stops noting (a /metrics scrape every
15-30 s keeps it live)."""
RESCAN_ATTEMPTS = 3
"""A fixture held may cool below the floor while a rescan runs; then it runs again."""


def heat(calls_in_window: int, queue_depth: int) -> int:
    return (calls_in_window << 32) + queue_depth


def _ignore(fixture_id: str) -> bool:
    return False


class HeatRanking:
    def __init__(self, clock: Clock, measure: Measure, all_ids: Callable[[], list[str]]) -> None:
        self._clock = clock
        self._measure = measure
        self._all_ids = all_ids
        self._noted: set[str] = set()
        self.note: Callable[[str], object] = _ignore
        """Called by the backend with a fixture's id on each grant and each new waiter."""
        self._held: list[HeatEntry] = []
        self._floor: int | None = None
        """The hottest heat a fixture outside `_held` may have; None: there is none."""
        self._size = 0
        self._live = False
        self._lock = asyncio.Lock()
        self._last_read = -math.inf
        self._idle_timer: Timer | None = None
        self.refreshes = 0
        self.rescans = 0
        self.measured = 0
        """Fixtures measured so far, rescans included (for benchmarks and tests)."""

    async def hottest(self, n: int) -> tuple[float, list[str]]:
        """The n hottest fixtures, hottest first, and the monotonic time they are exact at.

        Fixtures equally hot come in id order, but at the n-th place an equally hot
        fixture may be left out in favour of another (ties in heat are in no promised order).
        """
        async with self._lock:
            self._last_read = self._clock.monotonic()
            if self._live:
                result = self._refresh(n)
                if result is not None:
                    return result
            return await self._rescan(n)

    def _refresh(self, n: int, last_chance: bool = False) -> tuple[float, list[str]] | None:
        """Measure, at one moment, every fixture noted and the held ones hottest bound first,
        until the n hottest are known; None if a rescan is needed.

        A held fixture not noted since it was measured is at most as hot as it was then: the
        walk stops once the n-th hottest measured now is at least that hot, so a refresh
        costs what was noted plus about n, however many are held.
        """
        now = self._clock.monotonic()
        noted = self._noted
        exact = self._measure(noted, now)
        top = heapq.nlargest(n, [h for h, _ in exact])  # the n hottest heats: a min-heap
        heapq.heapify(top)
        held = self._held
        walked = 0
        for bound, fixture_id in held:
            if len(top) >= n and top[0] >= bound:
                break
            walked += 1
            if fixture_id in noted:
                continue  # measured above
            for entry in self._measure((fixture_id,), now):
                exact.append(entry)
                if len(top) < n:
                    heapq.heappush(top, entry[0])
                elif entry[0] > top[0]:
                    heapq.heapreplace(top, entry[0])
        self.measured += len(exact)
        self.refreshes += 1
        floor = self._floor
        if not last_chance and floor is not None and (len(top) < n or top[0] < floor):
            return None
        # Held and not measured now: their last heat still bounds them.
        unmeasured = [e for e in held[walked:] if e[1] not in noted]
        noted.clear()  # the same set: `note` stays bound to it
        exact.sort(key=_HEAT, reverse=True)
        shown = sorted(exact[:n], key=lambda e: (-e[0], e[1]))
        merged = sorted(exact + unmeasured, key=_HEAT, reverse=True)  # two sorted runs: a merge
        size = self._size
        if len(merged) > size:
            dropped = merged[size][0]  # the hottest left out; everything else left out is cooler
            if floor is None or dropped > floor:
                floor = dropped
            del merged[size:]
        self._held = merged
        self._floor = floor
        return now, [fixture_id for _, fixture_id in shown]

    async def _rescan(self, n: int) -> tuple[float, list[str]]:
        self.rescans += 1
        self._size = max(self._size, n + min(n, 256) + MARGIN)
        self._go_live()
        for attempt in range(RESCAN_ATTEMPTS):
            # Noted from here on: a fixture that heats while the scan runs is measured again.
            self._noted.clear()
            ids = self._all_ids()
            best: list[HeatEntry] = []
            for start in range(0, len(ids), RESCAN_SLICE):
                if start:
                    await asyncio.sleep(0)  # let the permit path run between slices
                chunk = self._measure(ids[start : start + RESCAN_SLICE], self._clock.monotonic())
                self.measured += len(chunk)
                best = heapq.nlargest(self._size + 1, itertools.chain(best, chunk), key=_HEAT)
            # Each outsider was measured at some moment of the scan; it has only cooled since.
            self._floor = best.pop()[0] if len(best) > self._size else None
            self._held = best
            result = self._refresh(n, last_chance=attempt == RESCAN_ATTEMPTS - 1)
            if result is not None:
                return result
        raise AssertionError("unreachable: the last attempt always answers")

    def _go_live(self) -> None:
        if self._live:
            return
        self._live = True
        self.note = self._noted.add
        self._arm_idle_timer(self._clock.monotonic() + IDLE_AFTER)

    def _arm_idle_timer(self, at: float) -> None:
        self._idle_timer = self._clock.call_at(at, self._maybe_idle)

    def _maybe_idle(self) -> None:
        self._idle_timer = None
        idle_at = self._last_read + IDLE_AFTER
        if self._clock.monotonic() < idle_at:
            self._arm_idle_timer(idle_at)
            return
        self._live = False
        self.note = _ignore
        self._noted.clear()
        self._held = []
        self._floor = None
        self._size = 0

    def close(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
