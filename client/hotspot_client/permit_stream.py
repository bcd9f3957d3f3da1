"""PermitStream: a channel's concurrent acquires and releases multiplexed over one AcquireStream.

Each request is an item with its own request id, its own CallBudget and one answer. Items that
callers submit while a write is in flight go out together in the next write (small batches,
never a timer). When the stream breaks, nothing is replayed blindly: each request that was sent
and not answered is resent, with the same request id (the service gives a permit still in
flight back to its request id rather than granting twice), on a new stream, only if its own
budget allows a retry of UNAVAILABLE; otherwise its caller gets the error. A caller that leaves
(cancelled, or out of time) sends a cancel item; a grant that still reaches it is handed to
`on_orphan_grant` (released NOT_SENT), and an answer lost with a broken stream to
`on_lost_acquire` (released NOT_SENT by its request id).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable

import grpc

from hotspot.v1 import permits_pb2 as pb
from hotspot_client.backoff import CallBudget, retry_delay
from hotspot_client.errors import (
    PermitError,
    PermitServiceUnavailable,
    error_from_rpc,
    error_from_stream_error,
)
from hotspot_client.outage import ServiceOutage

StreamCall = grpc.aio.StreamStreamCall[pb.AcquireStreamRequest, pb.AcquireStreamResponse]
MAX_BATCH = 256
"""Items per write: enough to spread a write's cost, small enough to keep each write short."""
DEADLINE_SLACK = 0.1
"""Seconds a request may be timed out late: its deadline is a safety net at least ANSWER_MARGIN
(5 s) past its max_wait, and the one timer then fires at most ten times a second."""


class _Request:
    __slots__ = ("abandoned", "budget", "build", "future", "is_acquire", "number")

    def __init__(
        self,
        build: Callable[[], pb.AcquireStreamItem],
        budget: CallBudget,
        future: asyncio.Future[pb.AcquireStreamResult],
        is_acquire: bool,
    ) -> None:
        self.build = build
        """Builds the item at each send: a resent acquire asks only for the wait it has left."""
        self.budget = budget
        self.future = future
        self.is_acquire = is_acquire
        self.abandoned = False
        """Its caller left: the answer, if any, is not for anyone."""
        self.number = 0
        """Tells this request from an earlier one of the same id in the deadline heap."""


class _Stream:
    """One AcquireStream call and the request ids written on it."""

    __slots__ = ("broken", "call", "reader", "sent", "writer")

    def __init__(self, call: StreamCall) -> None:
        self.call = call
        self.sent: set[str] = set()
        self.broken = False
        self.reader: asyncio.Task[None] | None = None
        self.writer: asyncio.Task[None] | None = None


