"""GatewaySettings: the odds gateway's configuration, from environment variables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from hotspot_client.optic_odds import DEFAULT_BASE_URL
from hotspot_core.durations import parse_duration

_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _flag(text: str) -> bool:
    try:
        return _FLAGS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"not a yes/no value: {text!r} (use 1/0, true/false, yes/no)") from None


@dataclass(frozen=True)
class GatewaySettings:
    optic_odds_api_key: str
    optic_odds_base_url: str = DEFAULT_BASE_URL
    optic_odds_timeout: float = 10.0
    hotspot_target: str = "127.0.0.1:50051"
    hotspot_client_id: str = "odds-gateway"
    hotspot_max_wait: float = 10.0
    """Seconds a request may wait for its permits before it is refused."""
    hotspot_retry_for: float = 1.0
    """Seconds a call retries an unreachable permit service before giving up."""
    hotspot_fail_open: bool = False
    fallback_limit: int = 50
    """Fail-open: the in-process window's limit per fixture, ..."""
    fallback_window: float = 60.0
    """... its length in seconds, ..."""
    fallback_queue: int = 100
    """... and its queue."""
    cache_url: str = ""
    """The odds cache: memory:// (this process) or redis://HOST:PORT/DB (shared); empty: off."""
    cache_live_fresh: float = 3.0
    """Seconds live odds are served fresh, ..."""
    cache_live_max_stale: float = 30.0
    """... and how long past that they may be served stale while refreshes fail."""
    cache_pregame_fresh: float = 60.0
    """The same for pre-game odds (never fresh past kick-off), ..."""
    cache_pregame_max_stale: float = 300.0
    """... and their maximum staleness."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewaySettings:
        """Read every setting from its variable (the field's name in upper case)."""
        key = env.get("OPTIC_ODDS_API_KEY", "")
        if not key:
            raise ValueError("OPTIC_ODDS_API_KEY must be set: the Optic Odds API key")
        values: dict[str, Any] = {}
        parsers: dict[str, Callable[[str], object]] = {
            "optic_odds_base_url": str,
            "optic_odds_timeout": parse_duration,
            "hotspot_target": str,
            "hotspot_client_id": str,
            "hotspot_max_wait": parse_duration,
            "hotspot_retry_for": parse_duration,
            "hotspot_fail_open": _flag,
            "fallback_limit": int,
            "fallback_window": parse_duration,
            "fallback_queue": int,
            "cache_url": str,
            "cache_live_fresh": parse_duration,
            "cache_live_max_stale": parse_duration,
            "cache_pregame_fresh": parse_duration,
            "cache_pregame_max_stale": parse_duration,
        }
        for name, parse in parsers.items():
            raw = env.get(name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[name] = parse(raw)
            except ValueError as error:
                raise ValueError(f"{name.upper()}: {error}") from None
        return replace(cls(optic_odds_api_key=key), **values)
