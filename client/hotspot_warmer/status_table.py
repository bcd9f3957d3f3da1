"""`hotspot-warmer status`: a running warmer's /status as a plain table."""

from __future__ import annotations

from typing import Any

COLUMNS = (
    ("fixture", "fixture_id"),
    ("rule", "rule"),
    ("state", "state"),
    ("starts", "start_date"),
    ("next run", "next_run"),
    ("budget used", "budget_used"),
    ("last result", "last_result"),
)


def render(status: dict[str, Any]) -> str:
    rows = [[_cell(w.get(key), key) for _, key in COLUMNS] for w in status.get("warmings", [])]
    header = [title for title, _ in COLUMNS]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    ]
    summary = (
        f"{len(rows)} warmings at {status.get('now')}; one refresh per fixture every "
        f"{status.get('refresh_every', 0):g}s at most; {status.get('polls', 0)} polls"
    )
    return "\n".join([*lines, summary] if rows else ["no warmings scheduled", summary])


def _cell(value: Any, key: str) -> str:
    if value is None or value == "":
        return "-"
    if key == "budget_used":
        return f"{float(value):.0%}"
    return str(value)
