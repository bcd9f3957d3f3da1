"""The client's error hierarchy, read from gRPC statuses and their rich details.

Modelled on google-api-core: one base class carrying the status code, the
message and the `google.rpc.ErrorInfo` (reason, domain, metadata), and a
subclass per case a caller handles differently.

    PermitError                  anything the permit service (or the client) reports
    ├── RateLimitExceeded        RESOURCE_EXHAUSTED: QUEUE_FULL, WAIT_TOO_LONG, TOO_MANY_FIXTURES
    ├── PermitServiceUnavailable UNAVAILABLE (unreachable, SHUTTING_DOWN), no answer in time,
    │                            or the transport turning calls away under overload
    ├── InvalidArgument          INVALID_ARGUMENT: a request broke a rule
    │   └── InvalidFixtureId     ... the rule on fixture_id
    └── PermitNotFound           NOT_FOUND: Release of an unknown or expired permit
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, cast, overload

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

# types-protobuf's google-stubs shadows the google namespace, hiding google.rpc's own .pyi files.
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from hotspot.v1 import permits_pb2 as pb
from hotspot_client.proto_time import duration_seconds
from hotspot_core import errors as core

ERROR_DOMAIN = "hotspot.v1"
"""google.rpc.ErrorInfo.domain of every error the permit service reports."""
RETRY_AFTER_KEY = "retry-after"
"""The plain trailer beside RetryInfo: whole seconds, for callers that read no details."""
OVERLOAD_RETRY_AFTER = 1.0
"""Seconds to wait after the transport turned a call away without saying how long."""


class PermitError(Exception):
    """Base of every error the client raises for the permit service."""

    code: grpc.StatusCode | None = None
    """The gRPC status code; None for errors raised without a call (fail-open refusals)."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str | None = None,
        domain: str | None = None,
        metadata: Mapping[str, str] | None = None,
        details: Sequence[Message] = (),
        response: grpc.RpcError | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.reason = reason
        """ErrorInfo.reason, e.g. QUEUE_FULL."""
        self.domain = domain
        self.metadata: Mapping[str, str] = dict(metadata or {})
        """ErrorInfo.metadata."""
        if isinstance(details, _PackedDetails):
            self._packed_details = details  # as a stream item carried them: read on first use
        else:
            self.details = list(details)
        self.response = response
        """The gRPC error this was read from, if any."""

    @functools.cached_property
    def details(self) -> list[Message]:
        """Every detail of the rich status, unpacked where the client knows its type."""
        return list(self._packed_details)


class RateLimitExceeded(PermitError):
    """The fixture is at its limit and waiting cannot help: refused at once."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        fixture_id: str,
        retry_after: float,
        estimated_wait: float | None = None,
        queue_depth: int | None = None,
        limit: int | None = None,
        paused_for: float | None = None,
        **common: Any,
    ) -> None:
        super().__init__(message, reason=reason, **common)
        self.reason: str = reason
        self.fixture_id = fixture_id
        self.retry_after = retry_after
        """Seconds (RetryInfo): retried then, with no other traffic, the request is admitted."""
        self.estimated_wait = estimated_wait
        """Seconds until a request arriving now would be granted were the queue unbounded."""
        self.queue_depth = queue_depth
        self.limit = limit
        self.paused_for = paused_for
        """Seconds left of an upstream-429 pause, when one is on."""


class PermitServiceUnavailable(PermitError):
    """The permit service cannot be reached, is shutting down, or did not answer in time."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str, *, retry_after: float | None = None, **common: Any) -> None:
        super().__init__(message, **common)
        self.retry_after = retry_after
        """Seconds the service asked callers to wait (RetryInfo), if it said."""


class InvalidArgument(PermitError):
    """A request broke a rule; the message names it."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        violations: Sequence[tuple[str, str]] = (),
        **common: Any,
    ) -> None:
        super().__init__(message, **common)
        self.field = field
        self.violations = list(violations)
        """(field, description) pairs from google.rpc.BadRequest."""


class InvalidFixtureId(InvalidArgument):
    """fixture_id must be 1 to 128 characters of [A-Za-z0-9._:-]."""


class PermitNotFound(PermitError):
    """The permit is unknown to the service, or its lease ended before the release."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, message: str, *, permit_id: str | None = None, **common: Any) -> None:
        super().__init__(message, **common)
        self.permit_id = permit_id


def error_from_rpc(error: grpc.RpcError) -> PermitError:
    """The client error for a failed call (sync, grpc.aio or grpc_testing alike)."""
    if not callable(getattr(error, "code", None)):
        return PermitError(str(error) or type(error).__name__, response=error)
    code = error.code()
    details = _rich_details(error)
    return _error_from_status(
        code, error.details() or code.name, details, _retry_after(error, details), error
    )


