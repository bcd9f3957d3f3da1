"""SyncPermitClient: permits from the hotspot service for blocking code (the sync stub)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self, TypeVar

import grpc

from hotspot.v1 import permits_pb2_grpc
from hotspot_client.backoff import CallBudget, UnavailableRetry, after_failure
from hotspot_client.channel_options import CHANNEL_OPTIONS, ChannelSecurity
from hotspot_client.client_base import RELEASE_TIMEOUT, PermitClientBase
from hotspot_client.errors import PermitError, PermitServiceUnavailable
from hotspot_client.loop_thread import LoopThread
from hotspot_client.permit import Outcome, Permit, log_release_failure
from hotspot_client.wire import (
    acquire_request,
    check_release,
    permit_from_response,
    release_request,
)
from hotspot_core.policy import PermitPolicy

Request = TypeVar("Request")
Response = TypeVar("Response")


class SyncPermitClient(PermitClientBase):
    """The blocking twin of PermitClient: the same arguments, calls and errors.

    Safe to share between threads. With fail_open=True the in-process windows
    run on one private event-loop thread, started on the first fallback.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        channel: grpc.Channel | None = None,
        client_id: str = "",
        fail_open: bool = False,
        fallback_policy: PermitPolicy | None = None,
        retry: UnavailableRetry | None = None,
        release_timeout: float = RELEASE_TIMEOUT,
        security: ChannelSecurity | None = None,
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
        )
        if channel is not None:
            self._channel = channel
        elif security is not None:
            credentials = security.credentials(self.target)
            self._channel = grpc.secure_channel(self.target, credentials, options=CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        self._stub = permits_pb2_grpc.PermitServiceStub(self._channel)
        self._fallback_loop = LoopThread("hotspot-fail-open")

    # -- Lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel the client opened (not one it was given) and the local windows."""
        if self._closed:
            return
        self._closed = True
        if self._fallback_loop.running:
            self._fallback_loop.run(self._local.close())
            self._fallback_loop.stop()
        if self._owns_channel:
            self._channel.close()

    # -- Permits ---------------------------------------------------------------------------

    @contextmanager
    def permit(self, fixture_id: str, *, max_wait: float | None = None) -> Iterator[Permit]:
        """Hold a permit for the block; released as SUCCESS, FAILURE if it raises, or as marked."""
        permit = self.acquire(fixture_id, max_wait=max_wait)
        failed = True
        try:
            yield permit
            failed = False
        finally:
            outcome = permit.exit_outcome(failed)
            try:
                self.release(permit, outcome, permit.upstream_retry_after)
            except PermitError as error:
                log_release_failure(permit, outcome, error)

    def acquire(self, fixture_id: str, *, max_wait: float | None = None) -> Permit:
        """Block for a permit, or raise at once when waiting cannot help (see PermitClient)."""
        self._check_open()
        budget = self._acquire_budget(max_wait)
        try:
            response = self._call(
                self._stub.Acquire,
                lambda: acquire_request(fixture_id, self.client_id, budget.max_wait_left()),
                budget,
            )
        except PermitServiceUnavailable as error:
            if not self.fail_open:
                raise
            return self._fallback_loop.run(
                self._local.acquire(
                    fixture_id, budget=budget.wait_left(), client_id=self.client_id, cause=error
                )
            )
        return permit_from_response(response)

    def release(
        self,
        permit: Permit,
        outcome: Outcome = Outcome.SUCCESS,
        upstream_retry_after: float | None = None,
    ) -> bool:
        """End the permit's lease, reporting what happened. True if it was released before."""
        self._check_open()
        delay = check_release(outcome, upstream_retry_after)
        if permit.local:
            return self._fallback_loop.run(self._local.release(permit, outcome, delay))
        response = self._call(
            self._stub.Release,
            lambda: release_request(permit.permit_id, outcome, delay),
            self._release_budget(),
        )
        return response.already_released

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[Request, Response],
        request: Callable[[], Request],
        budget: CallBudget,
    ) -> Response:
        while True:
            try:
                response = method(request(), timeout=budget.deadline_left())
            except grpc.RpcError as rpc_error:
                error, delay = after_failure(rpc_error, budget, self._outage)
                if delay is None:
                    raise error from rpc_error
                time.sleep(delay)
            else:
                self._outage.end()
                return response
