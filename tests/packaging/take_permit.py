"""Run by the client-only venv's Python: take a permit and release it, print what came back.

Stdlib and the client distribution only; never imported by the test suite itself.
"""

from __future__ import annotations

import json
import sys

import grpc

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_client import Outcome, SyncPermitClient


def main(target: str) -> None:
    with SyncPermitClient(target, client_id="client-wheel") as client:
        permit = client.acquire("wheel-fixture", max_wait=5.0)
        already_released = client.release(permit, Outcome.SUCCESS)
    # The generated stubs ship in the same wheel: read the server's count through them.
    with grpc.insecure_channel(target) as channel:
        stats = permits_pb2_grpc.PermitServiceStub(channel).Stats(
            pb.StatsRequest(fixture_ids=["wheel-fixture"]), timeout=5
        )
    print(
        json.dumps(
            {
                "fixture_id": permit.fixture_id,
                "remaining": permit.remaining,
                "local": permit.local,
                "already_released": already_released,
                "calls_in_window": stats.fixtures[0].calls_in_window,
                "in_flight": stats.fixtures[0].in_flight,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
