"""Shared test set-up."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
# The fake Optic Odds (tests/fakes) and the examples are imported from the tree, never installed;
# processes the tests start (python -m fake_optic_odds, uvicorn examples...) find them the same way.
# Servers the tests start keep no state unless a test gives them a --state-dir (a flag beats the
# environment): the command line's default, ./hotspot-state, would be shared by every test.
os.environ.setdefault("HOTSPOT_STATE_DIR", "none")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT / "tests" / "fakes"), str(ROOT), os.environ.get("PYTHONPATH")) if p
)

# Property tests run on virtual time, so many examples stay cheap; CI gets a fixed budget.
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
