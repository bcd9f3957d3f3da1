"""hotspot: a gRPC rate-permit service with exact per-fixture sliding windows and FIFO queues."""
