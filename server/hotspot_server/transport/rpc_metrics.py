"""RpcMetricsInterceptor: tells an observer each RPC's method, type, status code and duration.

Our own, rather than py-grpc-prometheus: its grpc.aio interceptor awaits every
handler (a server-streaming handler written as an async generator, such as
WatchStats or reflection, is not awaitable), and it reads the status code only
from a raised grpc.RpcError, while an aio `context.abort()` raises AbortError:
every hotspot refusal would go uncounted. It also registers on the global
registry. This module knows nothing of Prometheus; the observer does.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

RpcObserver = Callable[[str, str, str, grpc.StatusCode, float], None]
"""(service, method, type, code, seconds) of each finished RPC; it must be quick."""

Context = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[..., Any]
"""A handler: (request or request iterator, context) -> response, awaitable or async iterator."""


def _code(context: Context, error: BaseException | None) -> grpc.StatusCode:
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()  # set by abort() (hotspot's refusals) or set_code()
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN


def _timed(behavior: Behavior, done: Callable[[Context, BaseException | None, float], None]) -> Any:
    """`behavior`, reporting its end to `done`; async generators stay async generators."""
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            start = time.perf_counter()
            error: BaseException | None = None
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as raised:
                error = raised
                raise
            finally:
                done(context, error, time.perf_counter() - start)

        return stream

    async def call(request: Any, context: Context) -> Any:
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result
        except BaseException as raised:
            error = raised
            raise
        finally:
            done(context, error, time.perf_counter() - start)

    return call


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, observe: RpcObserver) -> None:
        self._observe = observe

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: gRPC answers UNIMPLEMENTED itself
            return handler
        service, _, method = handler_call_details.method.lstrip("/").partition("/")
        observe = self._observe

        def done(rpc_type: str) -> Callable[[Context, BaseException | None, float], None]:
            def report(context: Context, error: BaseException | None, seconds: float) -> None:
                observe(service, method, rpc_type, _code(context, error), seconds)

            return report

        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _timed(handler.unary_unary, done("unary")), **codec
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _timed(handler.unary_stream, done("server_stream")), **codec
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _timed(handler.stream_unary, done("client_stream")), **codec
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            _timed(handler.stream_stream, done("bidi_stream")), **codec
        )
