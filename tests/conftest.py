"""Shared test set-up."""

from __future__ import annotations

import os

from hypothesis import settings

# Property tests run on virtual time, so many examples stay cheap; CI gets a fixed budget.
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