def error_from_stream_error(status: pb.AcquireStreamError) -> PermitError:
    """The client error for an AcquireStream item answered with an error: read exactly as the
    status of the unary call, which it mirrors (google.rpc.Status)."""
    code = _STATUS_CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        refusal = _refusal_from_stream(status)
        if refusal is not None:
            return refusal
    details = _unpack(status.details)
    return _error_from_status(code, status.message or code.name, details, _retry_delay(details))


class _PackedDetails(Sequence[Message]):
    """A stream item's status details as they came (type URL, value), unpacked on first use:
    a refusal is read from its ErrorInfo and RetryInfo, and its details seldom looked at."""

    __slots__ = ("_packed", "_unpacked")

    def __init__(self, packed: list[tuple[str, bytes]]) -> None:
        self._packed = packed
        self._unpacked: list[Message] | None = None

    def _items(self) -> list[Message]:
        if self._unpacked is None:
            self._unpacked = _unpack(
                any_pb2.Any(type_url=type_url, value=value) for type_url, value in self._packed
            )
        return self._unpacked

    @overload
    def __getitem__(self, index: int) -> Message: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Message]: ...

    def __getitem__(self, index: int | slice) -> Message | Sequence[Message]:
        return self._items()[index]

    def __len__(self) -> int:
        return len(self._packed)


class _Refusal(NamedTuple):
    """What a RateLimitExceeded reads from its ErrorInfo."""

    reason: str
    fixture_id: str
    estimated_wait: float | None
    queue_depth: int | None
    limit: int | None
    paused_for: float | None
    metadata: dict[str, str]


_REFUSALS: dict[bytes, _Refusal] = {}
"""Refusals read, by their serialized ErrorInfo: a burst of refusals repeats the same few (the
estimated wait moves by a millisecond at a time)."""
_REFUSALS_MAX = 4096
# What Any.Pack writes as a detail's type URL (its default prefix and the message's full name):
# the server writes refusals' details by these, the client reads them by these.
RETRY_INFO_URL = "type.googleapis.com/" + error_details_pb2.RetryInfo.DESCRIPTOR.full_name
ERROR_INFO_URL = "type.googleapis.com/" + error_details_pb2.ErrorInfo.DESCRIPTOR.full_name


def _refusal_from_stream(status: pb.AcquireStreamError) -> RateLimitExceeded | None:
    """The service's refusal (RESOURCE_EXHAUSTED with its ErrorInfo) read without unpacking
    more than it needs; None for anything else, read the general way."""
    packed = [(detail.type_url, detail.value) for detail in status.details]
    refusal = None
    retry_after = None
    for type_url, value in packed:
        if type_url == ERROR_INFO_URL and refusal is None:
            refusal = _REFUSALS.get(value)
            if refusal is None:
                refusal = _read_refusal(value)
                if refusal is None:
                    return None
        elif type_url == RETRY_INFO_URL and retry_after is None:
            retry = error_details_pb2.RetryInfo.FromString(value)
            retry_after = duration_seconds(retry.retry_delay)
    if refusal is None:
        return None
    message = status.message or grpc.StatusCode.RESOURCE_EXHAUSTED.name
    return _rate_limit_exceeded(message, refusal, retry_after, _PackedDetails(packed))


def _refusal_of(info: Any) -> _Refusal:
    """A refusal's figures, from its ErrorInfo (hotspot's domain)."""
    metadata = dict(info.metadata)
    get = metadata.get
    return _Refusal(
        info.reason,
        get("fixture_id", ""),
        _milliseconds(get("estimated_wait_ms")),
        _integer(get("queue_depth")),
        _integer(get("limit")),
        _milliseconds(get("paused_for_ms")),
        metadata,
    )


def _rate_limit_exceeded(
    message: str,
    refusal: _Refusal,
    retry_after: float | None,
    details: Sequence[Message],
    response: grpc.RpcError | None = None,
) -> RateLimitExceeded:
    return RateLimitExceeded(
        message,
        reason=refusal.reason,
        fixture_id=refusal.fixture_id,
        retry_after=retry_after or 0.0,
        estimated_wait=refusal.estimated_wait,
        queue_depth=refusal.queue_depth,
        limit=refusal.limit,
        paused_for=refusal.paused_for,
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        domain=ERROR_DOMAIN,
        metadata=refusal.metadata,
        details=details,
        response=response,
    )


def _read_refusal(value: bytes) -> _Refusal | None:
    info = error_details_pb2.ErrorInfo.FromString(value)
    if info.domain != ERROR_DOMAIN:
        return None
    refusal = _refusal_of(info)
    if len(_REFUSALS) >= _REFUSALS_MAX:
        _REFUSALS.clear()  # values long past (another fixture, an older wait)
    _REFUSALS[value] = refusal
    return refusal


