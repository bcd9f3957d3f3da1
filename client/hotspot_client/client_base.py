"""PermitClientBase: what the async and the sync client share, apart from their channels."""

from __future__ import annotations

from hotspot_client.backoff import CallBudget, UnavailableRetry, call_budget
from hotspot_client.channel_options import ChannelSecurity
from hotspot_client.fallback import LocalPermits
from hotspot_client.outage import ServiceOutage
from hotspot_core.policy import PermitPolicy

RELEASE_TIMEOUT = 5.0
"""Seconds a release may take, retries included; an unreleased permit ends with its lease."""


class PermitClientBase:
    def __init__(
        self,
        target: str | None,
        channel: object | None,
        *,
        client_id: str,
        fail_open: bool,
        fallback_policy: PermitPolicy | None,
        retry: UnavailableRetry | None,
        release_timeout: float,
        security: ChannelSecurity | None = None,
        warming: bool = False,
    ) -> None:
        if (target is None) == (channel is None):
            raise ValueError(
                "give either the permit service's target (e.g. '127.0.0.1:50051') or an open "
                "channel, not both and not neither"
            )
        if security is not None and channel is not None:
            raise ValueError(
                "security is for the channel the client opens; a given one has its own"
            )
        if not release_timeout > 0:
            raise ValueError(f"release_timeout must be positive, got {release_timeout}")
        self.target = target or "the given channel"
        self.client_id = client_id
        self.warming = warming
        """A cache warmer's client: its permits are taken as PURPOSE_WARMING."""
        self.fail_open = fail_open
        self._owns_channel = channel is None
        self._security = security
        self._retry = retry or UnavailableRetry()
        self._release_timeout = release_timeout
        self._outage = ServiceOutage(self.target)
        self._local = LocalPermits(fallback_policy or PermitPolicy(), self._outage)
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")

    def _acquire_budget(self, max_wait: float | None) -> CallBudget:
        return call_budget(self._retry, self._outage, max_wait=max_wait)

    def _release_budget(self) -> CallBudget:
        return call_budget(self._retry, self._outage, timeout=self._release_timeout)
