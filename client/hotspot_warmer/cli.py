"""`hotspot-warmer`: run the warmer, show what a running one does, or explain a classification.

    hotspot-warmer run --cache-url redis://127.0.0.1:6379/0      # the scheduler and its jobs
    hotspot-warmer status [--url http://127.0.0.1:8090]          # scheduled and running warmings
    hotspot-warmer explain FIXTURE_ID                            # which rule matched, and why

Optic Odds' key comes from OPTIC_ODDS_API_KEY (or --api-key).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from hotspot_client import PermitClient
from hotspot_client.optic_odds import DEFAULT_BASE_URL, OpticOddsClient, OpticOddsError
from hotspot_client.optic_odds.cache import OddsCache
from hotspot_warmer.config import WarmerConfig
from hotspot_warmer.leases import FixtureLeases, LocalLeases, RedisLeases
from hotspot_warmer.rules import classify
from hotspot_warmer.scheduler import WarmingScheduler
from hotspot_warmer.status_table import render
from hotspot_warmer.utc_clock import UtcClock

DEFAULT_HTTP = "127.0.0.1:8090"
DISTRIBUTION = "hotspot-permits-client"
CLIENT_ID = "hotspot-warmer"
"""The permit service sees the warmer's grants under this client_id (its logs name it)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotspot-warmer", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {metadata.version(DISTRIBUTION)} ({DISTRIBUTION})",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def upstream(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", type=Path, help="TOML rules and settings (default: packaged)")
        sub.add_argument(
            "--optic-odds-url", default=os.environ.get("OPTIC_ODDS_BASE_URL", DEFAULT_BASE_URL)
        )
        sub.add_argument("--api-key", default=os.environ.get("OPTIC_ODDS_API_KEY", ""))

    run = commands.add_parser("run", help="poll, classify and warm until stopped")
    upstream(run)
    run.add_argument(
        "--hotspot-target", default=os.environ.get("HOTSPOT_TARGET", "127.0.0.1:50051")
    )
    run.add_argument(
        "--cache-url",
        default=os.environ.get("HOTSPOT_CACHE_URL", "memory://"),
        help="the gateways' shared cache, redis://HOST:PORT/DB (memory:// warms nobody else)",
    )
    run.add_argument(
        "--http", default=DEFAULT_HTTP, help="HOST:PORT for /status, /metrics, /healthz"
    )
    run.add_argument(
        "--warmer-id",
        default=f"{socket.gethostname()}-{os.getpid()}",
        help="this warmer's name: its leases' owner, and its announcements' on the permit service",
    )
    run.add_argument("--log-level", default="info")

    status = commands.add_parser("status", help="a running warmer's warmings")
    status.add_argument("--url", default=f"http://{DEFAULT_HTTP}")
    status.add_argument("--json", action="store_true", help="the raw /status JSON")

    explain = commands.add_parser("explain", help="classify one fixture and say why")
    upstream(explain)
    explain.add_argument("fixture_id")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "status":
            sys.exit(_status(args.url, as_json=args.json))
        config = WarmerConfig.load(args.config)
        if not args.api_key:
            raise ValueError("the Optic Odds key is needed: OPTIC_ODDS_API_KEY or --api-key")
        if args.command == "explain":
            sys.exit(asyncio.run(_explain(args, config)))
        logging.basicConfig(
            level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
        asyncio.run(_run(args, config))
    except ValueError as error:
        print(f"hotspot-warmer: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        pass


def _status(url: str, *, as_json: bool) -> int:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/status", timeout=5) as answer:
            status = json.load(answer)
    except (urllib.error.URLError, OSError) as error:
        print(f"hotspot-warmer: no warmer answered at {url}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2) if as_json else render(status))
    return 0


async def _explain(args: argparse.Namespace, config: WarmerConfig) -> int:
    async with (
        PermitClient("unused:0") as permits,  # /fixtures takes no permit; nothing dials it
        OpticOddsClient(permits, api_key=args.api_key, base_url=args.optic_odds_url) as odds,
    ):
        try:
            page = await odds.fixtures(fixture_ids=args.fixture_id)
        except OpticOddsError as error:
            print(f"hotspot-warmer: {error}", file=sys.stderr)
            return 1
    if not page.data:
        print(f"hotspot-warmer: Optic Odds lists no fixture {args.fixture_id}", file=sys.stderr)
        return 1
    print(classify(page.data[0], config.rules).explain())
    return 0


async def _run(args: argparse.Namespace, config: WarmerConfig) -> None:
    # Imported here: aiohttp is the `warmer` extra, which `status` and `explain` do not need.
    from aiohttp import web

    from hotspot_warmer.status_http import status_app

    clock = UtcClock()
    # The entries it stores carry this freshness for every reader of the shared cache.
    cache = OddsCache.from_url(
        args.cache_url, now=clock.timestamp, freshness=config.warming.freshness
    )
    leases: FixtureLeases = (
        RedisLeases(args.cache_url, args.warmer_id) if cache.store.shared else LocalLeases()
    )
    async with (
        PermitClient(args.hotspot_target, client_id=CLIENT_ID, warming=True) as permits,
        OpticOddsClient(
            permits, api_key=args.api_key, base_url=args.optic_odds_url, cache=cache
        ) as odds,
    ):
        # The lease owner's name also names its announcements on the permit service's board.
        announcer = re.sub(r"[^A-Za-z0-9._:-]", "-", args.warmer_id)[:64]
        scheduler = WarmingScheduler(odds, config, clock, leases, announcer)
        runner: web.AppRunner | None = None
        if args.http != "off":
            host, _, port = args.http.rpartition(":")
            runner = web.AppRunner(status_app(scheduler, cache.metrics))
            await runner.setup()
            site = web.TCPSite(runner, host.strip("[]"), int(port))
            await site.start()
            bound = runner.addresses[0]
            print(
                f"hotspot-warmer ready: http on {bound[0]}:{bound[1]}", file=sys.stderr, flush=True
            )
        else:
            print("hotspot-warmer ready: http off", file=sys.stderr, flush=True)
        warming = asyncio.create_task(scheduler.run())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, warming.cancel)
        try:
            await warming
        except asyncio.CancelledError:
            logging.getLogger("hotspot.warmer").info("stopping")
        finally:
            if runner is not None:
                await runner.cleanup()
            await leases.close()
            await cache.close()
