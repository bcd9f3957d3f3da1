"""`hotspot load`: the scenarios against a running server, or one it starts, with a live
progress line, then the report."""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc

from hotspot_core.collector import tune_collector
from hotspot_load.processes import SecondEntry
from hotspot_load.scenarios import RUNNERS, SCENARIOS, Result, Scale
from hotspot_load.server_view import ServerView

_READY = re.compile(r"ready: gRPC on (\S+?:\d+), HTTP on http://(\S+?:\d+)")


def add_parser(commands: Any) -> None:
    load = commands.add_parser("load", help="load scenarios, a Markdown report and plots")
    load.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="run this one (repeatable; default: all)",
    )
    load.add_argument("--out", type=Path, default=Path("load-report"), help="report directory")
    load.add_argument("--http", help="the server's HTTP side, HOST:PORT (metrics scenario)")
    load.add_argument(
        "--start-server",
        action="store_true",
        help="start hotspot-server on free ports with --limit/--window/--queue",
    )
    load.add_argument("--limit", type=int, default=50, help="the server's limit (default 50)")
    load.add_argument("--window", type=float, default=60.0, help="its window, seconds")
    load.add_argument("--queue", type=int, default=100, help="its queue (default 100)")
    load.add_argument("--seconds", type=float, default=60.0, help="length of each timed run")
    load.add_argument("--sizes", default="100,1000,10000", help="single-fixture bursts")
    load.add_argument("--overloads", default="2,5,20", help="sustained: times the limit")
    load.add_argument("--fixtures", type=int, default=10_000, help="full-budget fixtures")
    load.add_argument("--processes", type=int, default=2, help="full-budget load processes")


class ProgressLine:
    """One line, redrawn each second on a terminal (a line per second elsewhere)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, name: str, entry: SecondEntry) -> None:
        seconds, grants, refusals, p99 = entry
        text = (
            f"{name:<20} {seconds:6.0f} s  {grants:7,} permits/s  {refusals:6,} refusals/s"
            f"  p99 {p99:7.1f} ms"
        )
        sys.stderr.write(("\r" + text) if self.tty else text + "\n")
        sys.stderr.flush()


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hotspot_server",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--state-dir",
            "none",
            "--limit",
            str(args.limit),
            "--window",
            f"{args.window}s",
            "--queue",
            str(args.queue),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = _READY.search(line)
        if match:
            # Keep reading its log, or a full pipe would stall the server.
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, match.group(1), match.group(2)
    raise SystemExit(f"hotspot load: the server exited with {proc.wait()} before it was ready")


def scale_of(args: argparse.Namespace) -> Scale:
    return Scale(
        limit=args.limit,
        window=args.window,
        queue=args.queue,
        seconds=args.seconds,
        single_sizes=tuple(int(n) for n in args.sizes.split(",")),
        overloads=tuple(float(k) for k in args.overloads.split(",")),
        fixtures=args.fixtures,
        processes=args.processes,
    )


async def run_scenarios(view: ServerView, scale: Scale, names: list[str]) -> list[Result]:
    await view.stats([])  # unreachable: one error now, not one per scenario
    progress = ProgressLine()
    results: list[Result] = []
    for name in names:
        if name == "metrics" and view.http is None:
            sys.stderr.write("metrics: skipped, the server's HTTP side is not known (--http)\n")
            continue
        results += await RUNNERS[name](view, scale, progress)
        if progress.tty:
            sys.stderr.write("\n")
    return results


def run(args: argparse.Namespace) -> int:
    """Runs the scenarios; exit status 1 if a check failed."""
    from hotspot_load import report  # matplotlib: the `load` extra

    server = None
    target, http = args.target, args.http
    if args.start_server:
        server, target, http = start_server(args)
    try:
        view = ServerView(target, f"http://{http}" if http else None)
        scale = scale_of(args)
        tune_collector()  # this process drives the scenarios that run in one process
        started = time.monotonic()
        results = asyncio.run(run_scenarios(view, scale, args.scenario or list(SCENARIOS)))
    except grpc.RpcError as error:
        sys.exit(f"hotspot load: the permit server at {target} answered {error.code().name}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
    path = report.write(results, scale, target, args.out)
    failed = [f"{r.name}: {c.what}" for r in results for c in r.checks if not c.ok]
    print(f"report: {path} ({time.monotonic() - started:.0f} s)")
    for line in failed:
        print(f"check failed: {line}")
    return 1 if failed else 0
