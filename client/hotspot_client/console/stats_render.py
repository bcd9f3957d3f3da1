"""A StatsResponse as rich renderables: a summary line, the fixtures table, recent alerts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich import box
from rich.bar import Bar
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hotspot.v1 import permits_pb2 as pb

BAR_WIDTH = 12
_STATES = {pb.ALERT_STATE_RAISED: "raised", pb.ALERT_STATE_CLEARED: "cleared"}


def local_time(timestamp: object) -> str:
    seconds = timestamp.seconds + timestamp.nanos / 1e9  # type: ignore[attr-defined]
    return datetime.fromtimestamp(seconds).strftime("%H:%M:%S")


def summary(response: pb.StatsResponse) -> Text:
    totals = response.totals
    parts = [
        ("fixtures", totals.fixtures_tracked),
        ("hot", len(response.alerts)),
        ("grants", totals.calls_total),
        ("refused", totals.rejected_total),
        ("queued", totals.queue_depth),
        ("in flight", totals.in_flight),
    ]
    text = Text()
    for i, (label, value) in enumerate(parts):
        if i:
            text.append("  ·  ", style="dim")
        text.append(f"{label} ")
        text.append(f"{value:,}", style="bold red" if label == "hot" and value else "bold")
    return text


def fixtures_table(response: pb.StatsResponse) -> Table:
    # Sized to fit 80 columns with 16-character fixture ids.
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, collapse_padding=True)
    table.add_column("#", justify="right", style="dim", no_wrap=True)
    table.add_column("fixture", no_wrap=True)
    table.add_column("calls", justify="right", no_wrap=True)
    table.add_column("vs limit", width=BAR_WIDTH, no_wrap=True)
    for name in ("queue", "in flight", "refused"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for rank, row in enumerate(response.fixtures, 1):
        table.add_row(
            str(rank),
            row.fixture_id,
            f"{row.calls_in_window}/{row.limit}",
            Bar(
                size=max(row.limit, 1),
                begin=0,
                end=row.calls_in_window,
                width=BAR_WIDTH,
                color="red" if row.hot else "blue",
            ),
            f"{row.queue_depth}/{row.queue_capacity}",
            str(row.in_flight),
            str(row.rejected_total),
            "HOT" if row.hot else "",
            style="bold red" if row.hot else None,
        )
    return table


def alert_lines(alerts: Iterable[pb.Alert]) -> list[Text]:
    return [
        Text(
            f"{local_time(a.at)}  {_STATES.get(a.state, 'unknown'):7}  {a.fixture_id}  "
            f"({a.calls_in_window} calls, threshold {a.threshold}, clears below {a.clear_below})",
            style="red" if a.state == pb.ALERT_STATE_RAISED else "green",
        )
        for a in alerts
    ]


def stats_view(title: str, response: pb.StatsResponse, events: Iterable[pb.Alert] = ()) -> Group:
    parts: list[RenderableType] = [
        Text(f"{title}  {local_time(response.generated_at)}", style="bold"),
        summary(response),
        fixtures_table(response) if response.fixtures else Text("no fixture is tracked"),
    ]
    lines = alert_lines(events)
    if lines:
        parts.append(Text("recent alerts", style="bold"))
        parts.extend(lines)
    return Group(*parts)
