"""Durations as operators write them: `60s`, `500ms`, `2m`, `1h`, or bare seconds."""

from __future__ import annotations

import math
import re

# ASCII digits only: `\d` would also take other scripts' digits (Arabic-Indic ten, say).
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h)?\s*", re.ASCII)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float) -> float:
    """Seconds from `60s`, `500ms`, `2m`, `1h` or a bare number of seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise ValueError(f"not a duration: {text!r}")
        return float(text)
    text = str(text)
    match = _DURATION.fullmatch(text) if len(text) <= 32 else None
    if match is None:
        raise ValueError(f"not a duration: {text[:32]!r} (use e.g. 60s, 500ms, 2m, 1h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
