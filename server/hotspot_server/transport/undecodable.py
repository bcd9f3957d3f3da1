"""UndecodableRequests: a request whose bytes do not decode is INVALID_ARGUMENT and one short
log line, rather than UNKNOWN and a traceback.

grpc.aio decodes a request with the method's deserializer before any servicer code runs; when
protobuf raises DecodeError there, grpc logs "Unexpected [DecodeError] raised by servicer
method" with a traceback at ERROR and answers UNKNOWN: any client can write a traceback into
the log per call. This interceptor wraps every method's deserializer so that a failure yields a
marker, and the method's behaviour answers the marker with INVALID_ARGUMENT (the caller sent a
bad request) and a line summarised per method (LogSummary).

Chosen over a logging.Filter on grpc's logger, which would match grpc's wording (no API),
would still answer UNKNOWN, and could hide a real servicer failure worded alike.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from hotspot_core.clock import Clock, LoopClock
from hotspot_core.errors import InvalidArgument
from hotspot_core.log_summary import LogSummary
from hotspot_server.transport.grpc_errors import abort_with

logger = logging.getLogger("hotspot.grpc")

Context = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[..., Any]
MAX_DETAIL = 160
"""Characters of protobuf's complaint kept in the log line."""


@dataclass(frozen=True, slots=True)
class Undecodable:
    """What the wrapped deserializer returns for bytes that do not decode."""

    problem: str


def _tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as error:  # DecodeError, or whatever a message's parser raises
            return Undecodable(f"{type(error).__name__}: {error}")

    return decode


class UndecodableRequests(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Put it last among the interceptors, so the others see the INVALID_ARGUMENT it answers."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._log = LogSummary(
            clock or LoopClock(),
            logger,
            what="undecodable requests",
            key_name="method",
            event="undecodable_requests",
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler  # an unknown method (gRPC answers UNIMPLEMENTED), or raw bytes
        method = handler_call_details.method
        codec = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._checked(method, handler.unary_unary), **codec
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._checked(method, handler.unary_stream), **codec
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._checked_stream(method, handler.stream_unary), **codec
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            self._checked_stream(method, handler.stream_stream), **codec
        )

    async def _refuse(self, method: str, request: Undecodable, context: Context) -> None:
        if self._log.first(method):
            logger.warning(
                "undecodable request to %s from %s: %s",
                method,
                context.peer(),
                request.problem[:MAX_DETAIL],
                extra={"event": "undecodable_request", "method": method},
            )
        message = f"the request's bytes are not a valid message for {method}"
        await abort_with(context, InvalidArgument(message, field=""))

    def _checked(self, method: str, behavior: Behavior) -> Behavior:
        """`behavior` of one request, refusing an undecodable one; an async generator (a
        server stream) stays an async generator."""
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
                if isinstance(request, Undecodable):
                    await self._refuse(method, request, context)
                async for response in behavior(request, context):
                    yield response

            return stream

        async def call(request: Any, context: Context) -> Any:
            if isinstance(request, Undecodable):
                await self._refuse(method, request, context)
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result

        return call

    def _checked_stream(self, method: str, behavior: Behavior) -> Behavior:
        """`behavior` of a request stream, ended at its first undecodable message."""

        async def checked(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, Undecodable):
                    await self._refuse(method, request, context)
                yield request

        if inspect.isasyncgenfunction(behavior):

            async def stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
                async for response in behavior(checked(requests, context), context):
                    yield response

            return stream

        async def call(requests: AsyncIterator[Any], context: Context) -> Any:
            result = behavior(checked(requests, context), context)
            return await result if inspect.isawaitable(result) else result

        return call
