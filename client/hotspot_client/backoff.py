"""Retrying UNAVAILABLE: capped, jittered exponential backoff within the caller's time budget."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from hotspot_client.errors import PermitError, PermitServiceUnavailable, error_from_rpc
from hotspot_client.outage import ServiceOutage

DEFAULT_RETRY_FOR = 5.0
"""Seconds a call without max_wait retries UNAVAILABLE: it has no budget of its own to spend."""
ANSWER_MARGIN = 5.0
"""Seconds beyond max_wait the client waits for an answer: the service answers by max_wait
itself (grant or refusal), so only a hung service or network uses this."""


@dataclass(frozen=True, slots=True)
class UnavailableRetry:
    """How a call that met UNAVAILABLE is retried. RESOURCE_EXHAUSTED is never retried."""

    first_delay: float = 0.05
    """Seconds before the first retry (before jitter)."""
    max_delay: float = 1.0
    """Cap on any one delay."""
    multiplier: float = 2.0
    give_up_after: float | None = None
    """Most seconds spent retrying one call, even when the caller's budget is longer.
    None: a call with max_wait retries for all of it (a server restart included), one
    without for DEFAULT_RETRY_FOR."""

    def __post_init__(self) -> None:
        rules = [
            (self.first_delay > 0, f"first_delay must be positive, got {self.first_delay}"),
            (
                self.max_delay >= self.first_delay,
                f"max_delay must be at least first_delay, got {self.max_delay}",
            ),
            (self.multiplier >= 1, f"multiplier must be at least 1, got {self.multiplier}"),
            (
                self.give_up_after is None or self.give_up_after >= 0,
                f"give_up_after must be 0 or more (or None), got {self.give_up_after}",
            ),
        ]
        for ok, message in rules:
            if not ok:
                raise ValueError(message)


class CallBudget:
    """The caller's time for one call, retries included: its max_wait and its timeout.

    Each attempt gets what is left, so a retried Acquire never waits in the queue
    longer than the caller allowed in all.
    """

    def __init__(
        self,
        retry: UnavailableRetry,
        *,
        max_wait: float | None = None,
        timeout: float | None = None,
        retry_for: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        for name, value in (("max_wait", max_wait), ("timeout", timeout)):
            if value is not None and not value >= 0:  # also catches NaN
                raise ValueError(f"{name} must be 0 or more seconds (or None), got {value}")
        self._retry = retry
        self._clock = clock
        self._jitter = jitter
        start = clock()
        self._max_wait_end = None if max_wait is None else start + max_wait
        self._timeout_end = None if timeout is None else start + timeout
        caller_end = min(
            (end for end in (self._max_wait_end, self._timeout_end) if end is not None),
            default=math.inf,
        )
        if retry_for is not None:
            span = retry_for
        elif retry.give_up_after is not None:
            span = retry.give_up_after
        else:
            span = DEFAULT_RETRY_FOR if max_wait is None else math.inf
        self._retry_end = min(caller_end, start + span)
        self._cap = retry.first_delay

    def max_wait_left(self) -> float | None:
        """What to send as AcquireRequest.max_wait (None: leave it out)."""
        if self._max_wait_end is None:
            return None
        return max(0.0, self._max_wait_end - self._clock())

    def wait_left(self) -> float:
        """How long a queue may still hold the caller (the smaller of max_wait and timeout)."""
        now = self._clock()
        ends = [end for end in (self._max_wait_end, self._timeout_end) if end is not None]
        return max(0.0, min(ends) - now) if ends else math.inf

    def deadline_left(self) -> float | None:
        """The gRPC timeout for the next attempt (None: no deadline)."""
        if self._timeout_end is not None:
            return max(0.0, self._timeout_end - self._clock())
        max_wait = self.max_wait_left()
        return None if max_wait is None else max_wait + ANSWER_MARGIN

    def next_delay(self, asked: float | None = None) -> float | None:
        """Seconds to sleep before the next attempt, or None when the budget is spent.

        `asked` is the service's own RetryInfo delay, never undercut.
        """
        cap = self._cap
        self._cap = min(self._retry.max_delay, cap * self._retry.multiplier)
        # Equal jitter: callers that failed together spread out, and none retries at once.
        delay = cap / 2 + self._jitter() * cap / 2
        if asked is not None:
            delay = max(delay, asked)
        if self._clock() + delay >= self._retry_end:
            return None
        return delay


def call_budget(
    retry: UnavailableRetry,
    outage: ServiceOutage,
    *,
    max_wait: float | None = None,
    timeout: float | None = None,
) -> CallBudget:
    """A call's budget; while the service is known down, it is tried once, without backoff."""
    retry_for = 0.0 if outage.down else None
    return CallBudget(retry, max_wait=max_wait, timeout=timeout, retry_for=retry_for)


def after_failure(
    rpc_error: grpc.RpcError, budget: CallBudget, outage: ServiceOutage
) -> tuple[PermitError, float | None]:
    """The client error for a failed attempt, and the delay before retrying it (None: raise)."""
    error = error_from_rpc(rpc_error)
    return error, retry_delay(error, budget, outage)


def retry_delay(error: PermitError, budget: CallBudget, outage: ServiceOutage) -> float | None:
    """The delay before retrying a call that failed with `error` (None: give up). Only an
    UNAVAILABLE is retried, and only within the call's budget."""
    if not isinstance(error, PermitServiceUnavailable):
        outage.end()  # the service answered, if only to refuse
        return None
    delay = (
        budget.next_delay(error.retry_after) if error.code is grpc.StatusCode.UNAVAILABLE else None
    )
    if delay is None:
        outage.begin(error)
    return delay
