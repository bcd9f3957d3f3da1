"""LogSummary: at most two lines per key and period, however many events a caller causes.

A caller can make the server log on its behalf (a permit it abandons, a pause it
asks for, a request it corrupts); a line per event lets it flood the log. Per
key (a fixture, an RPC method) the first event of a period is logged in full by
the call site; the rest are only counted, and when the period ends one line says
how many there were: "49 more permits abandoned on fixture_id=F in the last 60s".
"""

from __future__ import annotations

import logging

from hotspot_core.clock import Clock, Timer

PERIOD = 60.0
"""Seconds a summary covers."""
MAX_KEYS = 100
"""Keys with their own lines per period; events of further keys are told in one line."""


class LogSummary:
    """Counts events per key on `clock` and logs the counts at the end of each period.

    `what` names the events in the plural ("permits abandoned") and `key_name` the key
    ("fixture_id"); the summary lines carry `event` and the key as structured fields.
    """

    def __init__(
        self,
        clock: Clock,
        logger: logging.Logger,
        *,
        what: str,
        key_name: str,
        event: str,
        level: int = logging.WARNING,
        period: float = PERIOD,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self._clock = clock
        self._logger = logger
        self._what = what
        self._key_name = key_name
        self._event = event
        self._level = level
        self.period = period
        self._max_keys = max_keys
        self._unlogged: dict[str, int] = {}
        """Keys seen this period -> their events not logged in full."""
        self._other_keys = 0
        """Events this period of keys beyond max_keys: none of them was logged."""
        self._timer: Timer | None = None

    def first(self, key: str) -> bool:
        """Count one event of `key`; True when it is the key's first this period, which the
        call site then logs in full."""
        if self._timer is None:
            self._timer = self._clock.call_at(self._clock.monotonic() + self.period, self.flush)
        unlogged = self._unlogged.get(key)
        if unlogged is not None:
            self._unlogged[key] = unlogged + 1
            return False
        if len(self._unlogged) >= self._max_keys:
            self._other_keys += 1
            return False
        self._unlogged[key] = 0
        return True

    def flush(self) -> None:
        """Log the counts of the period now and start afresh (its timer calls this; so may a
        shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for key, count in self._unlogged.items():
            if count:
                self._logger.log(
                    self._level,
                    "%d more %s on %s=%s in the last %gs",
                    count,
                    self._what,
                    self._key_name,
                    key,
                    self.period,
                    extra={"event": self._event, self._key_name: key, "count": count},
                )
        if self._other_keys:
            self._logger.log(
                self._level,
                "%d %s on other %s values (past the first %d) in the last %gs",
                self._other_keys,
                self._what,
                self._key_name,
                self._max_keys,
                self.period,
                extra={"event": self._event, "count": self._other_keys},
            )
        self._unlogged.clear()
        self._other_keys = 0
