"""PermitLease and LeaseBook: who holds a permit, and until when."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from itertools import count

from hotspot_core.clock import Clock, Timer


class PermitLease:
    __slots__ = (
        "client_id",
        "expires_at",
        "fixture_id",
        "granted_at",
        "permit_id",
        "released",
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
    ) -> None:
        self.permit_id = permit_id
        self.request_id = request_id
        self.fixture_id = fixture_id
        self.granted_at = granted_at
        """Monotonic seconds: the permit's entry in its fixture's window."""
        self.expires_at = expires_at
        self.client_id = client_id
        self.released = False


class LeaseBook:
    """Every lease in expiry order, behind a single timer.

    All leases last the same time, so issue order is expiry order: the book is
    an ordered dict whose head is always the next to expire. A released lease
    stays until its expiry as a tombstone, so a second Release can answer
    "already released" instead of "not found".
    """

    def __init__(self, clock: Clock, on_abandoned: Callable[[PermitLease], None]) -> None:
        self._clock = clock
        self._on_abandoned = on_abandoned
        self._leases: OrderedDict[str, PermitLease] = OrderedDict()
        # Leases of Acquires that named a request id, by that id (only while the lease lasts).
        self._by_request: dict[str, str] = {}
        self._timer: Timer | None = None
        # Unique across processes and restarts, cheap to make: a random prefix and a counter.
        self._prefix = os.urandom(6).hex()
        self._serial = count(1)

    def __len__(self) -> int:
        return len(self._leases)

    def issue(
        self,
        fixture_id: str,
        granted_at: float,
        expires_at: float,
        client_id: str,
        request_id: str = "",
    ) -> PermitLease:
        """A new lease under a fresh permit id."""
        permit_id = f"{self._prefix}-{next(self._serial):x}"
        lease = self._leases[permit_id] = PermitLease(
            permit_id, fixture_id, granted_at, expires_at, client_id, request_id
        )
        if request_id:
            self._by_request[request_id] = permit_id
        if self._timer is None:
            self._timer = self._clock.call_at(expires_at, self._expire)
        return lease

    def get(self, permit_id: str) -> PermitLease | None:
        return self._leases.get(permit_id)

    def permit_for_request(self, request_id: str) -> str | None:
        return self._by_request.get(request_id)

    def discard(self, permit_id: str) -> None:
        """Forget a lease that was never handed out (its caller went away)."""
        lease = self._leases.pop(permit_id, None)
        if lease is not None and lease.request_id:
            self._by_request.pop(lease.request_id, None)

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
            leases.popitem(last=False)
            if lease.request_id:
                self._by_request.pop(lease.request_id, None)
            if not lease.released:
                self._on_abandoned(lease)
