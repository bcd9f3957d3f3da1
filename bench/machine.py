"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
from importlib.metadata import version


def describe() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"grpcio {version('grpcio')}, protobuf {version('protobuf')}, limits {version('limits')}; "
        f"load average {load:.2f} at start"
    )
