"""What a granted request receives, and what a release reports."""

from __future__ import annotations

import enum
from typing import NamedTuple


class Grant(NamedTuple):
    # A NamedTuple: immutable, and built in C on the hot path (a frozen dataclass costs a
    # setattr per field).
    permit_id: str
    fixture_id: str
    granted_at: float
    """Unix seconds."""
    waited: float
    """Seconds spent in the queue."""
    queue_position: int
    """0 when granted at once, else the 1-based place taken in the queue."""
    remaining: int
    """Grants still free in the window right after this one."""
    lease_expires_at: float
    """Unix seconds."""


class Outcome(enum.Enum):
    """What happened to the call made under a permit."""

    SUCCESS = "success"
    FAILURE = "failure"
    NOT_SENT = "not_sent"
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