class PermitStream:
    def __init__(
        self,
        open_call: Callable[[], StreamCall],
        outage: ServiceOutage,
        on_orphan_grant: Callable[[pb.AcquireResponse], None],
        on_lost_acquire: Callable[[str], None],
    ) -> None:
        self._open_call = open_call
        self._outage = outage
        self._on_orphan_grant = on_orphan_grant
        self._on_lost_acquire = on_lost_acquire
        self._requests: dict[str, _Request] = {}
        """Every request not answered yet, by request id."""
        self._outbox: list[pb.AcquireStreamItem] = []
        self._wake = asyncio.Event()
        self._stream: _Stream | None = None
        self._closed = False
        # The requests' deadlines, soonest first, and one timer for the soonest: a timer per
        # request cost as much as the rest of its bookkeeping. Answered requests are skipped
        # when their deadline comes up; an entry holds only the id, not the request.
        self._deadlines: list[tuple[float, int, str]] = []
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._numbers = itertools.count(1)

    async def exchange(
        self,
        request_id: str,
        build: Callable[[], pb.AcquireStreamItem],
        budget: CallBudget,
        *,
        is_acquire: bool,
    ) -> pb.AcquireStreamResult:
        """Send an acquire or release item and wait for its answer (granted or released);
        raise the PermitError it was answered with, or that ended its budget."""
        loop = asyncio.get_running_loop()
        request = _Request(build, budget, loop.create_future(), is_acquire)
        self._requests[request_id] = request
        deadline = budget.deadline_left()
        if deadline is not None:
            # Only a hung service or network uses this: the service answers by max_wait itself.
            request.number = next(self._numbers)
            self._add_deadline(loop, loop.time() + deadline, request.number, request_id)
        self._send(request_id)
        future = request.future
        del request
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                # Answered, but its caller was cancelled before it could take the answer.
                if future.result().HasField("granted"):
                    self._on_orphan_grant(future.result().granted)
            else:
                self._abandon(request_id)
            raise
        finally:
            # A refusal's traceback keeps this frame alive: without the future in it, there is
            # no cycle (future, refusal, traceback, frame) for the collector to find, per call.
            del future

    async def close(self) -> None:
        self._closed = True
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        error = PermitServiceUnavailable("the permit client was closed")
        for request_id in list(self._requests):
            self._finish(request_id, error)
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.broken = True
            for task in (stream.reader, stream.writer):
                if task is not None:
                    task.cancel()
            stream.call.cancel()

    # -- Sending ---------------------------------------------------------------------------

    def _send(self, request_id: str) -> None:
        request = self._requests.get(request_id)
        if request is None or self._closed:
            return
        if request.abandoned:  # its caller left while it waited to be resent
            self._finish(request_id, PermitServiceUnavailable("abandoned"))
            return
        self._outbox.append(request.build())
        self._wake.set()
        if self._stream is None:
            self._open()

    def _open(self) -> None:
        stream = self._stream = _Stream(self._open_call())
        stream.reader = asyncio.create_task(self._read(stream))
        stream.writer = asyncio.create_task(self._write(stream))

    async def _write(self, stream: _Stream) -> None:
        outbox = self._outbox
        try:
            while True:
                # Whatever callers submit meanwhile (this loop iteration, or the previous
                # write's duration) goes out in this write.
                await asyncio.sleep(0)
                if not outbox:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                batch = outbox[:MAX_BATCH]
                del outbox[:MAX_BATCH]
                for item in batch:
                    if item.WhichOneof("kind") != "cancel":
                        stream.sent.add(item.request_id)
                await stream.call.write(pb.AcquireStreamRequest(items=batch))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # any failed write means the stream is gone
            self._broken(stream, PermitServiceUnavailable(f"the permit stream broke: {error}"))

    def _abandon(self, request_id: str) -> None:
        """The caller left before its answer: the service is asked to drop the request."""
        request = self._requests.get(request_id)
        if request is None or request.abandoned:
            return
        request.abandoned = True
        request.number = 0  # its deadline no longer matters
        if request.is_acquire and self._stream is not None:
            self._outbox.append(
                pb.AcquireStreamItem(request_id=request_id, cancel=pb.AcquireStreamCancel())
            )
            self._wake.set()

    def _add_deadline(
        self, loop: asyncio.AbstractEventLoop, at: float, number: int, request_id: str
    ) -> None:
        deadlines = self._deadlines
        if len(deadlines) > 2 * len(self._requests) + 1000:
            # Mostly answered requests (deadlines a minute out, say): keep only the live ones.
            requests = self._requests
            deadlines[:] = [
                entry
                for entry in deadlines
                if (request := requests.get(entry[2])) is not None and request.number == entry[1]
            ]
            heapq.heapify(deadlines)
        heapq.heappush(deadlines, (at, number, request_id))
        timer = self._deadline_timer
        if timer is None or at < timer.when() - DEADLINE_SLACK:
            if timer is not None:
                timer.cancel()
            self._deadline_timer = loop.call_at(at, self._deadlines_passed)

    def _deadlines_passed(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadlines = self._deadlines
        self._deadline_timer = None
        while deadlines and deadlines[0][0] <= now:
            _, number, request_id = heapq.heappop(deadlines)
            request = self._requests.get(request_id)
            if request is not None and request.number == number:
                self._time_out(request_id, request)
        if deadlines:
            at = max(deadlines[0][0], now + DEADLINE_SLACK)
            self._deadline_timer = loop.call_at(at, self._deadlines_passed)

    def _time_out(self, request_id: str, request: _Request) -> None:
        if request.future.done():
            return
        request.future.set_exception(
            PermitServiceUnavailable("the permit service did not answer in time")
        )
        self._abandon(request_id)

    # -- Answers ---------------------------------------------------------------------------

    async def _read(self, stream: _Stream) -> None:
        try:
            async for response in stream.call:
                for result in response.results:
                    stream.sent.discard(result.request_id)
                    self._answered(result)
            error: PermitError = PermitServiceUnavailable("the permit stream ended")
        except grpc.RpcError as rpc_error:
            error = error_from_rpc(rpc_error)
            if isinstance(error, PermitServiceUnavailable):
                # However it broke (UNAVAILABLE, CANCELLED by a stopping server, ...), the
                # service may answer on a new stream: a request may retry within its budget.
                error = PermitServiceUnavailable(
                    f"the permit stream broke: {error.message}",
                    code=grpc.StatusCode.UNAVAILABLE,
                    retry_after=error.retry_after,
                    response=rpc_error,
                )
        self._broken(stream, error)

    def _answered(self, result: pb.AcquireStreamResult) -> None:
        request_id = result.request_id
        request = self._requests.get(request_id)
        if request is None:
            return
        if result.WhichOneof("result") != "error":
            self._outage.end()
            self._finish(request_id, result)
            return
        error = error_from_stream_error(result.error)
        if request.abandoned:
            self._finish(request_id, error)
            return
        delay = retry_delay(error, request.budget, self._outage)
        if delay is None:
            self._finish(request_id, error)
        else:  # SHUTTING_DOWN, STORE_UNAVAILABLE: the same request again, within its budget
            asyncio.get_running_loop().call_later(delay, self._send, request_id)

    def _broken(self, stream: _Stream, error: PermitError) -> None:
        if stream.broken:
            return
        stream.broken = True
        if self._stream is stream:
            self._stream = None
        if stream.writer is not None:
            stream.writer.cancel()
        stream.call.cancel()
        loop = asyncio.get_running_loop()
        for request_id in stream.sent:
            request = self._requests.get(request_id)
            if request is None:
                continue  # answered
            if request.abandoned:
                self._finish(request_id, error)
                if request.is_acquire:
                    # Its grant may have been answered on the stream that broke.
                    self._on_lost_acquire(request_id)
                continue
            delay = retry_delay(error, request.budget, self._outage)
            if delay is None:
                self._finish(request_id, error)
            else:
                loop.call_later(delay, self._send, request_id)
        if self._outbox and not self._closed:
            self._open()  # items never written go out on a new stream

    def _finish(self, request_id: str, answer: pb.AcquireStreamResult | PermitError) -> None:
        request = self._requests.pop(request_id)
        future = request.future
        if not future.done():
            if isinstance(answer, PermitError):
                future.set_exception(answer)
            else:
                future.set_result(answer)
            return
        # The caller has left. A grant meant for it must not hold a slot.
        if isinstance(answer, pb.AcquireStreamResult) and answer.HasField("granted"):
            self._on_orphan_grant(answer.granted)
        elif not future.cancelled():
            with contextlib.suppress(BaseException):
                future.exception()  # retrieved: no "never retrieved" warning for a timed-out one
