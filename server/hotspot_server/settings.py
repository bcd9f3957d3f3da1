"""Server settings from flags, HOTSPOT_* environment variables and an optional TOML file.

Precedence: flag, then environment, then the --config file, then the default.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from hotspot_core.durations import parse_duration
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import MAX_FIXTURE_IDS
from hotspot_core.stats_feed import (
    DEFAULT_MAX_SUBSCRIBERS,
    DEFAULT_MAX_SUBSCRIBERS_PER_CALLER,
    StatsCaps,
)
from hotspot_server.alert_webhook import WebhookSecret, read_webhook_secret
from hotspot_server.build_info import version_line


class SettingsError(ValueError):
    """A setting the operator got wrong (a bad value, an unknown key or backend): exit status 2."""


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


LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_log_level(text: str) -> str:
    level = str(text).strip().lower()  # a TOML value may be any type
    if level not in LOG_LEVELS:
        raise ValueError(f"not one of {', '.join(LOG_LEVELS)}: {text!r}")
    return level


def parse_webhook_url(text: str) -> str:
    text = str(text)  # a TOML value may be any type
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http:// or https:// URL: {text!r}")
    return text


def parse_file(text: str) -> Path:
    text = str(text)  # a TOML value may be any type
    if not text.strip():
        raise ValueError("must name a file")
    return Path(text)


def parse_switch(value: object) -> bool:
    """A TOML boolean, or true/false, yes/no, on/off, 1/0 from a flag or the environment."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"not true or false: {value!r}")


def is_loopback(host: str) -> bool:
    """Only this machine can reach it: 127.0.0.0/8, ::1 or localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name that may resolve anywhere
        return False


STATE_NONE = "none"
DEFAULT_STATE_DIR = "./hotspot-state"
"""Relative to the working directory, as Prometheus keeps data/."""


def parse_state_dir(text: str) -> Path | None:
    text = str(text)  # a TOML value may be any type
    if text.strip().lower() == STATE_NONE:
        return None
    if not text.strip():
        raise ValueError(f"state_dir must be a directory or {STATE_NONE}")
    return Path(text)


@dataclass(frozen=True)
class Settings:
    listen: str = "127.0.0.1:50051"
    policy: PermitPolicy = field(default_factory=PermitPolicy)
    grace: float = 5.0
    backend: str = "memory://"
    log_format: str = "text"
    log_level: str = "info"
    http: str | None = None
    """HOST:PORT of /health/hot-spots, /metrics and /dashboard; None: no HTTP side."""
    metrics_max_fixtures: int = 1000
    """Fixtures that carry their own series in /metrics: the hottest ones."""
    stats_max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS
    """WatchStats and SSE streams open at once, on the whole server."""
    stats_max_subscribers_per_caller: int = DEFAULT_MAX_SUBSCRIBERS_PER_CALLER
    stats_max_fixture_ids: int = MAX_FIXTURE_IDS
    """Fixtures one stats view (Stats, WatchStats, the HTTP endpoints) may name."""
    alert_webhook: str | None = None
    """URL that every alert raised or cleared is POSTed to."""
    alert_webhook_secret_file: WebhookSecret | None = None
    """The key that signs each webhook POST; None: unsigned."""
    state_dir: Path | None = None
    """Where the embedded default keeps its durable state; None: nothing is kept."""
    fsync_interval: float = 1.0
    """Seconds between fsyncs of the state store (0: every batch)."""
    tls_cert: Path | None = None
    """The server's certificate chain (PEM), for gRPC and HTTP; reloaded when it changes."""
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    """CA certificates (PEM) that sign client certificates; gRPC then requires one."""
    auth_tokens: Path | None = None
    """The callers file: names, roles and token hashes; None: the server runs open."""
    insecure: bool = False
    """Serve a non-loopback address without caller identity (or tokens without TLS)."""

    def __post_init__(self) -> None:
        self.stats_caps()  # a bad cap is a bad setting, reported as one

    def stats_caps(self) -> StatsCaps:
        return StatsCaps(
            self.stats_max_subscribers,
            self.stats_max_subscribers_per_caller,
            self.stats_max_fixture_ids,
        )


