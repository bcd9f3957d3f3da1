"""ServiceOutage: whether the permit service is known to be down, so calls stop waiting on it."""

from __future__ import annotations

import logging

from hotspot_client.errors import PermitError

logger = logging.getLogger("hotspot.client")


class ServiceOutage:
    """Set when a call gave up on an unreachable service, cleared by the next answer.

    While it is set, calls try the service once without backing off: the first
    caller of an outage spends its budget finding out, the rest fail (or fail
    open) at once, and the first answer ends the outage.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.down = False
        self._fell_back: set[str] = set()

    def begin(self, error: PermitError) -> None:
        if self.down:
            return
        self.down = True
        logger.warning(
            "permit service at %s is unavailable: %s",
            self.target,
            error.message,
            extra={"event": "permit_service_down", "target": self.target},
        )

    def end(self) -> None:
        if not self.down:
            return
        self.down = False
        self._fell_back.clear()
        logger.info(
            "permit service at %s answers again",
            self.target,
            extra={"event": "permit_service_up", "target": self.target},
        )

    def first_fallback(self, fixture_id: str) -> bool:
        """True the first time a fixture falls back to the local window in this outage."""
        if fixture_id in self._fell_back:
            return False
        self._fell_back.add(fixture_id)
        return True
