"""The garbage collector's settings for a busy asyncio process of ours (the server, a load
generator): a library never changes them in its users' processes."""

from __future__ import annotations

import gc

FIRST_GENERATION = 20_000
"""Allocations between the collector's young-generation runs (Python's default is 700)."""


def tune_collector() -> None:
    """For the process, once started. What start-up made (modules, a restored state) lives as
    long as the process: frozen, no collection walks it again. And a larger first generation:
    at thousands of permits a second the default (700) ran a collection every few ms and a
    full one, over everything alive, often enough to break a 10 ms p99 on its own (bench (j):
    in the server 5-15 full collections of 64-200 ms a minute, none with this; in each load
    process a full collection every 1-2 s, 22-150 ms each)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(FIRST_GENERATION, *gc.get_threshold()[1:])