# Each setting: its key (flag --key with dashes, TOML key with underscores), how to parse it,
# and whether it belongs to the PermitPolicy.
_KEYS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "listen": (str, "gRPC address to listen on, HOST:PORT (default 127.0.0.1:50051)"),
    "limit": (int, "grants per sliding window per fixture (default 50)"),
    "window": (parse_duration, "sliding window length (default 60s)"),
    "queue": (int, "waiters per fixture once the window is full (default 100)"),
    "alert_ratio": (float, "a fixture is hot at this share of its limit (default 0.8)"),
    "lease": (
        parse_duration,
        "a permit not released by then is abandoned; its slot stays taken until lease end + "
        "window (default 15s)",
    ),
    "max_wait": (parse_duration, "longest wait in a queue for any request (default 5m)"),
    "max_fixtures": (int, "fixtures tracked at once (default 100000)"),
    "max_fixtures_per_caller": (
        int,
        "fixtures one caller may have brought in and still tracked (default 20000)",
    ),
    "max_waiters_per_caller": (
        int,
        "requests one caller may have waiting in queues at once (default 2000)",
    ),
    "max_upstream_pause": (
        parse_duration,
        "longest pause one upstream 429 puts on a fixture (default: one window)",
    ),
    "grace": (parse_duration, "time allowed for a clean shutdown (default 5s)"),
    "backend": (str, "state backend URL (default memory://)"),
    "log_format": (str, "text or json (default text)"),
    "log_level": (parse_log_level, f"{', '.join(LOG_LEVELS)} (default info)"),
    "http": (parse_http, f"HTTP address, HOST:PORT or {HTTP_OFF} (default {DEFAULT_HTTP})"),
    "metrics_max_fixtures": (int, "hottest fixtures with their own /metrics series (default 1000)"),
    "stats_max_subscribers": (
        int,
        f"WatchStats and SSE streams open at once (default {DEFAULT_MAX_SUBSCRIBERS}); "
        "more are RESOURCE_EXHAUSTED (HTTP 429)",
    ),
    "stats_max_subscribers_per_caller": (
        int,
        "streams one caller (or, on an open server, one address) may hold at once "
        f"(default {DEFAULT_MAX_SUBSCRIBERS_PER_CALLER})",
    ),
    "stats_max_fixture_ids": (
        int,
        f"fixtures one stats view may name, 1 to {MAX_FIXTURE_IDS} (default {MAX_FIXTURE_IDS}); "
        "more are INVALID_ARGUMENT",
    ),
    "alert_webhook": (parse_webhook_url, "URL to POST each alert raised or cleared to"),
    "alert_webhook_secret_file": (
        read_webhook_secret,
        "file holding the key (16 bytes or more) of each webhook POST's HMAC-SHA256 signature; "
        "read again on SIGHUP",
    ),
    "state_dir": (
        parse_state_dir,
        f"directory of the durable state (windows survive a crash), or {STATE_NONE} "
        f"(default {DEFAULT_STATE_DIR})",
    ),
    "fsync_interval": (
        parse_duration,
        "fsync the state store this often; a machine crash loses at most this (default 1s; "
        "0: every batch)",
    ),
    "tls_cert": (parse_file, "server certificate chain (PEM) for gRPC and HTTP; TLS when set"),
    "tls_key": (parse_file, "private key (PEM) of --tls-cert"),
    "tls_client_ca": (
        parse_file,
        "CA certificates (PEM) of client certificates: gRPC requires one (mTLS), its CN names "
        "the caller",
    ),
    "auth_tokens": (
        parse_file,
        "callers file (TOML): each caller's roles and sha256 token hashes; reloaded on change",
    ),
    "insecure": (
        parse_switch,
        "allow a non-loopback address without --auth-tokens, or tokens without TLS",
    ),
}
_SWITCHES = frozenset({"insecure"})
"""Keys that are a bare flag (--insecure), true or false elsewhere."""
# Defaults of the command line (and config file) that differ from an embedded Settings().
_COMMAND_LINE_DEFAULTS: dict[str, str] = {"http": DEFAULT_HTTP, "state_dir": DEFAULT_STATE_DIR}
_POLICY_KEYS = {f.name for f in fields(PermitPolicy)}
LIVE_KEYS = frozenset({"log_level", "alert_ratio", "alert_webhook", "alert_webhook_secret_file"})
"""What SIGHUP changes in a running server; any other key takes a restart."""
ENV_PREFIX = "HOTSPOT_"
CONFIG_HELP = "TOML file with the same keys as the flags; SIGHUP reloads it"


def env_var(key: str) -> str:
    """The environment variable of a setting (alert_ratio: HOTSPOT_ALERT_RATIO)."""
    return ENV_PREFIX + key.upper()


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


