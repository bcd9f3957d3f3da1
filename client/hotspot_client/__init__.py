"""Client library for the hotspot permit service.

    async with PermitClient("127.0.0.1:50051", client_id="odds-gateway") as client:
        async with client.permit("FIXTURE", max_wait=2.0) as permit:
            ...  # the one upstream call the permit allows

SyncPermitClient offers the same to blocking code; hotspot_client.guard has the
@guarded decorator. Errors derive from PermitError (see hotspot_client.errors).
"""

from hotspot_client.backoff import UnavailableRetry
from hotspot_client.errors import (
    InvalidArgument,
    InvalidFixtureId,
    PermitError,
    PermitNotFound,
    PermitServiceUnavailable,
    RateLimitExceeded,
)
from hotspot_client.permit import Outcome, Permit
from hotspot_client.permit_client import PermitClient
from hotspot_client.sync_client import SyncPermitClient
from hotspot_core.policy import PermitPolicy

__all__ = [
    "InvalidArgument",
    "InvalidFixtureId",
    "Outcome",
    "Permit",
    "PermitClient",
    "PermitError",
    "PermitNotFound",
    "PermitPolicy",
    "PermitServiceUnavailable",
    "RateLimitExceeded",
    "SyncPermitClient",
    "UnavailableRetry",
]
