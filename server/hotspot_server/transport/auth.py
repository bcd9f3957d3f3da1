"""AuthInterceptor: every PermitService call names its caller and holds the role its method needs.

One check for the whole service, in front of the handlers: a caller is named by a bearer token
(`authorization: Bearer TOKEN`, looked up in the callers file) or else by the verified client
certificate's CN, and its roles come from the callers file. Health and reflection stay open, so
probes and `buf curl --list-methods` need no identity. A method of PermitService that the table
below does not name needs `admin`: a new RPC is closed until someone decides who may call it.

The interceptor wraps the handler rather than deciding in intercept_service: the peer's
certificate is only in the ServicerContext. The wrapper has the handler's kind (unary or
stream), aborts with `await context.abort(...)` (an aio server does not stop a sync abort,
grpc/grpc#37518), and is built once per method.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from hotspot.v1 import permits_pb2 as pb
from hotspot_server.transport.caller import (
    ACQUIRE,
    ADMIN,
    READ_STATS,
    REPORT_UPSTREAM,
    Caller,
    current_caller,
)
from hotspot_server.transport.callers_file import CALLER_NAME, CallersFile
from hotspot_server.transport.grpc_errors import PermissionDenied

Context = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[..., Any]

SERVICE = "/hotspot.v1.PermitService/"
METHOD_ROLES = {
    f"{SERVICE}Acquire": ACQUIRE,
    f"{SERVICE}Release": ACQUIRE,
    f"{SERVICE}AcquireStream": ACQUIRE,
    f"{SERVICE}AnnounceWarmings": ACQUIRE,
    f"{SERVICE}Stats": READ_STATS,
    f"{SERVICE}WatchStats": READ_STATS,
}
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
)
NO_IDENTITY = (
    "no identity: send `authorization: Bearer TOKEN` (a token of the callers file) or a client "
    "certificate"
)
UNKNOWN_TOKEN = "the bearer token is not one of the callers file"
NOT_A_CALLER_NAME = (
    "the client certificate's CN is not a caller name (1 to 128 of [A-Za-z0-9._:@-])"
)


def bearer_token(authorization: str) -> str | None:
    """TOKEN of `Bearer TOKEN` (the scheme in any case), None for another scheme."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def identify(callers: CallersFile, token: str | None, common_name: str | None) -> Caller | str:
    """The caller a token (first) or a verified certificate's CN names; else why it is none."""
    if token is not None:
        return callers.by_token(token) or UNKNOWN_TOKEN
    if common_name is not None:
        if not CALLER_NAME.fullmatch(common_name):
            return NOT_A_CALLER_NAME
        return callers.by_certificate(common_name)
    return NO_IDENTITY


def lacks_role(caller: Caller, role: str, what: str) -> str:
    return f"caller {caller.name!r} may not {what}: it needs the role {role!r}"


def _grpc_identity(context: Context) -> tuple[str | None, str | None]:
    """The bearer token and the verified certificate's CN of a call, as far as it has them."""
    token = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            token = bearer_token(value if isinstance(value, str) else value.decode())
            if token is None:
                return "", None  # another scheme: refused as a token that names nobody
    if token is not None:
        return token, None
    name = next(iter(context.auth_context().get("x509_common_name", ())), None)
    return None, name.decode("utf-8", "replace") if name is not None else None


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, callers: CallersFile) -> None:
        self._callers = callers
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}  # type: ignore[type-arg]

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler  # unknown methods: gRPC answers UNIMPLEMENTED itself
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            wrapped = self._wrapped[method] = self._wrap(handler, method)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        role = METHOD_ROLES.get(method, ADMIN)
        what = f"call {method.lstrip('/')}"
        callers = self._callers

        async def admit(context: Context) -> None:
            found = identify(callers, *_grpc_identity(context))
            if isinstance(found, str):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, found)
            if not found.may(role):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED, lacks_role(found, role, what)
                )
            # Each RPC runs in its own task, on a copy of the context: the value ends with it.
            current_caller.set(found)

        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _admitted(handler.unary_unary, admit), **codec
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _admitted(handler.unary_stream, admit), **codec
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _admitted(handler.stream_unary, admit), **codec
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            _admitted(handler.stream_stream, admit), **codec
        )


def _admitted(behavior: Behavior, admit: Callable[[Context], Awaitable[None]]) -> Any:
    """`behavior` once `admit` lets the call through; async generators stay async generators."""
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            await admit(context)
            async for response in behavior(request, context):
                yield response

        return stream

    async def call(request: Any, context: Context) -> Any:
        await admit(context)
        result = behavior(request, context)
        return await result if inspect.isawaitable(result) else result

    return call


def check_upstream_report(request: pb.ReleaseRequest) -> None:
    """A Release reporting UPSTREAM_RATE_LIMITED pauses the fixture for every caller, so it
    needs `report-upstream`. Here rather than in the interceptor, which cannot see the request
    (nor a stream's items)."""
    caller = current_caller.get()
    if (
        caller is not None
        and request.outcome == pb.OUTCOME_UPSTREAM_RATE_LIMITED
        and not caller.may(REPORT_UPSTREAM)
    ):
        raise PermissionDenied(
            lacks_role(caller, REPORT_UPSTREAM, "release with OUTCOME_UPSTREAM_RATE_LIMITED")
        )