class _OneLineErrors(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, whole in any log collector; --help has the usage.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(
        prog="hotspot-server",
        # Raw: --version stays one line, however narrow the terminal.
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Rate-permit service: exact per-fixture sliding windows with FIFO queues.\n"
        f"Every flag can also be set as {ENV_PREFIX}<FLAG> (e.g. {env_var('alert_ratio')});\n"
        "flags win over the environment, the environment over --config.",
    )
    parser.add_argument("--version", action="version", version=version_line("hotspot-server"))
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    for key, (_, help_text) in _KEYS.items():
        if key in _SWITCHES:
            parser.add_argument(
                flag(key), dest=key, action="store_const", const="true", help=help_text
            )
        else:
            parser.add_argument(flag(key), dest=key, help=help_text)
    return parser


@dataclass(frozen=True)
class SettingsSource:
    """Where the settings come from; resolve() reads the config file anew (SIGHUP reloads)."""

    flags: dict[str, Any]
    environ: Mapping[str, str]
    config: Path | None

    def resolve(self) -> Settings:
        """Raises SettingsError, or OSError when the config file cannot be read."""
        config = _read_config(self.config) if self.config is not None else {}
        try:
            return settings_from(config, self.flags, self.environ, str(self.config))
        except SettingsError:
            raise
        except ValueError as error:  # a rule of PermitPolicy or Settings
            raise SettingsError(str(error)) from None


def command_line(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, SettingsSource]:
    """hotspot-server's settings and their source. A bad setting exits 2, an unreadable
    config file 1, each with one line on stderr."""
    parser = build_parser()
    environ = os.environ if environ is None else environ
    args = parser.parse_args(argv)
    config = args.config or environ.get(env_var("config"))
    source = SettingsSource(vars(args), environ, Path(config) if config else None)
    try:
        return source.resolve(), source
    except SettingsError as error:
        parser.error(str(error))
    except OSError as error:
        parser.exit(1, f"{parser.prog}: cannot read the config file: {error}\n")


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    return command_line(argv, environ)[0]


def setting_values(settings: Settings) -> dict[str, Any]:
    """Each key's value in `settings`: what a reload compares."""
    return {
        key: getattr(settings.policy if key in _POLICY_KEYS else settings, key) for key in _KEYS
    }


def settings_table() -> str:
    """The README's table of every setting, in its three spellings."""
    rows = [
        "| flag | environment | TOML key | SIGHUP | |",
        "| --- | --- | --- | --- | --- |",
        f"| `--config FILE` | `{env_var('config')}` | | | {CONFIG_HELP} |",
    ]
    for key, (_, help_text) in _KEYS.items():
        live = "live" if key in LIVE_KEYS else ""
        rows.append(f"| `{flag(key)}` | `{env_var(key)}` | `{key}` | {live} | {help_text} |")
    return "\n".join(rows) + "\n"


def _read_config(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(f"{path}: not valid TOML: {error}") from None
    config = {k.replace("-", "_"): v for k, v in raw.items()}
    unknown = sorted(set(config) - set(_KEYS))
    if unknown:
        raise SettingsError(f"{path}: unknown keys {unknown}; known keys: {sorted(_KEYS)}")
    return config


def settings_from(
    config: dict[str, Any],
    flags: dict[str, Any],
    environ: Mapping[str, str] | None = None,
    config_name: str = "config",
) -> Settings:
    values: dict[str, Any] = {}
    environ = environ or {}
    for key, (parse, _) in _KEYS.items():
        # The first layer that sets the key wins; an error names the layer it came from.
        layers = ((flags, key, flag(key)), (environ, env_var(key), env_var(key)))
        raw, origin = next(
            ((layer[name], origin) for layer, name, origin in layers if layer.get(name)),
            (config.get(key, _COMMAND_LINE_DEFAULTS.get(key)), config_name),
        )
        if raw is None:
            continue
        try:
            values[key] = parse(raw)
        except ValueError as error:
            raise SettingsError(f"{key}: {error} (from {origin})") from None
    policy = PermitPolicy(**{k: v for k, v in values.items() if k in _POLICY_KEYS})
    rest = {k: v for k, v in values.items() if k not in _POLICY_KEYS}
    parse_address(rest.get("listen", Settings.listen))
    if rest.get("fsync_interval", 0.0) < 0:
        raise ValueError(f"fsync_interval must not be negative, got {rest['fsync_interval']}s")
    if rest.get("grace", 0.0) < 0:
        raise ValueError(f"grace must not be negative, got {rest['grace']}s")
    if rest.get("log_format", "text") not in ("text", "json"):
        raise ValueError(f"log_format must be text or json, got {rest['log_format']!r}")
    if rest.get("metrics_max_fixtures", 0) < 0:
        raise ValueError(
            f"metrics_max_fixtures must be 0 or more, got {rest['metrics_max_fixtures']}"
        )
    settings = Settings(policy=policy, **rest)
    check_security(settings)
    return settings


def check_security(settings: Settings) -> None:
    """TLS files that go together, and no open door on the network unless asked for."""
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ValueError("tls_cert and tls_key go together: give both or neither")
    if settings.tls_client_ca is not None and settings.tls_cert is None:
        raise ValueError("tls_client_ca needs tls_cert and tls_key: client certificates need TLS")
    if settings.tls_client_ca is not None and settings.auth_tokens is None:
        raise ValueError(
            "tls_client_ca names callers by their certificates; auth_tokens (the callers file) "
            "grants their roles: give both"
        )
    if settings.insecure:
        return
    exposed = [
        a for a in (settings.listen, settings.http) if a and not is_loopback(parse_address(a)[0])
    ]
    if exposed and settings.auth_tokens is None:
        raise ValueError(
            f"{' and '.join(exposed)} can be reached from other machines and no caller has to "
            "say who it is: give auth_tokens (and tls_cert, tls_key), or insecure to serve anyone"
        )
    if exposed and settings.tls_cert is None:
        raise ValueError(
            f"bearer tokens would reach {' and '.join(exposed)} in clear text: give tls_cert "
            "and tls_key, or insecure"
        )
