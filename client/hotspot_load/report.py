"""The report: README.md (figures, and each check of the generator against the server) and PNG
plots, written to one directory."""

from __future__ import annotations

import datetime
import os
import platform
import re
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from hotspot_load.scenarios import Result, Scale


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _grants_per_second(result: Result, scale: Scale, out: Path) -> str:
    log = result.log
    assert log is not None
    hot = log.fixtures.index(result.hot_fixture)
    seconds = Counter(
        int(g - result.start)
        for f, g in zip(log.grant_fixture, log.granted_at, strict=True)
        if f == hot
    )
    xs = list(range(max(seconds, default=0) + 1))
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(xs, [seconds.get(x, 0) for x in xs], width=1.0, label=f"grants/s, {result.hot_fixture}")
    ax.axhline(
        scale.limit / scale.window,
        color="red",
        label=f"limit: {scale.limit} per {scale.window:g} s",
    )
    ax.set_xlabel("seconds")
    ax.set_ylabel("grants per second")
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, out, f"{_slug(result.name)}-grants.png")


def _queue_depth(result: Result, scale: Scale, out: Path) -> str:
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(
        [t for t, _ in result.queue_depth],
        [d for _, d in result.queue_depth],
        label="queue depth (Stats)",
    )
    ax.axhline(scale.queue, color="red", label=f"queue capacity {scale.queue}")
    ax.set_xlabel("seconds")
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, out, f"{_slug(result.name)}-queue.png")


def _waits(result: Result, out: Path) -> str:
    assert result.log is not None
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(list(result.log.waited), bins=40)
    ax.set_xlabel("seconds waited in the queue (server's figure)")
    ax.set_ylabel("grants")
    return _save(fig, out, f"{_slug(result.name)}-waits.png")


def _retry(result: Result, out: Path) -> str:
    assert result.log is not None
    retried = result.log.retried
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter([p for p, _, _ in retried], [a for _, a, _ in retried], s=8)
    top = max([a for _, a, _ in retried] + [p for p, _, _ in retried] + [1.0])
    ax.plot([0, top], [0, top], color="red", label="actual = promised")
    ax.set_xlabel("promised retry_delay (s)")
    ax.set_ylabel("actual wait until granted (s)")
    ax.legend(fontsize="small")
    return _save(fig, out, f"{_slug(result.name)}-retry.png")


def _throughput(result: Result, out: Path) -> str:
    fig, left = plt.subplots(figsize=(7, 3))
    xs = [s for s, _, _, _ in result.per_second]
    left.plot(xs, [g for _, g, _, _ in result.per_second], label="permits/s")
    left.set_xlabel("seconds")
    left.set_ylabel("permits/s")
    right = left.twinx()
    right.plot(xs, [p for _, _, _, p in result.per_second], color="orange", label="p99 ms")
    right.set_ylabel("p99 grant latency (ms)")
    fig.legend(loc="upper right", fontsize="small")
    return _save(fig, out, f"{_slug(result.name)}-throughput.png")


def _save(fig: Figure, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def write(results: list[Result], scale: Scale, target: str, out: Path) -> Path:
    """Writes out/README.md and its plots; returns the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# hotspot load report",
        "",
        f"Written by `hotspot load` against {target} at "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. Policy: {scale.limit} per {scale.window:g} s, "
        f"queue {scale.queue}; runs of {scale.seconds:g} s.",
        "",
        "Checks hold the generator's own log against what the server says.",
        "",
        "| scenario | check | generator | server | ok |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.name} | {c.what} | {c.generator:g} | {c.server:g} | {'yes' if c.ok else '**no**'} |"
        for r in results
        for c in r.checks
    ]
    for result in results:
        lines += ["", f"## {result.name}", "", "| figure | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in result.figures.items()]
        plots = []
        if result.log is not None and result.log.granted_at and result.hot_fixture:
            plots.append(_grants_per_second(result, scale, out))
        if result.queue_depth:
            plots.append(_queue_depth(result, scale, out))
        if result.log is not None and any(result.log.queued):
            plots.append(_waits(result, out))
        if result.log is not None and result.log.retried:
            plots.append(_retry(result, out))
        if len(result.per_second) > 1:
            plots.append(_throughput(result, out))
        lines += [""] + [f"![{name}]({name})" for name in plots]
    report = out / "README.md"
    report.write_text("\n".join(lines) + "\n")
    return report
