"""The domain core: windows, queues, leases, stats and alerts. It imports nothing from gRPC."""
