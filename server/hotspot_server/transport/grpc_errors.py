"""Domain errors as gRPC statuses with rich details (a google.rpc.Status in the trailers)."""

from __future__ import annotations

import math
from typing import Any, NoReturn, cast

import grpc
from google.protobuf.message import Message

# types-protobuf's google-stubs shadows the google namespace, hiding google.rpc's own .pyi files.
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from hotspot_client.errors import ERROR_DOMAIN, ERROR_INFO_URL, RETRY_AFTER_KEY, RETRY_INFO_URL
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
    code = set_status(status, error)
    if not isinstance(error, PermitRefused | ShuttingDown | StoreUnavailable):
        return code, status, ()
    return code, status, ((RETRY_AFTER_KEY, str(whole_seconds(error.retry_after))),)


def set_status(target: Any, error: PermitError) -> grpc.StatusCode:
    """Fill `target`, an empty google.rpc.Status or a message laid out as one (a stream item's
    answer, filled in place), with the status that reports `error`; return its code. (A stream
    item has no trailers: rich_status adds a call's.)"""
    if isinstance(error, PermitRefused):
        # The hot path under overload (thousands a second on one fixture): the details go in as
        # bytes, built once per distinct value, rather than as messages packed each time.
        target.code = _RESOURCE_EXHAUSTED
        target.message = str(error)
        target_details = target.details
        retry = target_details.add()
        retry.type_url = RETRY_INFO_URL
        retry.value = _retry_info_bytes(error.retry_after)
        info = target_details.add()
        info.type_url = ERROR_INFO_URL
        info.value = _refusal_info_bytes(error)
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    code = grpc.StatusCode.INTERNAL
    details: list[Message] = []
    metadata: dict[str, str] = {}
    if isinstance(error, ShuttingDown | StoreUnavailable):
        code = grpc.StatusCode.UNAVAILABLE
        details.append(_retry_info(error.retry_after))
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
    details.append(_error_info(error.reason, metadata))
    target.code = code.value[0]
    target.message = str(error)
    target_details = target.details
    for detail in details:
        target_details.add().Pack(detail)
    return code


_RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
_RETRY_INFO = error_details_pb2.RetryInfo()
"""Filled and serialized for each refusal: a third of the cost of a new one packed."""
_REFUSAL_INFOS: dict[tuple[str, str, int, int, int, int], bytes] = {}
"""Serialized ErrorInfo by its content: a burst on one fixture repeats the same few values
(the estimated wait moves by a millisecond at a time)."""
_REFUSAL_INFOS_MAX = 4096


def _retry_info_bytes(seconds: float) -> bytes:
    set_duration(_RETRY_INFO.retry_delay, seconds)
    return cast(bytes, _RETRY_INFO.SerializeToString())


def _refusal_info_bytes(error: PermitRefused) -> bytes:
    estimated_wait_ms = math.ceil(round(error.estimated_wait * 1000, 3))
    paused_for_ms = math.ceil(error.paused_for * 1000) if error.paused_for > 0 else -1
    key = (
        error.reason,
        error.fixture_id,
        error.limit,
        error.queue_depth,
        estimated_wait_ms,
        paused_for_ms,
    )
    value = _REFUSAL_INFOS.get(key)
    if value is None:
        metadata = {
            "fixture_id": error.fixture_id,
            "queue_depth": str(error.queue_depth),
            "limit": str(error.limit),
            "estimated_wait_ms": str(estimated_wait_ms),
        }
        if paused_for_ms >= 0:
            metadata["paused_for_ms"] = str(paused_for_ms)
        value = _error_info(error.reason, metadata).SerializeToString()
        if len(_REFUSAL_INFOS) >= _REFUSAL_INFOS_MAX:
            _REFUSAL_INFOS.clear()  # values long past (another fixture, an older wait)
        _REFUSAL_INFOS[key] = value
    return value


def _error_info(reason: str, metadata: dict[str, str]) -> Message:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    info_metadata = info.metadata
    for key, value in metadata.items():  # 40 % cheaper than metadata=... (a Python update())
        info_metadata[key] = value
    return cast(Message, info)


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
