"""The permit service stack plus an empty unary RPC, as a separate process for `make bench`.

Both kinds of call go through the same grpc.aio server, options and process, so
the ratio between them is the cost hotspot adds to a bare RPC.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import grpc
from google.protobuf.empty_pb2 import Empty

from hotspot.v1 import permits_pb2_grpc
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats_feed import StatsFeed
from hotspot_server.server import SERVER_OPTIONS
from hotspot_server.store import open_state_store
from hotspot_server.transport.grpc_servicer import PermitServicer

EMPTY_METHOD = "/hotspot.bench.Empty/Ping"


async def _ping(request: Empty, context: grpc.aio.ServicerContext[Empty, Empty]) -> Empty:
    return Empty()


async def serve(port: int, state_dir: Path | None) -> None:
    store = open_state_store(state_dir) if state_dir is not None else None
    backend = MemoryBackend(PermitPolicy(), store=store)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    permits_pb2_grpc.add_PermitServiceServicer_to_server(
        PermitServicer(backend, StatsFeed(backend)), server
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "hotspot.bench.Empty",
                {
                    "Ping": grpc.unary_unary_rpc_method_handler(
                        _ping,
                        request_deserializer=Empty.FromString,
                        response_serializer=Empty.SerializeToString,
                    )
                },
            )
        ]
    )
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(bound, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0)
    await backend.close()
    if store is not None:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-dir", type=Path, help="keep state durable there (default: none)")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.state_dir))


if __name__ == "__main__":
    main()