_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _error_from_status(
    code: grpc.StatusCode,
    message: str,
    details: list[Message],
    retry_after: float | None,
    response: grpc.RpcError | None = None,
) -> PermitError:
    info = None
    for detail in details:
        if isinstance(detail, error_details_pb2.ErrorInfo):
            info = detail
            break
    common: dict[str, Any] = {
        "code": code,
        "domain": info.domain if info else None,
        "metadata": dict(info.metadata) if info else None,
        "details": details,
        "response": response,
    }
    reason: str | None = info.reason if info else None
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and info and info.domain == ERROR_DOMAIN:
        return _rate_limit_exceeded(message, _refusal_of(info), retry_after, details, response)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return PermitServiceUnavailable(message, retry_after=retry_after, reason=reason, **common)
    if code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED):
        # Not hotspot's own refusal (that carries its ErrorInfo, above): the transport turned the
        # call away under overload (gRPC's pending-call or concurrency limits; a call the client
        # cancels itself raises CancelledError instead). The service is there but busy.
        return PermitServiceUnavailable(
            f"the permit service is overloaded ({code.name}: {message})",
            retry_after=retry_after if retry_after is not None else OVERLOAD_RETRY_AFTER,
            reason=reason or "TRANSPORT_OVERLOAD",
            **common,
        )
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        violations = [
            (v.field, v.description)
            for d in details
            if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations
        ]
        field = violations[0][0] if violations else None
        kind = InvalidFixtureId if field == "fixture_id" else InvalidArgument
        return kind(message, field=field, violations=violations, reason=reason, **common)
    if code is grpc.StatusCode.NOT_FOUND:
        permit_id = info.metadata.get("permit_id") if info else None
        return PermitNotFound(message, permit_id=permit_id, reason=reason, **common)
    return PermitError(message, reason=reason, **common)


def error_from_core(error: core.PermitError) -> PermitError:
    """The client error for a refusal of the in-process fallback window (fail-open)."""
    message = str(error)
    if isinstance(error, core.PermitRefused):
        return RateLimitExceeded(
            message,
            reason=error.reason,
            fixture_id=error.fixture_id,
            retry_after=error.retry_after,
            estimated_wait=error.estimated_wait,
            queue_depth=error.queue_depth,
            limit=error.limit,
            paused_for=error.paused_for or None,
        )
    if isinstance(error, core.InvalidArgument):
        kind = InvalidFixtureId if isinstance(error, core.InvalidFixtureId) else InvalidArgument
        return kind(message, field=error.field, violations=[(error.field, message)])
    if isinstance(error, core.PermitNotFound):
        return PermitNotFound(message, permit_id=error.permit_id, reason=error.reason)
    if isinstance(error, core.ShuttingDown):
        return PermitServiceUnavailable(message, retry_after=error.retry_after, reason=error.reason)
    return PermitError(message, reason=error.reason)


_KNOWN_DETAILS = (
    error_details_pb2.RetryInfo,
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
)


def _rich_details(error: grpc.RpcError) -> list[Message]:
    """The google.rpc.Status details in grpc-status-details-bin, unpacked where known."""
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except (ValueError, DecodeError):  # a status that contradicts the call, or garbage
        return []
    if status is None:
        return []
    return _unpack(status.details)


_KNOWN_BY_NAME = {kind.DESCRIPTOR.full_name: kind for kind in _KNOWN_DETAILS}


def _unpack(packed_details: Iterable[Any]) -> list[Message]:
    """google.rpc.Status details (google.protobuf.Any), unpacked where the client knows them."""
    details: list[Message] = []
    for packed in packed_details:
        # One lookup of the type URL's last part (what Any.Is compares), rather than an Is() per
        # known kind: half the cost of reading a streamed refusal.
        kind = _KNOWN_BY_NAME.get(packed.type_url.rpartition("/")[2])
        if kind is None:
            details.append(packed)
            continue
        detail = kind()
        detail.ParseFromString(packed.value)
        details.append(detail)
    return details


def _retry_after(error: grpc.RpcError, details: Iterable[Message]) -> float | None:
    """RetryInfo's delay; else the plain `retry-after` trailer (whole seconds)."""
    delay = _retry_delay(details)
    if delay is not None:
        return delay
    # Metadata iterates as (key, value) pairs; grpc-stubs types it as Metadatum objects.
    pairs = cast("Iterable[tuple[str, str | bytes]]", error.trailing_metadata() or ())
    for key, value in pairs:
        if key == RETRY_AFTER_KEY:
            text = value.decode() if isinstance(value, bytes) else value
            try:
                return max(0.0, float(text))
            except ValueError:
                return None
    return None


def _retry_delay(details: Iterable[Message]) -> float | None:
    for detail in details:
        if isinstance(detail, error_details_pb2.RetryInfo):
            return duration_seconds(detail.retry_delay)
    return None


def _integer(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _milliseconds(text: str | None) -> float | None:
    ms = _integer(text)
    return ms / 1000 if ms is not None else None
