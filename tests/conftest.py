"""Shared test set-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.redis_server import redis_cluster

__all__ = ["redis_cluster"]  # one three-node Redis Cluster for the whole session, if asked for

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Skipped tests are easy to miss in a green run: name them, grouped by why, and say how
    to run them. Each skip's reason already names what is missing (a program, a package)."""
    reports = terminalreporter.stats.get("skipped", [])
    by_reason: dict[str, list[str]] = {}
    for report in reports:
        longrepr = getattr(report, "longrepr", None)
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
        by_reason.setdefault(reason.removeprefix("Skipped: "), []).append(report.nodeid)
    if not by_reason:
        return
    terminalreporter.section(f"{len(reports)} skipped: these did not run")
    for reason, nodeids in sorted(by_reason.items()):
        terminalreporter.write_line(f"{len(nodeids)} skipped: {reason}")
        for nodeid in nodeids:
            terminalreporter.write_line(f"    {nodeid}")
    terminalreporter.write_line(
        "`bash .ci/run` installs what the suite needs (as root, with apt) and runs it all."
    )
