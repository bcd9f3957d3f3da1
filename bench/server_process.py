"""Start and stop a benchmark server process, and read its CPU time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from types import TracebackType

_READY = re.compile(r"ready: gRPC on 127\.0\.0\.1:(\d+)")


class ServerProcess:
    """`python -m module args`; the port comes from the first stdout line, or from
    hotspot-server's ready log line when `ready_line` is set."""

    def __init__(self, module: str, *args: str, ready_line: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if ready_line else None,
            text=True,
        )
        self.port = self._read_port(ready_line)

    def _read_port(self, ready_line: bool) -> int:
        stream = self.proc.stderr if ready_line else self.proc.stdout
        assert stream is not None
        for line in stream:
            if not ready_line:
                return int(line)
            match = _READY.search(line)
            if match:
                # Keep reading its log, or a full pipe would stall the server mid-benchmark.
                threading.Thread(target=stream.read, daemon=True).start()
                return int(match.group(1))
        raise RuntimeError(f"server exited with {self.proc.wait()} before it was ready")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
