"""CacheOutage: one warning when the store goes down, one line when it is back."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger("hotspot.cache")

RETRY_EVERY = 1.0
"""Seconds between tries of a store that is down; between them calls skip it at once."""


class CacheOutage:
    """Tracks whether the store is down, so that each outage is logged once, not per request."""

    def __init__(self, now: Callable[[], float], retry_every: float = RETRY_EVERY) -> None:
        self._now = now
        self._retry_every = retry_every
        self._down_since: float | None = None
        self._retry_at = 0.0
        self.outages = 0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def should_skip(self) -> bool:
        """True while the store is down and not yet due another try."""
        return self._down_since is not None and self._now() < self._retry_at

    def failed(self, error: Exception) -> None:
        now = self._now()
        self._retry_at = now + self._retry_every
        if self._down_since is None:
            self._down_since = now
            self.outages += 1
            logger.warning(
                "odds cache unavailable, calling Optic Odds directly under permits: %s",
                error,
                extra={"event": "cache_down"},
            )

    def succeeded(self) -> None:
        if self._down_since is not None:
            logger.info(
                "odds cache is back after %.1fs",
                self._now() - self._down_since,
                extra={"event": "cache_up"},
            )
            self._down_since = None
