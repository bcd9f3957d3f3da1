"""The README's Optic Odds snippet runs as written, against a permit server and the fake."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.e2e.processes import API_KEY, ROOT, ServiceProcess, fake_optic_odds, permit_server


def python_block_after(heading: str) -> str:
    section = (ROOT / "README.md").read_text().split(f"\n{heading}\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, f"no python block under {heading}"
    return match[1]


@contextmanager
def started(process: ServiceProcess) -> Iterator[ServiceProcess]:
    try:
        yield process
    finally:
        # The fake's server re-raises SIGTERM once it has shut down cleanly.
        assert process.stop() in (0, -signal.SIGTERM), "".join(process.log)


def test_the_optic_odds_snippet_runs_as_written() -> None:
    snippet = python_block_after("## Optic Odds client")
    with (
        started(permit_server()) as permits,
        started(fake_optic_odds(limit=5, window="60s")) as upstream,
    ):
        # The snippet reads where the services are from the environment (its defaults are
        # `make run` and `python -m fake_optic_odds`); these run on free ports instead.
        env = {
            **os.environ,
            "HOTSPOT_TARGET": permits.address,
            "OPTIC_ODDS_BASE_URL": upstream.address,
            "OPTIC_ODDS_API_KEY": API_KEY,
        }
        result = subprocess.run(
            [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=30, env=env
        )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) > 0  # a price
