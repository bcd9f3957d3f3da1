"""tune_collector: what the server and the load generator's processes do to their collector."""

from __future__ import annotations

import gc

from hotspot_core.collector import FIRST_GENERATION, tune_collector


def test_start_up_objects_are_frozen_and_the_young_generation_is_larger() -> None:
    threshold = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_freeze_count() > 1000  # the modules and what start-up made
        assert gc.get_threshold() == (FIRST_GENERATION, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
