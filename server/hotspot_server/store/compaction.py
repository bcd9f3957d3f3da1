"""Compaction of a state dir's closed journals, in a process of its own.

Folding a few MB of journal into a snapshot is 10-500 ms of pure Python every couple of
seconds at the full budget. In a thread of the server it held the GIL in 5 ms turns, so every
callback of the event loop waited up to 5 ms for it and grants queued behind: p99 grant latency
spiked every few seconds (docs/benchmarks.md, (j)). It reads and writes only closed files, never
the live state, so a child process can do it with no GIL in common: `CompactorProcess` keeps one
and sends it one line per compaction.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import IO

from hotspot_server.store.journal import JournalError, Replay, snapshot_bytes

_CHILD = (
    "import sys\nfrom hotspot_server.store import compaction\n"
    "compaction.serve(sys.stdin, sys.stdout)"
)
"""The child's program (not `-m`: the package imports this module before it would run)."""
_FILE = re.compile(r"(journal|snapshot)-(\d{10})\.log")


def state_files(path: Path) -> list[tuple[int, str, Path]]:
    """The journals and snapshots in a state dir: (sequence, kind, path), in order."""
    found = []
    for entry in path.iterdir():
        match = _FILE.fullmatch(entry.name)
        if match:
            found.append((int(match.group(2)), match.group(1), entry))
    return sorted(found)


def compact(path: Path, current: int) -> int | None:
    """Fold every closed journal (those before `current`, the one being written) and the last
    snapshot into a new snapshot; returns its size, or None when there was nothing to fold."""
    files = [(seq, kind, p) for seq, kind, p in state_files(path) if seq < current]
    base = max((seq for seq, kind, _ in files if kind == "snapshot"), default=-1)
    # The newest snapshot, then the closed journals after it, as a restart would read them.
    plan = [
        p
        for seq, kind, p in files
        if (kind == "snapshot" and seq == base) or (kind == "journal" and seq > base)
    ]
    upto = max((seq for seq, kind, _ in files if kind == "journal"), default=-1)
    if upto <= base:
        return None  # no closed journal since the last snapshot
    replay = Replay()
    for p in plan:
        with contextlib.suppress(JournalError):
            replay.read(p.name, p.read_bytes())
    target = path / f"snapshot-{upto:010d}.log"
    tmp = target.with_suffix(".tmp")
    with tmp.open("wb") as f:
        for part in snapshot_bytes(replay.states):
            f.write(part)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(target)
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a machine crash
    finally:
        os.close(dir_fd)
    for seq, _, p in files:
        if seq <= upto and p != target:
            p.unlink(missing_ok=True)
    return target.stat().st_size


class CompactorProcess:
    """One child process that compacts on request, started at the first compaction (most
    servers never rotate a journal) and again if it died. Used by one thread at a time."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[str] | None = None

    def compact(self, path: Path, current: int) -> int | None:
        """As compact(), in the child; an OSError there is raised here (its message)."""
        child = self._child
        if child is None or child.poll() is not None:
            child = self._child = subprocess.Popen(
                [sys.executable, "-c", _CHILD],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                # Not in the server's process group: a Ctrl-C stops the server, which closes
                # the child's stdin, and the child ends at the end of its compaction.
                start_new_session=True,
            )
        stdin, stdout = child.stdin, child.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            stdin.write(f"{current}\t{path}\n")
            stdin.flush()
            answer = stdout.readline()
        except OSError as error:
            self.close()
            raise OSError(f"the compaction process failed: {error}") from None
        kind, _, value = answer.rstrip("\n").partition("\t")
        if kind == "done":
            return int(value) if value else None
        if not answer:
            self.close()
            raise OSError(f"the compaction process ended (exit code {child.wait()})")
        raise OSError(value)

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            with contextlib.suppress(OSError):
                if child.stdin is not None:
                    child.stdin.close()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()


def serve(requests: IO[str], answers: IO[str]) -> None:
    """The child's loop: `<current>\\t<state dir>` in, `done\\t<size or nothing>` or
    `error\\t<message>` out, until its input ends."""
    for line in requests:
        current, _, path = line.rstrip("\n").partition("\t")
        try:
            size = compact(Path(path), int(current))
        except OSError as error:
            message = str(error).replace("\n", " ")
            answers.write(f"error\t{message}\n")
        else:
            answers.write(f"done\t{'' if size is None else size}\n")
        answers.flush()
