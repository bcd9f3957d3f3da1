"""PermitLease and LeaseBook: who holds a permit, and until when."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable

from hotspot_core.clock import Clock, Timer

RELEASED_REMEMBERED = 100_000
"""Released permits remembered, so that a second Release answers "already released" rather
than "not found": the most recent ones, whatever the throughput (about 15 MB at most)."""


class PermitLease:
    __slots__ = (
        "caller",
        "client_id",
        "expires_at",
        "fixture_id",
        "granted_at",
        "permit_id",
        "request_id",
    )

    def __init__(
        self,
        permit_id: str,
        fixture_id: str,
        granted_at: float,
        expires_at: float,
        client_id: str,
        request_id: str = "",
        caller: str = "",
    ) -> None:
        self.permit_id = permit_id
        self.fixture_id = fixture_id
        self.granted_at = granted_at
        """Monotonic seconds: the permit's entry in its fixture's window."""
        self.expires_at = expires_at
        self.client_id = client_id
        self.request_id = request_id
        self.caller = caller
        """Who acquired it: the only caller that may release it."""


class LeaseBook:
    """Every permit in flight in expiry order, behind a single timer.

    All leases last the same time, so issue order is expiry order: the book is
    an ordered dict whose head is always the next to expire. A released permit
    leaves it for a bounded memory of recent releases (RELEASED_REMEMBERED), so
    a second Release can answer "already released" instead of "not found".
    """

    def __init__(
        self,
        clock: Clock,
        on_abandoned: Callable[[PermitLease], None],
        remembered: int = RELEASED_REMEMBERED,
    ) -> None:
        self._clock = clock
        self._on_abandoned = on_abandoned
        self._leases: OrderedDict[str, PermitLease] = OrderedDict()
        self._released: OrderedDict[str, str] = OrderedDict()  # permit id -> its caller
        self._remembered = remembered
        # Permits of Acquires that named a request id, by (caller, request id), while in flight.
        self._by_request: dict[tuple[str, str], str] = {}
        self._timer: Timer | None = None

    def __len__(self) -> int:
        return len(self._leases)

    def issue(
        self,
        fixture_id: str,
        granted_at: float,
        expires_at: float,
        client_id: str,
        request_id: str = "",
        caller: str = "",
    ) -> PermitLease:
        """A new lease under a fresh permit id: 128 random bits, so that no caller can guess
        another's permit."""
        permit_id = secrets.token_urlsafe(16)
        lease = self._leases[permit_id] = PermitLease(
            permit_id, fixture_id, granted_at, expires_at, client_id, request_id, caller
        )
        if request_id:
            self._by_request[caller, request_id] = permit_id
        if self._timer is None:
            self._timer = self._clock.call_at(expires_at, self._expire)
        return lease

    def get(self, permit_id: str, caller: str) -> PermitLease | None:
        """The caller's permit in flight; None for another caller's (no oracle either way)."""
        lease = self._leases.get(permit_id)
        return lease if lease is not None and lease.caller == caller else None

    def was_released(self, permit_id: str, caller: str) -> bool:
        return self._released.get(permit_id) == caller

    def permit_for_request(self, request_id: str, caller: str) -> str | None:
        return self._by_request.get((caller, request_id))

    def release(self, lease: PermitLease) -> None:
        """The permit's call is over: it leaves the book for the memory of recent releases."""
        self._forget(lease)
        released = self._released
        released[lease.permit_id] = lease.caller
        if len(released) > self._remembered:
            released.popitem(last=False)

    def discard(self, lease: PermitLease) -> None:
        """Forget a lease that was never handed out (its caller went away)."""
        self._forget(lease)

    def _forget(self, lease: PermitLease) -> None:
        self._leases.pop(lease.permit_id, None)
        if lease.request_id:
            self._by_request.pop((lease.caller, lease.request_id), None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        now = self._clock.monotonic()
        leases = self._leases
        while leases:
            lease = next(iter(leases.values()))
            if lease.expires_at > now:
                self._timer = self._clock.call_at(lease.expires_at, self._expire)
                return
            self._forget(lease)
            self._on_abandoned(lease)
