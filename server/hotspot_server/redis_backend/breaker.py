"""CircuitBreaker: after a failed Redis call, fail fast for a moment instead of waiting again."""

from __future__ import annotations

import time

from hotspot_core.errors import BackendUnavailable

OPEN_FOR = 0.5
"""Seconds calls fail at once after a failure; then one call tries Redis again."""


class CircuitBreaker:
    """Closed while Redis answers. A failure opens it: for OPEN_FOR every call is refused at
    once (no caller waits out another timeout), then the next call is let through as a probe;
    its success closes it, its failure opens it again. A Redis that refuses writes (a replica,
    min-replicas-to-write unmet) still answers reads: only a call that wrote closes it then."""

    def __init__(self, open_for: float = OPEN_FOR) -> None:
        self._open_for = open_for
        self._open_until = 0.0
        self._writes_refused = False
        self.why: str | None = None
        """Why Redis is unreachable, while it is; None once a call succeeds."""

    @property
    def writes_refused(self) -> bool:
        """Open because Redis refused a write: only a call that writes can close it."""
        return self.why is not None and self._writes_refused

    def check(self) -> None:
        if self.why is not None and time.monotonic() < self._open_until:
            raise BackendUnavailable(self.why, retry_after=self._open_until - time.monotonic())

    def failed(self, why: str, *, writes_refused: bool = False) -> None:
        self.why = why
        self._writes_refused = writes_refused
        self._open_until = time.monotonic() + self._open_for

    def succeeded(self, *, wrote: bool) -> bool:
        """Whether this success closed an open breaker."""
        if self.why is None or (self._writes_refused and not wrote):
            return False
        self.why = None
        return True
