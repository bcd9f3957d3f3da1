"""PermitServicer: hotspot.v1.PermitService over a PermitBackend. It only maps wire <-> core."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_client.proto_time import checked_seconds, to_timestamp
from hotspot_client.wire import scheduled_warming_from_proto
from hotspot_core.backend import PermitBackend
from hotspot_core.errors import InvalidArgument, PermitError, PermitRefused, ShuttingDown
from hotspot_core.grants import Grant
from hotspot_core.stats import stats_view
from hotspot_core.stats_feed import (
    DEFAULT_INTERVAL,
    StatsFeed,
    TooManySubscribers,
    check_interval,
)
from hotspot_server.transport.acquire_stream import AcquireStreamSession
from hotspot_server.transport.auth import check_upstream_report
from hotspot_server.transport.caller import caller_name
from hotspot_server.transport.grpc_errors import abort_with
from hotspot_server.transport.grpc_messages import (
    grant_to_proto,
    outcome_from_proto,
    snapshot_to_proto,
)

Context = grpc.aio.ServicerContext[object, object]
GrantObserver = Callable[[Grant], None]
"""Told of every grant (the metrics' wait histogram); it must be quick, it runs on the hot path."""
RefusalObserver = Callable[[PermitError], None]
"""Told of every Acquire refused (QUEUE_FULL, ..., SHUTTING_DOWN); as quick, for the same reason."""


MAX_DURATION = 86_400.0
"""No Duration a caller sends means more than a day (the server caps waits far lower)."""


def caller_of(context: Context) -> str:
    """Who calls, for permit ownership and per-caller quotas: the authenticated caller's name;
    on a server that runs open, the peer's address (its host: a caller's connections share it)."""
    name = caller_name()
    if name is not None:
        return name
    peer = context.peer() or ""
    kind, _, address = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        address = address.rpartition(":")[0]  # the host, without the connection's port
    return f"peer:{address or peer}"


class PermitServicer(permits_pb2_grpc.PermitServiceServicer):
    def __init__(
        self,
        backend: PermitBackend,
        feed: StatsFeed,
        on_grant: GrantObserver | None = None,
        on_refusal: RefusalObserver | None = None,
    ) -> None:
        self._backend = backend
        self._feed = feed
        self._on_grant = on_grant
        self._on_refusal = on_refusal

    async def Acquire(self, request: pb.AcquireRequest, context: Context) -> pb.AcquireResponse:
        try:
            grant = await self._acquire(request, context.time_remaining(), caller_of(context))
        except PermitError as error:
            await abort_with(context, error)
        return grant_to_proto(grant)

    async def Release(self, request: pb.ReleaseRequest, context: Context) -> pb.ReleaseResponse:
        try:
            already = await self._release(request, caller_of(context))
        except PermitError as error:
            await abort_with(context, error)
        return pb.ReleaseResponse(already_released=already)

    async def AcquireStream(
        self, request_iterator: AsyncIterator[pb.AcquireStreamRequest], context: Context
    ) -> AsyncIterator[pb.AcquireStreamResponse]:
        caller = caller_of(context)

        def acquire(request: pb.AcquireRequest) -> Awaitable[Grant]:
            # The stream's deadline bounds every item's wait.
            return self._acquire(request, context.time_remaining(), caller)

        session = AcquireStreamSession(acquire, lambda request: self._release(request, caller))
        async for response in session.run(request_iterator):
            yield response

    async def _acquire(
        self, request: pb.AcquireRequest, remaining: float | None, caller: str
    ) -> Grant:
        budget = (
            checked_seconds(request.max_wait, "max_wait", at_most=MAX_DURATION)
            if request.HasField("max_wait")
            else math.inf
        )
        if remaining is not None:
            budget = min(budget, max(0.0, remaining))
        try:
            grant = await self._backend.acquire(
                request.fixture_id,
                budget=budget,
                # An authenticated caller is named by its identity, not by what it says.
                client_id=caller_name() or request.client_id,
                request_id=request.request_id,
                caller=caller,
                warming=request.purpose == pb.PURPOSE_WARMING,
            )
        except (PermitRefused, ShuttingDown) as error:
            if self._on_refusal is not None:
                self._on_refusal(error)
            raise
        if self._on_grant is not None:
            self._on_grant(grant)
        return grant

    async def _release(self, request: pb.ReleaseRequest, caller: str) -> bool:
        """Whether the permit had been released before."""
        check_upstream_report(request)
        retry_after = (
            checked_seconds(
                request.upstream_retry_after, "upstream_retry_after", at_most=MAX_DURATION
            )
            if request.HasField("upstream_retry_after")
            else None
        )
        return await self._backend.release(
            self._permit_to_release(request, caller),
            outcome_from_proto(request.outcome),
            retry_after,
            caller=caller,
        )

    def _permit_to_release(self, request: pb.ReleaseRequest, caller: str) -> str:
        if not request.request_id:
            return request.permit_id
        if request.permit_id:
            raise InvalidArgument("give permit_id or request_id, not both", field="request_id")
        return self._backend.permit_for_request(request.request_id, caller)

    async def AnnounceWarmings(
        self, request: pb.AnnounceWarmingsRequest, context: Context
    ) -> pb.AnnounceWarmingsResponse:
        try:
            ttl = (
                checked_seconds(request.ttl, "ttl", at_most=MAX_DURATION)
                if request.HasField("ttl")
                else None
            )
            expires_at = await self._backend.announce_warmings(
                request.announcer,
                [scheduled_warming_from_proto(w) for w in request.warmings],
                ttl,
                caller=caller_of(context),
            )
        except PermitError as error:
            await abort_with(context, error)
        return pb.AnnounceWarmingsResponse(expires_at=to_timestamp(expires_at))

    async def Stats(self, request: pb.StatsRequest, context: Context) -> pb.StatsResponse:
        try:
            view = self._feed.check_view(stats_view(request.top_n, list(request.fixture_ids)))
        except PermitError as error:
            await abort_with(context, error)
        return snapshot_to_proto(await self._backend.stats(view))

    async def WatchStats(
        self, request: pb.WatchStatsRequest, context: Context
    ) -> AsyncIterator[pb.StatsResponse]:
        try:
            view = self._feed.check_view(stats_view(request.top_n, list(request.fixture_ids)))
            interval = check_interval(
                checked_seconds(request.interval, "interval", at_most=MAX_DURATION)
                if request.HasField("interval")
                else DEFAULT_INTERVAL
            )
        except PermitError as error:
            await abort_with(context, error)
        try:
            async with self._feed.subscribe(view, interval, caller_of(context)) as subscription:
                async for snapshot in subscription:
                    yield snapshot_to_proto(snapshot)
        except TooManySubscribers as error:
            await abort_with(context, error)
