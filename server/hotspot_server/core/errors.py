"""Why the core says no. Transports map these to their own status codes."""

from __future__ import annotations

import math


def whole_seconds(seconds: float) -> int:
    """Whole seconds, rounded up, for a plain Retry-After value."""
    # Rounding first keeps float noise (2.0000000001) from adding a second.
    return max(0, math.ceil(round(seconds, 6)))


class PermitError(Exception):
    """Base of every refusal or error the core reports to a caller."""

    reason: str = "PERMIT_ERROR"


class InvalidArgument(PermitError):
    """A request broke a rule; the message names the rule."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidFixtureId(InvalidArgument):
    reason = "INVALID_FIXTURE_ID"


class PermitNotFound(PermitError):
    """The permit id is unknown, or its lease ended."""

    reason = "PERMIT_NOT_FOUND"

    def __init__(self, permit_id: str) -> None:
        super().__init__(f"permit {permit_id!r} is unknown or its lease has expired")
        self.permit_id = permit_id


class ShuttingDown(PermitError):
    """The service is stopping; the caller should retry, possibly elsewhere."""

    reason = "SHUTTING_DOWN"

    def __init__(self, retry_after: float) -> None:
        super().__init__("the permit service is shutting down")
        self.retry_after = retry_after


class PermitRefused(PermitError):
    """Refused at once, with when to come back."""

    def __init__(
        self,
        message: str,
        *,
        fixture_id: str,
        retry_after: float,
        estimated_wait: float,
        queue_depth: int,
        limit: int,
        paused_for: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.fixture_id = fixture_id
        self.retry_after = max(0.0, retry_after)
        self.estimated_wait = max(0.0, estimated_wait)
        self.queue_depth = queue_depth
        self.limit = limit
        self.paused_for = max(0.0, paused_for)


class QueueFull(PermitRefused):
    reason = "QUEUE_FULL"


class WaitTooLong(PermitRefused):
    reason = "WAIT_TOO_LONG"


class TooManyFixtures(PermitRefused):
    reason = "TOO_MANY_FIXTURES"
