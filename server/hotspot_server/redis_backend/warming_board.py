"""The fleet's warming board in Redis: the same rules as hotspot_core.warming_board, one hash
that every replica reads, so Stats and /health/hot-spots on any replica list every warming."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from hotspot_core.warming_board import (
    MAX_ANNOUNCERS,
    MAX_ANNOUNCERS_PER_CALLER,
    Announcement,
    ScheduledWarming,
    TooManyAnnouncers,
    announcer_key,
    board,
    check_announcement,
)
from hotspot_server.redis_backend.connection import Client
from hotspot_server.redis_backend.scripts import script_text

BOARD_KEY = "hotspot:{warmings}:board"
"""One key (its own hash tag, so one Cluster slot); at most MAX_ANNOUNCERS fields."""


class Call(Protocol):
    """The backend's bounded Redis call (see RedisBackend._call)."""

    def __call__(self, call: Awaitable[Any], *, writes: bool = True) -> Awaitable[Any]: ...


class RedisWarmingBoard:
    def __init__(self, redis: Client, call: Call, now: Callable[[], float] | None = None) -> None:
        """`call` bounds each Redis call (the backend's timeout and circuit breaker); `now`
        replaces Redis's TIME in tests that drive time themselves."""
        self._call = call
        self._now = now
        self._announce = redis.register_script(script_text("clock.lua", "announce.lua"))
        self._redis = redis
        self._parsed: dict[str, tuple[str, Announcement]] = {}

    async def announce(
        self,
        caller: str,
        announcer: str,
        warmings: Sequence[ScheduledWarming],
        ttl: float | None,
    ) -> float:
        keep = check_announcement(announcer, warmings, ttl)
        key = announcer_key(caller, announcer)
        payload = (
            json.dumps(
                {"w": [[w.fixture_id, w.rule, w.starts_at, w.kickoff, w.ends_at] for w in warmings]}
            )
            if warmings
            else ""
        )
        args = [
            "" if self._now is None else repr(self._now()),
            key,
            f"{len(caller)}:{caller}",
            payload,
            repr(keep),
            str(MAX_ANNOUNCERS),
            str(MAX_ANNOUNCERS_PER_CALLER),
        ]
        answer, value = await self._call(self._announce(keys=[BOARD_KEY], args=args))
        if answer == "full":
            scope = str(value)
            limit = MAX_ANNOUNCERS if scope == "server" else MAX_ANNOUNCERS_PER_CALLER
            raise TooManyAnnouncers(scope=scope, limit=limit)
        return float(value)

    async def listed(self, now: float) -> list[ScheduledWarming]:
        """The board as of `now` (the snapshot's Redis time). Each announcement is parsed once
        and kept until it changes: a stats tick costs one HGETALL of at most 32 short fields."""
        raw: dict[str, str] = await self._call(self._redis.hgetall(BOARD_KEY), writes=False)
        parsed = self._parsed
        for key in [k for k in parsed if k not in raw]:
            del parsed[key]
        for key, text in raw.items():
            known = parsed.get(key)
            if known is None or known[0] != text:
                parsed[key] = (text, _announcement(text))
        return board((a for _, a in parsed.values()), now)


def _announcement(text: str) -> Announcement:
    entry = json.loads(text)
    return Announcement(
        warmings=tuple(ScheduledWarming(f, r, s, k, e) for f, r, s, k, e in entry["w"]),
        expires_at=float(entry["exp"]),
    )
