"""`hotspot load` at a tiny scale against a real server it starts on the loopback: every scenario
runs, every figure the generator counts agrees with what the server says (Stats, /metrics,
/health/hot-spots), and the policy's own numbers come out (limit, queue)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hotspot_client.console.cli import main

pytestmark = pytest.mark.slow

LIMIT, QUEUE, BURST = 3, 5, 20


def check_rows(report: str) -> list[list[str]]:
    """The rows of the report's checks table: scenario, check, generator, server, ok."""
    rows = []
    for line in report.split("\n## ")[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("scenario", "---"):
            rows.append(cells)
    return rows


def figure(report: str, section: str, name: str) -> str:
    body = report.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"^\| {re.escape(name)} \| (.*) \|$", body, re.MULTILINE)
    assert match is not None, f"{section}: no figure {name!r}"
    return match.group(1)


def test_every_scenario_agrees_with_the_server(tmp_path: Path) -> None:
    args = [
        "load", "--start-server", "--limit", str(LIMIT), "--window", "1", "--queue", str(QUEUE),
        "--seconds", "3", "--sizes", str(BURST), "--overloads", "4", "--fixtures", "30",
        "--processes", "1", "--out", str(tmp_path),
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(args)
    report = (tmp_path / "README.md").read_text()
    rows = check_rows(report)
    assert {row[0] for row in rows} == {
        f"single-fixture {BURST}",
        "sustained 4x",
        "retry-after",
        "metrics",
        "full-budget",
    }
    assert [row for row in rows if row[4] != "yes"] == []
    assert exited.value.code == 0
    # The policy's numbers, not only agreement: a burst gets the limit at once, the queue after.
    assert figure(report, f"single-fixture {BURST}", "granted at once") == str(LIMIT)
    assert figure(report, f"single-fixture {BURST}", "granted from the queue") == str(QUEUE)
    assert figure(report, f"single-fixture {BURST}", "refused") == str(BURST - LIMIT - QUEUE)
    assert figure(report, "sustained 4x", "most grants in one window") == str(LIMIT)
    assert int(figure(report, "sustained 4x", "peak queue depth")) <= QUEUE
    assert int(figure(report, "retry-after", "callers that waited their retry_delay")) > 0
    plots = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert {"sustained-4x-queue.png", "retry-after-retry.png", "full-budget-throughput.png"} <= set(
        plots
    )
    assert all((tmp_path / plot).read_bytes().startswith(b"\x89PNG") for plot in plots)


def test_a_server_that_cannot_be_reached_is_one_line_and_no_report(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--target", "127.0.0.1:1", "load", "--scenario", "single-fixture", "--sizes", "2",
              "--out", str(tmp_path)])  # fmt: skip
    assert exited.value.code not in (0, None)
    assert not (tmp_path / "README.md").exists()
