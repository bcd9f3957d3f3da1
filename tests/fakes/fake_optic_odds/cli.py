"""`fake-optic-odds`: run the fake Optic Odds for demos and end-to-end tests."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from fake_optic_odds.app import FakeSettings, UpstreamError
from fake_optic_odds.server import FakeOpticOddsServer
from hotspot_core.durations import parse_duration
from hotspot_server.settings import parse_address


def build_parser() -> argparse.ArgumentParser:
    defaults = FakeSettings()
    parser = argparse.ArgumentParser(
        prog="fake-optic-odds",
        description="A local Optic Odds v3 with its own per-fixture sliding-window limit.",
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:8765", help="HOST:PORT (port 0 picks a free one)"
    )
    parser.add_argument(
        "--limit", type=int, default=defaults.limit, help="calls per window per fixture"
    )
    parser.add_argument(
        "--window", default=f"{defaults.window:g}s", help="sliding window, e.g. 60s, 2s, 500ms"
    )
    parser.add_argument("--api-key", default=defaults.api_key, help="the accepted X-Api-Key")
    parser.add_argument(
        "--latency", default="0s", help="time each data call takes to answer, e.g. 150ms"
    )
    parser.add_argument(
        "--fixtures",
        type=Path,
        help="JSON file: a list of fixtures to list from the start (as POST /_fake/fixtures)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        parse_address(args.listen)
        settings = FakeSettings(
            api_key=args.api_key,
            limit=args.limit,
            window=parse_duration(args.window),
            latency=parse_duration(args.latency),
            fixtures=json.loads(args.fixtures.read_text()) if args.fixtures else [],
        )
        server = FakeOpticOddsServer(settings, args.listen)
    except (ValueError, OSError, UpstreamError) as error:
        parser.error(str(error))
    print(
        f"fake Optic Odds ready on {server.base_url} "
        f"(limit {settings.limit} per {settings.window:g}s per fixture)",
        file=sys.stderr,
        flush=True,
    )
    asyncio.run(server.serve_forever())
