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


class CapacityReached(PermitError):
    """A bounded table (stats subscriptions, warming announcements) is full for this server or
    this caller: RESOURCE_EXHAUSTED. `scope` is "server" or "caller"."""

    def __init__(self, message: str, *, scope: str, limit: int) -> None:
        super().__init__(message)
        self.scope = scope
        self.limit = limit


class PermitNotFound(PermitError):
    """The permit id is unknown, or its lease ended."""

    reason = "PERMIT_NOT_FOUND"

    def __init__(self, permit_id: str, *, what: str = "permit") -> None:
        # A short prefix only: the id is the caller's input, echoed back to it.
        super().__init__(f"{what} {permit_id[:80]!r} is unknown or its lease has expired")
        self.permit_id = permit_id[:80]


class ShuttingDown(PermitError):
    """The service is stopping; the caller should retry, possibly elsewhere."""

    reason = "SHUTTING_DOWN"

    def __init__(self, retry_after: float) -> None:
        super().__init__("the permit service is shutting down")
        self.retry_after = retry_after


class StoreUnavailable(PermitError):
    """The durable state store cannot record a grant, so none is given (a full disk, a
    read-only state dir). The caller should retry, possibly against another replica."""

    reason = "STORE_UNAVAILABLE"

    def __init__(self, why: str, retry_after: float = 1.0) -> None:
        super().__init__(f"the permit service cannot record grants: {why}")
        self.why = why
        self.retry_after = retry_after


class BackendUnavailable(StoreUnavailable):
    """The shared state backend (Redis) cannot be reached in time: no grant is given rather
    than one that might break the fleet's limit (fail closed). Reported as UNAVAILABLE."""

    reason = "BACKEND_UNAVAILABLE"

    def __init__(self, why: str, retry_after: float = 1.0) -> None:
        super().__init__(why, retry_after)
        self.args = (f"the permit service cannot reach its state backend: {why}",)

    def __str__(self) -> str:
        return str(self.args[0])


class PermitRefused(PermitError):
    """Refused at once, with when to come back.

    Refusals are the hot path under overload, so the message is only written
    when someone reads it (str(error)).
    """

    def __init__(
        self,
        *,
        fixture_id: str,
        retry_after: float,
        estimated_wait: float,
        queue_depth: int,
        limit: int,
        paused_for: float = 0.0,
    ) -> None:
        super().__init__()
        self.fixture_id = fixture_id
        self.retry_after = retry_after if retry_after > 0 else 0.0
        self.estimated_wait = estimated_wait if estimated_wait > 0 else 0.0
        self.queue_depth = queue_depth
        self.limit = limit
        self.paused_for = paused_for if paused_for > 0 else 0.0

    def _paused(self) -> str:
        if self.paused_for > 0:
            return f" (paused after an upstream 429 for {self.paused_for:.3f}s more)"
        return ""


class QueueFull(PermitRefused):
    reason = "QUEUE_FULL"

    def __init__(
        self,
        *,
        fixture_id: str,
        retry_after: float,
        estimated_wait: float,
        queue_depth: int,
        limit: int,
        paused_for: float,
        window: float,
        capacity: int,
    ) -> None:
        super().__init__(
            fixture_id=fixture_id,
            retry_after=retry_after,
            estimated_wait=estimated_wait,
            queue_depth=queue_depth,
            limit=limit,
            paused_for=paused_for,
        )
        self.window = window
        self.capacity = capacity

    def __str__(self) -> str:
        return (
            f"fixture {self.fixture_id!r} is at its limit of {self.limit} calls per "
            f"{self.window:g}s and its queue of {self.capacity} is full{self._paused()}; "
            f"retry in {self.retry_after:.3f}s"
        )


class WaitTooLong(PermitRefused):
    reason = "WAIT_TOO_LONG"

    def __init__(
        self,
        *,
        fixture_id: str,
        retry_after: float,
        estimated_wait: float,
        queue_depth: int,
        limit: int,
        paused_for: float,
        budget: float,
        expired: bool = False,
    ) -> None:
        super().__init__(
            fixture_id=fixture_id,
            retry_after=retry_after,
            estimated_wait=estimated_wait,
            queue_depth=queue_depth,
            limit=limit,
            paused_for=paused_for,
        )
        self.budget = budget
        self.expired = expired
        """True when the request waited in the queue and its deadline passed there."""

    def __str__(self) -> str:
        if self.expired:
            return (
                f"fixture {self.fixture_id!r} could not grant this request within the "
                f"{self.budget:.3f}s it could wait: permits in flight were held longer than "
                f"expected{self._paused()}; retry in {self.retry_after:.3f}s"
            )
        return (
            f"fixture {self.fixture_id!r} would grant this request in "
            f"{self.estimated_wait:.3f}s{self._paused()}, longer than it can wait "
            f"({self.budget:.3f}s); retry in {self.retry_after:.3f}s"
        )


class TooManyFixtures(PermitRefused):
    reason = "TOO_MANY_FIXTURES"

    def __init__(
        self,
        *,
        fixture_id: str,
        retry_after: float,
        limit: int,
        max_fixtures: int,
        caller: str | None = None,
    ) -> None:
        super().__init__(
            fixture_id=fixture_id,
            retry_after=retry_after,
            estimated_wait=retry_after,
            queue_depth=0,
            limit=limit,
        )
        self.max_fixtures = max_fixtures
        self.caller = caller
        """Set when it is the caller's own quota (--max-fixtures-per-caller) that is spent."""

    def __str__(self) -> str:
        if self.caller is not None:
            return (
                f"this caller already brought in the maximum of {self.max_fixtures} fixtures "
                f"still tracked (--max-fixtures-per-caller); fixture {self.fixture_id!r} cannot "
                "be added until one of them goes idle"
            )
        return (
            f"already tracking the maximum of {self.max_fixtures} fixtures (--max-fixtures); "
            f"fixture {self.fixture_id!r} cannot be added until one goes idle"
        )


class CallerQueueFull(PermitRefused):
    """The caller already has its maximum of requests waiting, across all fixtures."""

    reason = "CALLER_QUEUE_FULL"

    def __init__(
        self,
        *,
        fixture_id: str,
        retry_after: float,
        estimated_wait: float,
        queue_depth: int,
        limit: int,
        caller: str,
        capacity: int,
    ) -> None:
        super().__init__(
            fixture_id=fixture_id,
            retry_after=retry_after,
            estimated_wait=estimated_wait,
            queue_depth=queue_depth,
            limit=limit,
        )
        self.caller = caller
        self.capacity = capacity

    def __str__(self) -> str:
        return (
            f"this caller already has the maximum of {self.capacity} requests waiting "
            f"(--max-waiters-per-caller); retry in {self.retry_after:.3f}s"
        )
