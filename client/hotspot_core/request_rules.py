"""The rules on Acquire's and Release's arguments, checked by every backend before any work."""

from __future__ import annotations

from hotspot_core.errors import InvalidArgument
from hotspot_core.request_id import check_request_id

MAX_CLIENT_ID = 128
MAX_PERMIT_ID = 64
"""Permit ids are 22 characters; a longer one is not ours, and is not even looked up."""
MAX_UPSTREAM_RETRY_AFTER = 3600.0


def check_acquire(client_id: str, budget: float, request_id: str) -> None:
    if request_id:
        check_request_id(request_id)
    if len(client_id) > MAX_CLIENT_ID:
        raise InvalidArgument(
            f"client_id must be at most {MAX_CLIENT_ID} characters, got {len(client_id)}",
            field="client_id",
        )
    if not budget >= 0:  # also catches NaN
        raise InvalidArgument(f"max_wait must not be negative, got {budget}s", field="max_wait")


def check_release(
    permit_id: str, upstream_retry_after: float | None, *, any_length: bool = False
) -> None:
    """`any_length`: the id stands for a request id, which has rules of its own."""
    if not permit_id:
        raise InvalidArgument("permit_id must not be empty", field="permit_id")
    if len(permit_id) > MAX_PERMIT_ID and not any_length:
        raise InvalidArgument(
            f"permit_id must be at most {MAX_PERMIT_ID} characters, got {len(permit_id)}",
            field="permit_id",
        )
    if upstream_retry_after is not None and not (
        0 <= upstream_retry_after <= MAX_UPSTREAM_RETRY_AFTER
    ):
        raise InvalidArgument(
            f"upstream_retry_after must be between 0 and {MAX_UPSTREAM_RETRY_AFTER:g}s, "
            f"got {upstream_retry_after}s",
            field="upstream_retry_after",
        )
