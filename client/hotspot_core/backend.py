"""The small async interface that holds permit state, and the registry of its implementations.

Transports talk only to a PermitBackend. `memory://` keeps everything in this
process; other schemes (a Redis backend shared by replicas) register here.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from typing import Protocol, cast
from urllib.parse import urlsplit

from hotspot_core.alerts import AlertListener
from hotspot_core.grants import Grant, Outcome
from hotspot_core.persistence import StateStore
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsSnapshot, StatsView
from hotspot_core.warming_board import ScheduledWarming


class PermitBackend(Protocol):
    @property
    def policy(self) -> PermitPolicy: ...

    async def acquire(
        self,
        fixture_id: str,
        *,
        budget: float = math.inf,
        client_id: str = "",
        request_id: str = "",
        caller: str = "",
        warming: bool = False,
    ) -> Grant:
        """Grant now, or wait in the fixture's queue, or raise a PermitError at once.

        `caller` is who asks (an authenticated name, else where the call came from): the
        permit belongs to it, and its quotas (fixtures brought in, requests waiting) apply.
        `warming`: a cache warmer asks; the fixture shows as warming for a window.

        `budget` is how long the caller can wait (seconds); the policy's max_wait
        caps it. Cancelling the awaiting task means the acquire did not happen: it
        leaves the queue at once, and a grant made in that same instant is taken
        back, so a cancelled acquire holds no permit and spends no slot.

        A `request_id` whose permit is still in flight gets that same grant back, not a second
        one: a request resent after a broken stream never takes two slots.
        """
        ...

    def permit_for_request(self, request_id: str, caller: str = "") -> str:
        """The caller's permit granted to the Acquire that named `request_id`; PermitNotFound
        if none is in flight."""
        ...

    async def release(
        self,
        permit_id: str,
        outcome: Outcome = Outcome.SUCCESS,
        upstream_retry_after: float | None = None,
        *,
        caller: str = "",
    ) -> bool:
        """End a permit's lease. Returns True if it had already been released. Only the caller
        that acquired the permit may release it: to anyone else it is PermitNotFound."""
        ...

    async def stats(self, view: StatsView) -> StatsSnapshot:
        """One view's snapshot, exact at its generated_at (the rows and the ranking alike)."""
        ...

    async def snapshots(self, views: Sequence[StatsView]) -> list[StatsSnapshot]:
        """One snapshot per view, in order, all generated at one moment from one ranking of
        the hottest: what a stats tick serves to every subscriber. Its cost must not grow
        with the fixtures tracked (a backend keeps its ranking as it goes)."""
        ...

    async def announce_warmings(
        self,
        announcer: str,
        warmings: Sequence[ScheduledWarming],
        ttl: float | None = None,
        *,
        caller: str = "",
    ) -> float:
        """Put a cache warmer's schedule on the fleet's warming board (warming_board.py), in
        place of what `caller` announced as `announcer` before; when it lapses (Unix seconds)."""
        ...

    def unready_reason(self) -> str | None:
        """None while the backend can grant; else why it cannot (its store fails to write)."""
        ...

    def subscribe_alerts(self, listener: AlertListener) -> Callable[[], None]:
        """Call `listener` on every alert raised or cleared; returns the unsubscribe call."""
        ...

    async def close(self) -> None:
        """Refuse new requests and answer every waiter with ShuttingDown."""
        ...


BackendFactory = Callable[[str, PermitPolicy, StateStore | None], PermitBackend]
"""Makes a backend from its URL, the policy and, for a backend that uses one, a durable store."""


def _memory(url: str, policy: PermitPolicy, store: StateStore | None) -> PermitBackend:
    from hotspot_core.memory import MemoryBackend

    return MemoryBackend(policy, store=store)


def _redis(url: str, policy: PermitPolicy, store: StateStore | None) -> PermitBackend:
    # Shipped by the server distribution (with redis-py), not by this client: looked up by name.
    try:
        module = importlib.import_module("hotspot_server.redis_backend")
    except ImportError as error:
        raise ValueError(
            f"redis:// needs the hotspot-permits server with redis-py: {error}"
        ) from None
    return cast(PermitBackend, module.open_redis_backend(url, policy))


_FACTORIES: dict[str, BackendFactory] = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
    "redis+sentinel": _redis,
    "redis+cluster": _redis,
    "rediss+cluster": _redis,
}


def register_backend(scheme: str, factory: BackendFactory) -> None:
    _FACTORIES[scheme] = factory


def keeps_local_state(url: str) -> bool:
    """Whether the backend a URL names keeps its state in this process (and so wants a store)."""
    return urlsplit(url).scheme == "memory"


def open_backend(url: str, policy: PermitPolicy, store: StateStore | None = None) -> PermitBackend:
    """Create the backend a URL names (`memory://`, ...). Must run inside the event loop."""
    scheme = urlsplit(url).scheme
    factory = _FACTORIES.get(scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(_FACTORIES))
        raise ValueError(f"unknown backend {url!r}; known backends: {known}")
    return factory(url, policy, store)
