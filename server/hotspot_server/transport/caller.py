"""Who is calling: the authenticated caller of the RPC or HTTP request being served, and roles.

The auth interceptor sets `current_caller` around each PermitService handler; the servicer
reads it to name the caller to the backend (`client_id`, and `caller=` for permit ownership).
It stays None on a server that runs open (no --auth-tokens). Core timers run in an empty
Context (hotspot_core/clock.py), so a caller never leaks into work done for someone else.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

ACQUIRE = "acquire"
"""Acquire, and Release of one's own permits."""
REPORT_UPSTREAM = "report-upstream"
"""Release with OUTCOME_UPSTREAM_RATE_LIMITED: pauses the fixture for every caller."""
READ_STATS = "read-stats"
"""Stats, WatchStats and the HTTP read endpoints (/health/hot-spots, /metrics, /dashboard)."""
ADMIN = "admin"
"""Every role."""
ROLES = (ACQUIRE, REPORT_UPSTREAM, READ_STATS, ADMIN)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its name (certificate CN or the token's entry) and roles."""

    name: str
    roles: frozenset[str]

    def may(self, role: str) -> bool:
        return role in self.roles or ADMIN in self.roles


current_caller: ContextVar[Caller | None] = ContextVar("hotspot_caller", default=None)
"""The caller of the request being served; None when the server runs open."""


def caller_name() -> str | None:
    """The authenticated caller's name, or None on an open server."""
    caller = current_caller.get()
    return caller.name if caller is not None else None
