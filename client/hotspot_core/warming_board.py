"""The warming board: which fixtures cache warmers have announced they will warm, and when.

A warmer announces its whole schedule (AnnounceWarmings) every time it polls; each
announcement replaces the same caller's previous one under the same announcer name and
lapses after its ttl unless announced again, so a warmer that dies drops off the board by
itself and one that cancels a warming simply stops listing it. The board only informs
operators (Stats, /health/hot-spots): it grants and refuses nothing.

Every time here is wall-clock Unix seconds: kick-offs are wall times, and each backend
reads its own wall clock (Redis's TIME for the Redis backend) to lapse announcements.
Announcers are capped per caller and in all, so no caller can crowd another off the board.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hotspot_core.errors import CapacityReached, InvalidArgument
from hotspot_core.fixture_id import check_fixture_id

MAX_WARMINGS = 200
"""Warmings one announcement may list: the major fixtures of a busy weekend fit many times."""
MAX_ANNOUNCERS_PER_CALLER = 4
MAX_ANNOUNCERS = 32
MAX_LISTED = 100
"""Warmings a snapshot lists at most, the soonest first."""
DEFAULT_TTL = 300.0
MIN_TTL, MAX_TTL = 1.0, 3600.0
MAX_SPAN = 2 * 86_400.0
"""The longest warming one entry may describe (starts_at to ends_at)."""
MAX_RULE = 64

ANNOUNCER_RULE = "announcer must be 1 to 64 characters of [A-Za-z0-9._:-]"
_ANNOUNCER = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)
_RULE_TEXT = re.compile(r"[\x20-\x7e]*", re.ASCII)


@dataclass(frozen=True, slots=True)
class ScheduledWarming:
    fixture_id: str
    rule: str
    """The major-event rule that chose the fixture."""
    starts_at: float
    """When warming starts (kick-off minus the warmer's lead), Unix seconds."""
    kickoff: float
    ends_at: float
    """When warming stops at the latest (the game's end)."""

    def state(self, now: float) -> str:
        return "scheduled" if now < self.starts_at else "running"


class TooManyAnnouncers(CapacityReached):
    reason = "TOO_MANY_ANNOUNCERS"

    def __init__(self, *, scope: str, limit: int) -> None:
        whose = "the fleet" if scope == "server" else "one caller"
        super().__init__(
            f"{whose} may keep at most {limit} warming announcements; withdraw one (announce "
            "an empty schedule) or let it lapse",
            scope=scope,
            limit=limit,
        )


@dataclass(frozen=True, slots=True)
class Announcement:
    warmings: tuple[ScheduledWarming, ...]
    expires_at: float


def check_announcement(
    announcer: str, warmings: Sequence[ScheduledWarming], ttl: float | None
) -> float:
    """Check an announcement before anything is stored; the ttl to keep it (seconds)."""
    if _ANNOUNCER.fullmatch(announcer) is None:
        raise InvalidArgument(f"{ANNOUNCER_RULE}; got {announcer[:72]!r}", field="announcer")
    if len(warmings) > MAX_WARMINGS:
        raise InvalidArgument(
            f"an announcement may list at most {MAX_WARMINGS} warmings, got {len(warmings)}",
            field="warmings",
        )
    seen: set[str] = set()
    for warming in warmings:
        check_fixture_id(warming.fixture_id)
        if warming.fixture_id in seen:
            raise InvalidArgument(
                f"warmings must name each fixture once; {warming.fixture_id!r} is listed twice",
                field="warmings.fixture_id",
            )
        seen.add(warming.fixture_id)
        if len(warming.rule) > MAX_RULE or _RULE_TEXT.fullmatch(warming.rule) is None:
            raise InvalidArgument(
                f"rule must be at most {MAX_RULE} printable ASCII characters",
                field="warmings.rule",
            )
        times = (warming.starts_at, warming.kickoff, warming.ends_at)
        if not all(math.isfinite(t) and t > 0 for t in times) or not (
            warming.starts_at <= warming.kickoff <= warming.ends_at
        ):
            raise InvalidArgument(
                "each warming needs starts_at <= kickoff <= ends_at, all set",
                field="warmings.starts_at",
            )
        if warming.ends_at - warming.starts_at > MAX_SPAN:
            raise InvalidArgument(
                f"a warming may last at most {MAX_SPAN / 3600:g} h from starts_at to ends_at",
                field="warmings.ends_at",
            )
    if ttl is None:
        return DEFAULT_TTL
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidArgument(
            f"ttl must be from {MIN_TTL:g} s to {MAX_TTL:g} s, got {ttl}s", field="ttl"
        )
    return ttl


def announcer_key(caller: str, announcer: str) -> str:
    """One caller's announcer: the caller's length first, so no two pairs share a key."""
    return f"{len(caller)}:{caller}{announcer}"


def caller_of_key(key: str) -> str:
    length, _, rest = key.partition(":")
    return rest[: int(length)]


def check_room(keys: Iterable[str], key: str, caller: str) -> None:
    """Refuse a new announcer beyond the caps; `keys` are the live announcers' keys."""
    live = [k for k in keys if k != key]
    if len(live) >= MAX_ANNOUNCERS:
        raise TooManyAnnouncers(scope="server", limit=MAX_ANNOUNCERS)
    if sum(1 for k in live if caller_of_key(k) == caller) >= MAX_ANNOUNCERS_PER_CALLER:
        raise TooManyAnnouncers(scope="caller", limit=MAX_ANNOUNCERS_PER_CALLER)


def board(announcements: Iterable[Announcement], now: float) -> list[ScheduledWarming]:
    """What a snapshot shows: the live announcements' warmings that have not ended, one per
    fixture (the earliest start where warmers disagree), soonest first, at most MAX_LISTED."""
    soonest: dict[str, ScheduledWarming] = {}
    for announcement in announcements:
        if announcement.expires_at <= now:
            continue
        for warming in announcement.warmings:
            if warming.ends_at <= now:
                continue
            known = soonest.get(warming.fixture_id)
            if known is None or warming.starts_at < known.starts_at:
                soonest[warming.fixture_id] = warming
    listed = sorted(soonest.values(), key=lambda w: (w.starts_at, w.fixture_id))
    return listed[:MAX_LISTED]


class WarmingBoard:
    """The board in one process (the memory backend's)."""

    def __init__(self) -> None:
        self._announcements: dict[str, Announcement] = {}

    def announce(
        self,
        caller: str,
        announcer: str,
        warmings: Sequence[ScheduledWarming],
        ttl: float | None,
        now: float,
    ) -> float:
        """Replace the announcer's schedule (an empty one withdraws it); when it lapses."""
        keep = check_announcement(announcer, warmings, ttl)
        self._drop_lapsed(now)
        key = announcer_key(caller, announcer)
        if not warmings:
            self._announcements.pop(key, None)
            return now
        check_room(self._announcements, key, caller)
        self._announcements[key] = Announcement(tuple(warmings), now + keep)
        return now + keep

    def listed(self, now: float) -> list[ScheduledWarming]:
        self._drop_lapsed(now)
        return board(self._announcements.values(), now)

    def _drop_lapsed(self, now: float) -> None:
        # At most MAX_ANNOUNCERS entries: a scan is cheaper than a heap here.
        for key in [k for k, a in self._announcements.items() if a.expires_at <= now]:
            del self._announcements[key]
