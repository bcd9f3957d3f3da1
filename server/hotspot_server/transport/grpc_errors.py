"""Domain errors as gRPC statuses with rich details (a google.rpc.Status in the trailers)."""

from __future__ import annotations

import math
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

# types-protobuf's google-stubs shadows the google namespace, hiding google.rpc's own .pyi files.
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from hotspot_client.errors import ERROR_DOMAIN, RETRY_AFTER_KEY
from hotspot_client.proto_time import to_duration
from hotspot_core.errors import (
    CapacityReached,
    InvalidArgument,
    PermitError,
    PermitNotFound,
    PermitRefused,
    ShuttingDown,
    StoreUnavailable,
    whole_seconds,
)

Metadata = tuple[tuple[str, str | bytes], ...]


class PermissionDenied(PermitError):
    """The caller lacks the role an operation needs (the message names it)."""

    reason = "PERMISSION_DENIED"


def grpc_status_for(error: PermitError) -> tuple[grpc.StatusCode, str, Metadata]:
    """The status code, message and trailing metadata that report `error`."""
    code, status, trailers = rich_status(error)
    return code, str(error), rpc_status.to_status(status).trailing_metadata + trailers


def rich_status(error: PermitError) -> tuple[grpc.StatusCode, Any, Metadata]:
    """The google.rpc.Status that reports `error` (a unary call's trailer, a stream item's
    answer), its code, and the plain trailers that go with it on a call."""
    code = grpc.StatusCode.INTERNAL
    details: list[Message] = []
    trailers: Metadata = ()
    metadata: dict[str, str] = {}
    if isinstance(error, PermitRefused):
        code = grpc.StatusCode.RESOURCE_EXHAUSTED
        metadata = {
            "fixture_id": error.fixture_id,
            "queue_depth": str(error.queue_depth),
            "limit": str(error.limit),
            "estimated_wait_ms": str(math.ceil(round(error.estimated_wait * 1000, 3))),
        }
        if error.paused_for > 0:
            metadata["paused_for_ms"] = str(math.ceil(error.paused_for * 1000))
        details.append(error_details_pb2.RetryInfo(retry_delay=to_duration(error.retry_after)))
        trailers = ((RETRY_AFTER_KEY, str(whole_seconds(error.retry_after))),)
    elif isinstance(error, ShuttingDown | StoreUnavailable):
        code = grpc.StatusCode.UNAVAILABLE
        details.append(error_details_pb2.RetryInfo(retry_delay=to_duration(error.retry_after)))
        trailers = ((RETRY_AFTER_KEY, str(whole_seconds(error.retry_after))),)
    elif isinstance(error, InvalidArgument):
        code = grpc.StatusCode.INVALID_ARGUMENT
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=error.field, description=str(error)
        )
        details.append(error_details_pb2.BadRequest(field_violations=[violation]))
    elif isinstance(error, CapacityReached):
        code = grpc.StatusCode.RESOURCE_EXHAUSTED
        metadata = {"scope": error.scope, "limit": str(error.limit)}
    elif isinstance(error, PermissionDenied):
        code = grpc.StatusCode.PERMISSION_DENIED
    elif isinstance(error, PermitNotFound):
        code = grpc.StatusCode.NOT_FOUND
        metadata = {"permit_id": error.permit_id}
    details.append(
        error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
    )
    status = status_pb2.Status(code=code.value[0], message=str(error), details=[])
    for detail in details:
        status.details.add().Pack(detail)
    return code, status, trailers


async def abort_with(
    context: grpc.aio.ServicerContext[object, object], error: PermitError
) -> NoReturn:
    code, message, trailers = grpc_status_for(error)
    await context.abort(code, message, trailing_metadata=trailers)
    raise AssertionError("unreachable: abort raises")  # for type checkers
