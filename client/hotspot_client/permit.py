"""Permit: what a grant gives the caller, and the Outcome its release reports.

Outcome is the core's own enum (SUCCESS, FAILURE, NOT_SENT, UPSTREAM_RATE_LIMITED), so the
fail-open window takes it as is; the wire maps it to hotspot.v1.Outcome.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from hotspot_client.errors import PermitError, PermitNotFound
from hotspot_core.grants import Outcome as Outcome  # re-exported: the client speaks it
from hotspot_core.request_rules import MAX_UPSTREAM_RETRY_AFTER

logger = logging.getLogger("hotspot.client")


def upstream_delay(seconds: float | None) -> float | None:
    """An upstream Retry-After as the service takes it; it pauses a fixture at most an hour."""
    if seconds is None:
        return None
    if not seconds >= 0:  # also catches NaN
        raise ValueError(f"upstream retry_after must be 0 or more seconds, got {seconds}")
    return min(float(seconds), MAX_UPSTREAM_RETRY_AFTER)


@dataclass(eq=False)
class Permit:
    """A granted permit: make the one upstream call it allows, then release it."""

    permit_id: str
    fixture_id: str
    queue_position: int
    """0 when granted at once, else the 1-based place taken in the queue."""
    remaining: int
    """Grants still free in the fixture's window right after this one."""
    waited: float
    """Seconds spent in the queue."""
    granted_at: float
    """Unix seconds."""
    lease_expires_at: float
    """Unix seconds; a permit not released by then counts as abandoned."""
    local: bool = False
    """Granted by the in-process fallback window while the service was down (fail-open)."""
    outcome: Outcome | None = field(default=None, init=False)
    """The outcome marked for release, if any (else it follows how the block ended)."""
    upstream_retry_after: float | None = field(default=None, init=False)

    def mark_not_sent(self) -> None:
        """The call will not be made: release as NOT_SENT, refunding the grant."""
        self.outcome = Outcome.NOT_SENT
        self.upstream_retry_after = None

    def mark_upstream_rate_limited(self, retry_after: float | None = None) -> None:
        """The upstream answered 429: release as UPSTREAM_RATE_LIMITED with its Retry-After.

        None leaves the delay out (the service pauses the fixture for one window).
        """
        self.upstream_retry_after = upstream_delay(retry_after)
        self.outcome = Outcome.UPSTREAM_RATE_LIMITED

    def exit_outcome(self, failed: bool) -> Outcome:
        """The outcome to release with when a `permit()` block ends; a marked outcome wins."""
        if self.outcome is not None:
            return self.outcome
        return Outcome.FAILURE if failed else Outcome.SUCCESS


def log_release_failure(permit: Permit, outcome: Outcome, error: PermitError) -> None:
    """A `permit()` block's release failed. The block's own result matters more, so log it."""
    if isinstance(error, PermitNotFound):
        why = "its lease had ended (the block outlived the lease; it counted as abandoned)"
    else:
        why = str(error)
    logger.warning(
        "permit %s for fixture %s was not released as %s: %s",
        permit.permit_id,
        permit.fixture_id,
        outcome.name,
        why,
        extra={
            "event": "release_failed",
            "fixture_id": permit.fixture_id,
            "permit_id": permit.permit_id,
            "outcome": outcome.name,
        },
    )
