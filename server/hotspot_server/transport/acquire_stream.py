"""AcquireStreamSession: one AcquireStream call, many concurrent items, each answered in-band.

The servicer maps each item to the same acquire and release as the unary RPCs; this module only
multiplexes: a task per acquire or release, a cancel item cancelling its acquire, answers
gathered into one response per write (whatever is ready when the previous write is done), and,
when the stream ends for any reason, every pending acquire cancelled, which takes it out of its
queue (PermitBackend.acquire: a cancelled acquire holds no permit and spends no slot). Permits
already answered stay with their leases.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from hotspot.v1 import permits_pb2 as pb
from hotspot_core.errors import InvalidArgument, PermitError
from hotspot_core.request_id import check_request_id
from hotspot_server.transport.grpc_errors import rich_status

Acquire = Callable[[pb.AcquireRequest], Awaitable[pb.AcquireResponse]]
Release = Callable[[pb.ReleaseRequest], Awaitable[pb.ReleaseResponse]]

CANCELLED = pb.AcquireStreamError(
    code=grpc.StatusCode.CANCELLED.value[0], message="cancelled by the caller"
)


def error_result(request_id: str, error: PermitError) -> pb.AcquireStreamResult:
    """The in-band answer to an item that failed: the status its unary call would end with."""
    _, status, _ = rich_status(error)
    return pb.AcquireStreamResult(
        request_id=request_id,
        error=pb.AcquireStreamError(
            code=status.code, message=status.message, details=status.details
        ),
    )


class AcquireStreamSession:
    def __init__(self, acquire: Acquire, release: Release) -> None:
        self._acquire = acquire
        self._release = release
        self._acquires: dict[str, asyncio.Task[None]] = {}
        """Pending acquires by request id: a cancel item names one."""
        self._releases: set[asyncio.Task[None]] = set()
        self._answers: list[pb.AcquireStreamResult] = []
        self._ready = asyncio.Event()
        self._reading = True
        self._ending = False

    async def run(
        self, requests: AsyncIterator[pb.AcquireStreamRequest]
    ) -> AsyncIterator[pb.AcquireStreamResponse]:
        reader = asyncio.create_task(self._read(requests))
        try:
            while True:
                if not self._answers:
                    if reader.done():
                        reader.result()  # a broken request stream ends the call with its error
                        if not self._acquires and not self._releases:
                            return  # the caller closed its side and everything is answered
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                answers, self._answers = self._answers, []
                yield pb.AcquireStreamResponse(results=answers)
        finally:
            self._ending = True
            reader.cancel()
            for task in (*self._acquires.values(), *self._releases):
                task.cancel()

    async def _read(self, requests: AsyncIterator[pb.AcquireStreamRequest]) -> None:
        try:
            async for request in requests:
                for item in request.items:
                    self._start(item)
        finally:
            self._ready.set()

    def _start(self, item: pb.AcquireStreamItem) -> None:
        request_id = item.request_id
        kind = item.WhichOneof("kind")
        if kind == "cancel":
            task = self._acquires.get(request_id)
            if task is not None:
                task.cancel()
            return  # an acquire already answered: the caller releases what it got
        try:
            check_request_id(request_id)
            if kind is None:
                raise InvalidArgument("an item carries acquire, cancel or release", field="kind")
            if kind == "acquire" and request_id in self._acquires:
                raise InvalidArgument(
                    "request_id names an acquire still pending on this stream",
                    field="request_id",
                )
        except PermitError as error:
            self._answer(error_result(request_id, error))
            return
        if kind == "acquire":
            item.acquire.request_id = request_id
            self._acquires[request_id] = asyncio.create_task(
                self._answer_acquire(request_id, item.acquire)
            )
        else:
            self._releases.add(asyncio.create_task(self._answer_release(request_id, item.release)))

    async def _answer_acquire(self, request_id: str, request: pb.AcquireRequest) -> None:
        try:
            granted = await self._acquire(request)
            answer = pb.AcquireStreamResult(request_id=request_id, granted=granted)
        except asyncio.CancelledError:
            if self._ending:
                raise
            answer = pb.AcquireStreamResult(request_id=request_id, error=CANCELLED)
        except PermitError as error:
            answer = error_result(request_id, error)
        finally:
            del self._acquires[request_id]
        self._answer(answer)

    async def _answer_release(self, request_id: str, request: pb.ReleaseRequest) -> None:
        try:
            released = await self._release(request)
            answer = pb.AcquireStreamResult(request_id=request_id, released=released)
        except PermitError as error:
            answer = error_result(request_id, error)
        finally:
            # Here, not in a done callback: run() must see it gone when it sees the answer.
            self._releases.discard(asyncio.current_task())
        self._answer(answer)

    def _answer(self, answer: pb.AcquireStreamResult) -> None:
        self._answers.append(answer)
        self._ready.set()
