"""Domain errors as gRPC statuses with rich details (a google.rpc.Status in the trailers)."""

from __future__ import annotations

import math
from typing import Any, NoReturn, cast

import grpc
from google.protobuf.message import Message

# types-protobuf's google-stubs shadows the google namespace, hiding google.rpc's own .pyi files.
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from hotspot_client.errors import ERROR_DOMAIN, RETRY_AFTER_KEY
from hotspot_client.proto_time import set_duration
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
    """The google.rpc.Status that reports `error` (a unary call's trailer), its code, and the
    plain trailers that go with it on a call."""
    status = status_pb2.Status()
    code, trailers = set_status(status, error)
    return code, status, trailers


def set_status(target: Any, error: PermitError) -> tuple[grpc.StatusCode, Metadata]:
    """Fill `target`, an empty google.rpc.Status or a message laid out as one (a stream item's
    answer, filled in place), with the status that reports `error`; return its code and the
    plain trailers that go with it on a call."""
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
        details.append(_retry_info(error.retry_after))
        trailers = ((RETRY_AFTER_KEY, str(whole_seconds(error.retry_after))),)
    elif isinstance(error, ShuttingDown | StoreUnavailable):
        code = grpc.StatusCode.UNAVAILABLE
        details.append(_retry_info(error.retry_after))
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
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    info_metadata = info.metadata
    for key, value in metadata.items():  # 40 % cheaper than metadata=... (a Python update())
        info_metadata[key] = value
    details.append(info)
    target.code = code.value[0]
    target.message = str(error)
    target_details = target.details
    for detail in details:
        target_details.add().Pack(detail)
    return code, trailers


def _retry_info(seconds: float) -> Message:
    info = error_details_pb2.RetryInfo()
    set_duration(info.retry_delay, seconds)
    return cast(Message, info)


async def abort_with(
    context: grpc.aio.ServicerContext[object, object], error: PermitError
) -> NoReturn:
    code, message, trailers = grpc_status_for(error)
    await context.abort(code, message, trailing_metadata=trailers)
    raise AssertionError("unreachable: abort raises")  # for type checkers
