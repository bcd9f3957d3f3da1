"""`hotspot`: the permit server from a terminal.

hotspot top              live table of the hottest fixtures (the WatchStats stream); not on a
                         terminal, a plain table per update
hotspot stats [--json]   one snapshot (Stats)
hotspot load             load scenarios with a Markdown report and plots (the `load` extra)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from hotspot_load import cli as load_cli
from rich.console import Console, Group
from rich.live import Live

from hotspot.v1 import permits_pb2 as pb
from hotspot.v1 import permits_pb2_grpc
from hotspot_client.channel_options import ChannelSecurity
from hotspot_client.console.stats_render import stats_view
from hotspot_core.stats import MAX_TOP_N as MAX_TOP
from hotspot_core.stats_feed import MIN_INTERVAL

if TYPE_CHECKING:
    from hotspot.v1.permits_pb2_grpc import PermitServiceStub

DISTRIBUTION = "hotspot-permits-client"
DEFAULT_TARGET = "127.0.0.1:50051"
STATS_TIMEOUT = 5.0
"""Seconds `hotspot stats` waits for its answer."""
RECENT_ALERTS = 5


def _top(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOP:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_TOP}")
    return int(text)


def _interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= MIN_INTERVAL:
        raise argparse.ArgumentTypeError(f"must be seconds, at least {MIN_INTERVAL:g}")
    return seconds


def _iterations(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number, at least 1")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotspot",
        description="Watch the hotspot permit server from a terminal.",
        # Raw: --version stays one line, however narrow the terminal.
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {metadata.version(DISTRIBUTION)} ({DISTRIBUTION})",
    )
    parser.add_argument(
        "--target",
        default=DEFAULT_TARGET,
        help=f"permit server, HOST:PORT (default {DEFAULT_TARGET})",
    )
    security = parser.add_argument_group(
        "security",
        "plain text unless one of these is given (a token alone to a loopback target "
        "goes in plain text on the loopback)",
    )
    security.add_argument(
        "--tls-ca",
        type=Path,
        metavar="FILE",
        help="CA certificates (PEM) of the server's certificate; TLS (default: the system's)",
    )
    security.add_argument(
        "--tls-cert",
        type=Path,
        metavar="FILE",
        help="client certificate (PEM), for a server that requires one",
    )
    security.add_argument(
        "--tls-key", type=Path, metavar="FILE", help="private key (PEM) of --tls-cert"
    )
    security.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="file holding a bearer token of the server's callers file",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    top = commands.add_parser("top", help="live table of the hottest fixtures, fed by WatchStats")
    top.add_argument("--top", type=_top, default=10, help="fixtures shown (default 10)")
    top.add_argument("--interval", type=_interval, default=1.0, help="seconds between updates")
    top.add_argument("--iterations", type=_iterations, help="stop after this many updates")
    stats = commands.add_parser("stats", help="one snapshot of the hottest fixtures (Stats)")
    stats.add_argument("--top", type=_top, default=10, help="fixtures shown (default 10)")
    stats.add_argument(
        "--fixture-id", action="append", default=[], help="show this fixture (repeatable)"
    )
    stats.add_argument("--json", action="store_true", help="print the StatsResponse as JSON")
    load_cli.add_parser(commands)
    return parser


def stats_json(response: pb.StatsResponse) -> str:
    """The proto3 JSON mapping, with field names as in the .proto and zeros included."""
    data = json_format.MessageToDict(
        response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return json.dumps(data, indent=2)


def run_stats(stub: PermitServiceStub, args: argparse.Namespace, console: Console) -> None:
    request = pb.StatsRequest(top_n=args.top, fixture_ids=args.fixture_id)
    response = stub.Stats(request, timeout=STATS_TIMEOUT)
    if args.json:
        print(stats_json(response))
    else:
        console.print(stats_view(f"hotspot stats  {args.target}", response))


def top_views(stream: Iterable[pb.StatsResponse], args: argparse.Namespace) -> Iterator[Group]:
    """One table per message of the stream, with the latest alerts, up to --iterations."""
    recent: deque[pb.Alert] = deque(maxlen=RECENT_ALERTS)
    for update, response in enumerate(stream, 1):
        recent.extend(response.alert_events)
        yield stats_view(f"hotspot top  {args.target}  (update {update})", response, recent)
        if args.iterations is not None and update >= args.iterations:
            return


def run_top(stub: PermitServiceStub, args: argparse.Namespace, console: Console) -> None:
    interval = Duration()
    interval.FromNanoseconds(round(args.interval * 1e9))
    stream = stub.WatchStats(pb.WatchStatsRequest(interval=interval, top_n=args.top))
    try:
        views = top_views(stream, args)
        if console.is_terminal:
            # Redrawn in place on each message; the stream sets the pace, not a refresh timer.
            with Live(console=console, auto_refresh=False) as live:
                for view in views:
                    live.update(view, refresh=True)
        else:
            # A pipe or a file, where Live would print only when it ends: one plain table per
            # update, flushed at once for whatever reads the other end.
            for view in views:
                console.print(view)
                console.file.flush()
    finally:
        stream.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs


def describe(error: grpc.RpcError, target: str) -> str:
    code = error.code()
    details = error.details()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return f"cannot reach the permit server at {target} ({code.name}: {details})"
    return f"{target} answered {code.name}: {details}"


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """Plain text, or secured as the security options ask. Raises ValueError, OSError."""
    if not (args.tls_ca or args.tls_cert or args.tls_key or args.token_file):
        return grpc.insecure_channel(args.target)
    security = ChannelSecurity(
        ca_file=args.tls_ca,
        cert_file=args.tls_cert,
        key_file=args.tls_key,
        token=args.token_file.read_text() if args.token_file else None,
    )
    return grpc.secure_channel(args.target, security.credentials(args.target))


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "load":
        sys.exit(load_cli.run(args))
    console = Console()
    try:
        channel = open_channel(args)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    try:
        with channel:
            stub = permits_pb2_grpc.PermitServiceStub(channel)
            if args.command == "stats":
                run_stats(stub, args, console)
            else:
                run_top(stub, args, console)
    except grpc.RpcError as error:
        sys.exit(f"hotspot: {describe(error, args.target)}")
    except KeyboardInterrupt:
        pass  # Ctrl-C is how `hotspot top` ends
