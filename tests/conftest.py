"""Shared test set-up."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
# The fake Optic Odds (tests/fakes) and the examples are imported from the tree, never installed;
# processes the tests start (python -m fake_optic_odds, uvicorn examples...) find them the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT / "tests" / "fakes"), str(ROOT), os.environ.get("PYTHONPATH")) if p
)

# Property tests run on virtual time, so many examples stay cheap; CI gets a fixed budget.
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
