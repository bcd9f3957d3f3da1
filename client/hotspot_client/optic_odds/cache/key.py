"""The cache key of a request: identical requests, in any order or case, share one entry."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

PREFIX = "hotspot:odds:v1:"
# Names, not data: Optic Odds matches sportsbooks and markets by name in any case.
_CASELESS = frozenset({"sportsbook", "market"})
_DEFAULTS = {"fixtures/odds": {"odds_format": "AMERICAN"}}


def cache_key(path: str, params: Iterable[tuple[str, str]]) -> str:
    """`hotspot:odds:v1:<path>?<sorted parameters>`, each parameter's values sorted, no repeats.

    A parameter left out and its documented default give one key (odds_format AMERICAN).
    """
    values: dict[str, set[str]] = {}
    for name, value in params:
        text = value.casefold() if name in _CASELESS else value
        if name == "odds_format":
            text = value.upper()
        values.setdefault(name, set()).add(text)
    for name, default in _DEFAULTS.get(path, {}).items():
        values.setdefault(name, {default})
    query = urlencode([(name, v) for name in sorted(values) for v in sorted(values[name])])
    return f"{PREFIX}{path}?{query}"
