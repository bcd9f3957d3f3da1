"""LocalPermits: the fail-open fallback, an in-process window per fixture at the same limit.

It is the server's own core (MemoryBackend): the same exact sliding window,
FIFO queue and refusals, only for this process's calls.
"""

from __future__ import annotations

import logging

from hotspot_client.errors import PermitServiceUnavailable, error_from_core
from hotspot_client.outage import ServiceOutage
from hotspot_client.permit import Outcome, Permit
from hotspot_client.wire import permit_from_grant
from hotspot_core import errors as core
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy

logger = logging.getLogger("hotspot.client")


class LocalPermits:
    def __init__(self, policy: PermitPolicy, outage: ServiceOutage) -> None:
        self.policy = policy
        self._outage = outage
        self._backend: MemoryBackend | None = None

    def _open(self) -> MemoryBackend:
        # Created on first use: the backend's timers belong to the running event loop.
        if self._backend is None:
            self._backend = MemoryBackend(self.policy)
        return self._backend

    async def acquire(
        self, fixture_id: str, *, budget: float, client_id: str, cause: PermitServiceUnavailable
    ) -> Permit:
        if self._outage.first_fallback(fixture_id):
            logger.warning(
                "failing open: fixture %s takes permits from an in-process window of %d per "
                "%gs while the permit service at %s is unavailable (%s)",
                fixture_id,
                self.policy.limit,
                self.policy.window,
                self._outage.target,
                cause.message,
                extra={
                    "event": "fail_open",
                    "fixture_id": fixture_id,
                    "target": self._outage.target,
                },
            )
        try:
            grant = await self._open().acquire(fixture_id, budget=budget, client_id=client_id)
        except core.PermitError as error:
            raise error_from_core(error) from error
        return permit_from_grant(grant)

    async def release(
        self, permit: Permit, outcome: Outcome, upstream_retry_after: float | None
    ) -> bool:
        try:
            return await self._open().release(permit.permit_id, outcome, upstream_retry_after)
        except core.PermitError as error:
            raise error_from_core(error) from error

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()
