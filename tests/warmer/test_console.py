"""The `hotspot-warmer` console commands, run for real: `explain` against the real fake Optic
Odds, `status` against a real running warmer (over the real permit server), and `--version`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import API_KEY, ServiceProcess, fake_optic_odds, permit_server, running
from tests.e2e.processes import warmer as warmer_process

pytestmark = pytest.mark.slow

SCRIPT = Path(sys.executable).parent / "hotspot-warmer"
"""The console script the client distribution installs next to this interpreter."""
SUPER_BOWL = "20260208NFLSB60X"
PLAYOFF = "20260118NBAPLAYOFF"
REGULAR = "20260110NBAREG01"
LATER = "20260301NFLCHAMP1"

WARMER_TOML = """
[warming]
lead = "1h"
lookahead = "3h"
poll_every = "500ms"
max_game_length = "1h"
budget_share = 0.25
limit = 20
window = "3s"
sportsbooks = ["DraftKings"]
markets = ["Moneyline"]
live_fresh = "0s"
pregame_fresh = "0s"

[[rule]]
name = "super-bowl"
priority = 100
leagues = ["nfl"]
names = ["super ?bowl"]

[[rule]]
name = "nfl-championship"
priority = 90
leagues = ["nfl"]
names = ["championship"]

[[rule]]
name = "us-playoffs"
priority = 70
leagues = ["nfl", "nba"]
season_types = ["Playoffs"]
"""


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _fixtures(now: datetime) -> list[dict[str, Any]]:
    nfl = {"id": "nfl", "name": "NFL", "numerical_id": 367}
    nba = {"id": "nba", "name": "NBA", "numerical_id": 1}
    return [
        {
            "id": SUPER_BOWL,
            "start_date": _iso(now + timedelta(minutes=30)),  # warming from the first poll
            "league": nfl,
            "season_type": "Playoffs",
            "tournament": "NFL Playoffs",
            "tournament_stage": "Super Bowl LX",
        },
        {
            "id": LATER,
            "start_date": _iso(now + timedelta(minutes=150)),  # warming in 90 minutes
            "league": nfl,
            "season_type": "Playoffs",
            "tournament_stage": "AFC Championship",
        },
        {
            "id": PLAYOFF,
            "start_date": _iso(now + timedelta(days=3)),  # outside the look-ahead
            "league": nba,
            "season_type": "Playoffs",
        },
        {
            "id": REGULAR,
            "start_date": _iso(now + timedelta(minutes=20)),
            "league": nba,
            "season_type": "Regular Season",
            "tournament_stage": None,
            "home_team_display": "Boston Celtics",
            "away_team_display": "Miami Heat",
        },
    ]


@dataclass
class Upstream:
    url: str
    permits: str
    config: Path
    now: datetime
    processes: list[ServiceProcess]


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    now = datetime.now(UTC).replace(microsecond=0)
    listing = tmp_path / "fixtures.json"
    listing.write_text(json.dumps(_fixtures(now)))
    config = tmp_path / "warmer.toml"
    config.write_text(WARMER_TOML)
    with running() as processes:
        fake = fake_optic_odds(20, "3s", fixtures=listing)
        permits = permit_server("--limit", "20", "--window", "3s")
        processes += [fake, permits]
        yield Upstream(fake.address, permits.address, config, now, processes)


def run(*args: str, script: bool = False) -> subprocess.CompletedProcess[str]:
    """hotspot-warmer ARGS, as the installed script or `python -m hotspot_warmer`."""
    argv = [str(SCRIPT)] if script else [sys.executable, "-m", "hotspot_warmer"]
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=30, check=False, stdin=None
    )


def test_version_names_the_client_distribution() -> None:
    expected = (
        f"hotspot-warmer {metadata.version('hotspot-permits-client')} (hotspot-permits-client)"
    )
    for script in (False, True):
        done = run("--version", script=script)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected


def test_explain_prints_the_matching_rule_and_why(upstream: Upstream) -> None:
    common = ("--optic-odds-url", upstream.url, "--api-key", API_KEY)
    done = run("explain", SUPER_BOWL, *common, script=True)  # the packaged default rules
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{SUPER_BOWL}: major, rule 'super-bowl' (priority 100)",
        "  because league.id 'nfl' is one of ['nfl']",
        "  because tournament_stage 'Super Bowl LX' matches /super ?bowl/",
        "  also matched: us-playoffs, us-playoff-tournaments",
    ]

    done = run("explain", LATER, *common, "--config", str(upstream.config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{LATER}: major, rule 'nfl-championship' (priority 90)",
        "  because league.id 'nfl' is one of ['nfl']",
        "  because tournament_stage 'AFC Championship' matches /championship/",
        "  also matched: us-playoffs",
    ]

    done = run("explain", PLAYOFF, *common, "--config", str(upstream.config))
    assert done.stdout.splitlines() == [
        f"{PLAYOFF}: major, rule 'us-playoffs' (priority 70)",
        "  because league.id 'nba' is one of ['nfl', 'nba']",
        "  because season_type 'Playoffs' is one of ['Playoffs']",
    ]

    done = run("explain", REGULAR, *common, "--config", str(upstream.config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{REGULAR}: regular (no rule matched)"


def test_explain_says_what_is_wrong(upstream: Upstream, tmp_path: Path) -> None:
    no_key = run("explain", SUPER_BOWL, "--optic-odds-url", upstream.url, "--api-key", "")
    assert no_key.returncode == 2
    assert "OPTIC_ODDS_API_KEY" in no_key.stderr
    assert no_key.stdout == ""

    wrong_key = run("explain", SUPER_BOWL, "--optic-odds-url", upstream.url, "--api-key", "nope")
    assert wrong_key.returncode == 1
    assert "401" in wrong_key.stderr
    assert wrong_key.stdout == ""

    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "empty"\n')
    bad_config = run("explain", SUPER_BOWL, "--api-key", API_KEY, "--config", str(bad))
    assert bad_config.returncode == 2
    assert "names no criterion" in bad_config.stderr


def test_status_lists_running_and_scheduled_warmings(upstream: Upstream) -> None:
    warmer = warmer_process(upstream.permits, upstream.url, "memory://", upstream.config, "solo")
    upstream.processes.append(warmer)
    url = f"http://{warmer.address}"
    # Wait until the warmer has refreshed the running fixture a few times.
    deadline = time.monotonic() + 15
    while True:
        status = json.loads(run("status", "--url", url, "--json").stdout)
        rows = {row["fixture_id"]: row for row in status["warmings"]}
        if rows.get(SUPER_BOWL, {}).get("results", {}).get("refreshed", 0) >= 3:
            break
        assert time.monotonic() < deadline, f"no refreshes: {status}"
        time.sleep(0.2)

    done = run("status", "--url", url, script=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines[0].split()
    assert header == [
        "fixture",
        "rule",
        "state",
        "starts",
        "next",
        "run",
        "budget",
        "used",
        "last",
        "result",
    ]
    by_fixture = {line.split()[0]: line.split(maxsplit=6) for line in lines[1:-1]}
    assert set(by_fixture) == {SUPER_BOWL, LATER}  # not the regular one, nor one days away

    _, rule, state, starts, next_run, used, last = by_fixture[SUPER_BOWL]
    assert (rule, state, last) == ("super-bowl", "running", "refreshed")
    assert starts == _iso(upstream.now + timedelta(minutes=30))
    # The next refresh is at most one period (0.6 s) away from the warmer's "now".
    now = datetime.fromisoformat(re.search(r" at (\S+);", lines[-1]).group(1))  # type: ignore[union-attr]
    assert timedelta(0) <= datetime.fromisoformat(next_run) - now <= timedelta(seconds=0.7)
    assert re.fullmatch(r"\d+%", used)
    assert 0 < int(used[:-1]) <= 100  # within its share: at most 5 calls of a 3 s window

    _, rule, state, starts, next_run, used, last = by_fixture[LATER]
    kickoff = upstream.now + timedelta(minutes=150)
    assert (rule, state, used, last) == ("nfl-championship", "scheduled", "0%", "-")
    assert starts == _iso(kickoff)
    assert next_run == _iso(kickoff - timedelta(hours=1))  # lead before kick-off

    assert re.fullmatch(
        r"2 warmings at \S+Z; one refresh per fixture every 0\.6s at most; \d+ polls", lines[-1]
    ), lines[-1]

    # The JSON says the same, with the counts behind "budget used".
    status = json.loads(run("status", "--url", url, "--json").stdout)
    row = next(r for r in status["warmings"] if r["fixture_id"] == SUPER_BOWL)
    assert row["budget"] == 5.0
    assert row["budget_used"] == round(row["calls_in_window"] / 5.0, 3)
    assert 1 <= row["calls_in_window"] <= 5


def test_status_without_a_warmer_says_so() -> None:
    done = run("status", "--url", "http://127.0.0.1:9")
    assert done.returncode == 1
    assert "no warmer answered at http://127.0.0.1:9" in done.stderr
