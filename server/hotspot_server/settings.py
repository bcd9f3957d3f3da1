"""Server settings from flags and an optional TOML file (flags win)."""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hotspot_core.durations import parse_duration
from hotspot_core.policy import PermitPolicy


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 hosts in brackets: [::1]:50051)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"not a HOST:PORT address: {text!r}")
    return host.strip("[]"), int(port)


HTTP_OFF = "off"
DEFAULT_HTTP = "127.0.0.1:8080"
"""The command line's HTTP address; an embedded PermitServer has no HTTP side unless asked."""


def parse_http(text: str) -> str | None:
    """HOST:PORT for the HTTP side, or None for `off`."""
    text = str(text)  # a TOML value may be any type
    if text.strip().lower() == HTTP_OFF:
        return None
    parse_address(text)
    return text


def parse_webhook_url(text: str) -> str:
    text = str(text)  # a TOML value may be any type
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http:// or https:// URL: {text!r}")
    return text


@dataclass(frozen=True)
class Settings:
    listen: str = "127.0.0.1:50051"
    policy: PermitPolicy = field(default_factory=PermitPolicy)
    grace: float = 5.0
    backend: str = "memory://"
    log_format: str = "text"
    http: str | None = None
    """HOST:PORT of /health/hot-spots, /metrics and /dashboard; None: no HTTP side."""
    metrics_max_fixtures: int = 1000
    """Fixtures that carry their own series in /metrics: the hottest ones."""
    alert_webhook: str | None = None
    """URL that every alert raised or cleared is POSTed to."""


# Each setting: its key (flag --key with dashes, TOML key with underscores), how to parse it,
# and whether it belongs to the PermitPolicy.
_KEYS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "listen": (str, "gRPC address to listen on, HOST:PORT"),
    "limit": (int, "grants per sliding window per fixture (default 50)"),
    "window": (parse_duration, "sliding window length (default 60s)"),
    "queue": (int, "waiters per fixture once the window is full (default 100)"),
    "alert_ratio": (float, "a fixture is hot at this share of its limit (default 0.8)"),
    "lease": (parse_duration, "a permit not released by then is abandoned (default 30s)"),
    "max_wait": (parse_duration, "longest wait in a queue for any request (default 5m)"),
    "max_fixtures": (int, "fixtures tracked at once (default 100000)"),
    "grace": (parse_duration, "time allowed for a clean shutdown (default 5s)"),
    "backend": (str, "state backend URL (default memory://)"),
    "log_format": (str, "text or json (default text)"),
    "http": (parse_http, f"HTTP address, HOST:PORT or {HTTP_OFF} (default {DEFAULT_HTTP})"),
    "metrics_max_fixtures": (int, "hottest fixtures with their own /metrics series (default 1000)"),
    "alert_webhook": (parse_webhook_url, "URL to POST each alert raised or cleared to"),
}
# Defaults of the command line (and config file) that differ from an embedded Settings().
_COMMAND_LINE_DEFAULTS: dict[str, str] = {"http": DEFAULT_HTTP}
_POLICY_KEYS = {f.name for f in fields(PermitPolicy)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotspot-server",
        description="Rate-permit service: exact per-fixture sliding windows with FIFO queues.",
    )
    parser.add_argument("--config", type=Path, help="TOML file with the same keys as the flags")
    for key, (_, help_text) in _KEYS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, help=help_text)
    return parser


def load_settings(argv: Sequence[str] | None = None) -> Settings:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return settings_from(_read_config(args.config) if args.config else {}, vars(args))
    except (ValueError, OSError, tomllib.TOMLDecodeError) as error:
        parser.error(str(error))


def _read_config(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        raw = tomllib.load(f)
    config = {k.replace("-", "_"): v for k, v in raw.items()}
    unknown = sorted(set(config) - set(_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; known keys: {sorted(_KEYS)}")
    return config


def settings_from(config: dict[str, Any], flags: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {}
    for key, (parse, _) in _KEYS.items():
        raw = flags.get(key)
        if raw is None:
            raw = config.get(key, _COMMAND_LINE_DEFAULTS.get(key))
        if raw is None:
            continue
        try:
            values[key] = parse(raw)
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
    policy = PermitPolicy(**{k: v for k, v in values.items() if k in _POLICY_KEYS})
    rest = {k: v for k, v in values.items() if k not in _POLICY_KEYS}
    parse_address(rest.get("listen", Settings.listen))
    if rest.get("grace", 0.0) < 0:
        raise ValueError(f"grace must not be negative, got {rest['grace']}s")
    if rest.get("log_format", "text") not in ("text", "json"):
        raise ValueError(f"log_format must be text or json, got {rest['log_format']!r}")
    if rest.get("metrics_max_fixtures", 0) < 0:
        raise ValueError(
            f"metrics_max_fixtures must be 0 or more, got {rest['metrics_max_fixtures']}"
        )
    return Settings(policy=policy, **rest)
