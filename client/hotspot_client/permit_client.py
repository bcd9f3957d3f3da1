"""PermitClient: permits from the hotspot service over grpc.aio."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import grpc

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_client.backoff import CallBudget, UnavailableRetry, after_failure
from hotspot_client.channel_options import CHANNEL_OPTIONS, ChannelSecurity
from hotspot_client.client_base import RELEASE_TIMEOUT, PermitClientBase
from hotspot_client.errors import PermitError, PermitServiceUnavailable
from hotspot_client.permit import Outcome, Permit, log_release_failure
from hotspot_client.permit_stream import PermitStream
from hotspot_client.proto_time import timestamp_seconds
from hotspot_client.wire import (
    acquire_request,
    announce_warmings_request,
    check_release,
    permit_from_response,
    release_request,
)
from hotspot_core.policy import PermitPolicy
from hotspot_core.warming_board import ScheduledWarming

if TYPE_CHECKING:
    from hotspot.v1.permits_pb2_grpc import PermitServiceAsyncStub

Request = TypeVar("Request")
Response = TypeVar("Response")


class PermitClient(PermitClientBase):
    """Permits from the hotspot service, for asyncio code.

    Created from a target (`127.0.0.1:50051`; the client opens, and closes, its own
    channel with keepalive) or from an open `grpc.aio.Channel` (left open on close).
    `security` (ChannelSecurity: CA file, client certificate, bearer token) secures the
    channel the client opens; without it the channel is plain text.
    The channel is opened on first use, inside the event loop that uses it.

    fail_open=False (the default): when the service cannot be reached, calls raise
    PermitServiceUnavailable. fail_open=True: they take permits from an in-process
    sliding window per fixture instead (`fallback_policy`: by default the service's
    default limit of 50 per 60 s), and log a warning that they did.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        channel: grpc.aio.Channel | None = None,
        client_id: str = "",
        fail_open: bool = False,
        fallback_policy: PermitPolicy | None = None,
        retry: UnavailableRetry | None = None,
        release_timeout: float = RELEASE_TIMEOUT,
        security: ChannelSecurity | None = None,
        warming: bool = False,
        streaming: bool = True,
    ) -> None:
        super().__init__(
            target,
            channel,
            client_id=client_id,
            fail_open=fail_open,
            fallback_policy=fallback_policy,
            retry=retry,
            release_timeout=release_timeout,
            security=security,
            warming=warming,
        )
        self._channel = channel
        self._stub: PermitServiceAsyncStub | None = None
        self.streaming = streaming
        """Acquires and releases go over one AcquireStream (False: one unary call each)."""
        self._stream: PermitStream | None = None
        # Releases that outlive their caller (a cancelled block, a grant nobody will use):
        # referenced here so that they run to the end.
        self._releasing: set[asyncio.Task[None]] = set()
        # Request ids: a random prefix per client and a counter. Unique as a uuid4 each would be
        # (the service keys them by caller, whose processes may share a host), at a tenth of the
        # cost: two uuid4s were a twentieth of a streamed permit's client CPU.
        self._request_prefix = uuid.uuid4().hex
        self._request_numbers = itertools.count()

    def _new_request_id(self) -> str:
        return f"{self._request_prefix}{next(self._request_numbers):x}"

    # -- Lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel the client opened (not one it was given) and the local windows."""
        if self._closed:
            return
        if self._releasing:  # a release owed to the service goes out before the channel closes
            await asyncio.wait(self._releasing, timeout=self._release_timeout)
        self._closed = True
        if self._stream is not None:
            await self._stream.close()
        await self._local.close()
        if self._owns_channel and self._channel is not None:
            await self._channel.close(None)

    def _permit_stub(self) -> PermitServiceAsyncStub:
        self._check_open()
        if self._stub is None:
            if self._channel is None:
                self._channel = self._open_channel()
            self._stub = permits_pb2_grpc.PermitServiceStub(self._channel)
        return self._stub

    def _open_channel(self) -> grpc.aio.Channel:
        if self._security is None:
            return grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        credentials = self._security.credentials(self.target)
        return grpc.aio.secure_channel(self.target, credentials, options=CHANNEL_OPTIONS)

    # -- Permits ---------------------------------------------------------------------------

    @asynccontextmanager
    async def permit(
        self, fixture_id: str, *, max_wait: float | None = None
    ) -> AsyncIterator[Permit]:
        """Hold a permit for the block; released as SUCCESS, FAILURE if it raises, or as marked.

        A block that is cancelled still releases (as FAILURE: its call may have been sent),
        and the release runs to its end even if the caller is cancelled again meanwhile.
        """
        permit = await self.acquire(fixture_id, max_wait=max_wait)
        failed = True
        try:
            yield permit
            failed = False
        finally:
            outcome = permit.exit_outcome(failed)
            # Shielded: the slot stays taken until the service hears of the release.
            await asyncio.shield(self._release_in_background(permit, outcome))

    async def acquire(self, fixture_id: str, *, max_wait: float | None = None) -> Permit:
        """Wait for a permit, or raise at once when waiting cannot help.

        max_wait: the caller's time budget in seconds, retries of UNAVAILABLE included;
        the service refuses at once (WAIT_TOO_LONG) a request it could not grant within
        it. 0: never queue. None: wait as long as the service allows (its --max-wait),
        retrying UNAVAILABLE for at most `retry.give_up_after`. Raises RateLimitExceeded,
        InvalidFixtureId, PermitServiceUnavailable (when fail-closed).
        """
        budget = self._acquire_budget(max_wait)
        stub = self._permit_stub()
        # Names this request to the service, so that a grant its caller never saw can be given
        # back (a cancellation crossing the answer on the wire).
        request_id = self._new_request_id()

        def request(into: pb.AcquireRequest | None = None) -> pb.AcquireRequest:
            return acquire_request(
                fixture_id,
                self.client_id,
                budget.max_wait_left(),
                request_id,
                self.warming,
                into=into,
            )

        def item() -> pb.AcquireStreamItem:
            streamed = pb.AcquireStreamItem(request_id=request_id)
            request(into=streamed.acquire)
            return streamed

        try:
            response = None
            if self.streaming:
                try:
                    result = await self._permit_stream().exchange(
                        request_id, item, budget, is_acquire=True
                    )
                except PermitError as error:
                    if not self._no_stream(error):
                        raise
                else:
                    response = result.granted
            if response is None:
                response = await self._call(
                    stub.Acquire,
                    request,
                    budget,
                    on_cancel=lambda call: self._give_back_if_granted(call, request_id),
                )
        except PermitServiceUnavailable as error:
            if not self.fail_open:
                raise
            return await self._local.acquire(
                fixture_id, budget=budget.wait_left(), client_id=self.client_id, cause=error
            )
        return permit_from_response(response)

    async def release(
        self,
        permit: Permit,
        outcome: Outcome = Outcome.SUCCESS,
        upstream_retry_after: float | None = None,
    ) -> bool:
        """End the permit's lease, reporting what happened. True if it was released before."""
        self._check_open()
        delay = check_release(outcome, upstream_retry_after)
        if permit.local:
            return await self._local.release(permit, outcome, delay)
        if self.streaming:
            try:
                return await self._streamed_release(
                    release_request(permit.permit_id, outcome, delay)
                )
            except PermitError as error:
                if not self._no_stream(error):
                    raise
        response = await self._call(
            self._permit_stub().Release,
            lambda: release_request(permit.permit_id, outcome, delay),
            self._release_budget(),
        )
        return response.already_released

    async def announce_warmings(
        self,
        warmings: Sequence[ScheduledWarming],
        *,
        announcer: str,
        ttl: float | None = None,
    ) -> float:
        """Put this warmer's whole schedule on the service's warming board, in place of what
        it announced as `announcer` before (an empty one withdraws it); it lapses after `ttl`
        seconds (default 5 min) unless announced again. Returns when it lapses (Unix seconds).
        Raises PermitError (INVALID_ARGUMENT naming the rule, RESOURCE_EXHAUSTED past the
        announcer caps) as other calls do."""
        self._check_open()
        response = await self._call(
            self._permit_stub().AnnounceWarmings,
            lambda: announce_warmings_request(announcer, warmings, ttl),
            self._release_budget(),
        )
        return timestamp_seconds(response.expires_at)

    def _no_stream(self, error: PermitError) -> bool:
        """Whether a streamed call's `error` says the service has no AcquireStream (an older
        server), which nothing was done for: from then on this client makes unary calls.
        (Checked in place, not by a wrapping coroutine: that was 5 % of a streamed refusal.)"""
        if error.code is not grpc.StatusCode.UNIMPLEMENTED:
            return False
        self.streaming = False
        return True

    async def _streamed_release(self, request: pb.ReleaseRequest) -> bool:
        item_id = self._new_request_id()
        result = await self._permit_stream().exchange(
            item_id,
            lambda: pb.AcquireStreamItem(request_id=item_id, release=request),
            self._release_budget(),
            is_acquire=False,
        )
        return result.released.already_released

    def _permit_stream(self) -> PermitStream:
        if self._stream is None:
            stub = self._permit_stub()

            def release_orphan(granted: pb.AcquireResponse) -> None:
                self._release_in_background(permit_from_response(granted))

            self._stream = PermitStream(
                lambda: stub.AcquireStream(None),
                self._outage,
                on_orphan_grant=release_orphan,
                on_lost_acquire=self._release_lost_acquire,
            )
        return self._stream

    def _release_lost_acquire(self, request_id: str) -> None:
        """An acquire whose caller left, on a stream that broke before its answer came: release
        whatever was granted to it, by its request id (nothing, most often: NOT_FOUND)."""

        async def release() -> None:
            with contextlib.suppress(PermitError):
                await self._streamed_release(
                    release_request("", Outcome.NOT_SENT, None, request_id)
                )

        task = asyncio.create_task(release())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    def _release_in_background(
        self, permit: Permit, outcome: Outcome = Outcome.NOT_SENT
    ) -> asyncio.Task[None]:
        async def release() -> None:
            try:
                await self.release(permit, outcome, permit.upstream_retry_after)
            except PermitError as error:
                log_release_failure(permit, outcome, error)

        task = asyncio.create_task(release())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        return task

    def _give_back_if_granted(
        self, call: grpc.aio.UnaryUnaryCall[Request, Response], request_id: str
    ) -> None:
        """The caller of an Acquire was cancelled (or timed out) while its answer was on the
        way. Cancelling the call takes it out of the queue, and the service takes back a grant
        it had not answered yet. A grant already answered is released NOT_SENT at once,
        by its permit id if the answer arrived, else by the request id, rather than held until
        its lease ends."""

        async def give_back() -> None:
            try:
                response = await call
            except (asyncio.CancelledError, grpc.RpcError):
                # The answer, if any, is lost: release whatever was granted to the request.
                # Sent on the same channel after the cancellation, so the service has either
                # taken the request out of its queue or recorded its grant by now.
                with contextlib.suppress(PermitError, grpc.RpcError):
                    await self._permit_stub().Release(
                        release_request("", Outcome.NOT_SENT, None, request_id),
                        timeout=self._release_timeout,
                    )
                return
            assert isinstance(response, pb.AcquireResponse)
            await self._release_in_background(permit_from_response(response))

        task = asyncio.create_task(give_back())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    # -- Calls -----------------------------------------------------------------------------

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, Response],
        request: Callable[[], Request],
        budget: CallBudget,
        on_cancel: Callable[[grpc.aio.UnaryUnaryCall[Request, Response]], None] | None = None,
    ) -> Response:
        while True:
            try:
                call = method(request(), timeout=budget.deadline_left())
                try:
                    response = await call
                except asyncio.CancelledError:
                    if on_cancel is not None:
                        on_cancel(call)
                    raise
            except grpc.RpcError as rpc_error:
                error, delay = after_failure(rpc_error, budget, self._outage)
                if delay is None:
                    # The error's traceback keeps this frame alive, and the gRPC error's kept
                    # gRPC's frames that hold the call: without them, and without the error in
                    # this frame, a refusal leaves no cycle for the collector to find.
                    rpc_error.__traceback__ = None
                    try:
                        raise error from rpc_error
                    finally:
                        del error
                await asyncio.sleep(delay)
            else:
                self._outage.end()
                return response
