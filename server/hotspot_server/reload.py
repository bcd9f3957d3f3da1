"""SIGHUP: read the settings anew, apply what can change live, and name what was kept."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from hotspot_server.settings import LIVE_KEYS, Settings, setting_values

logger = logging.getLogger("hotspot.server")


@runtime_checkable
class AlertRatioTunable(Protocol):
    """A backend that can move its alert thresholds (raise_at, clear_below) while serving."""

    def set_alert_ratio(self, alert_ratio: float) -> None: ...


class LiveServer(Protocol):
    """What a reload needs of PermitServer (which imports this module)."""

    @property
    def settings(self) -> Settings: ...

    async def apply_live(self, new: Settings) -> list[str]: ...


async def reload_settings(server: LiveServer, read: Callable[[], Settings]) -> None:
    """One log line for what changed live, one warning for what was kept until a restart."""
    try:
        new = read()
    except (ValueError, OSError) as error:
        logger.error(
            "SIGHUP: settings not reloaded, all kept as they were: %s",
            error,
            extra={"event": "reload_failed"},
        )
        return
    old_values, new_values = setting_values(server.settings), setting_values(new)
    changed = [key for key in new_values if new_values[key] != old_values[key]]
    not_applied = await server.apply_live(new)
    applied = [key for key in changed if key in LIVE_KEYS and key not in not_applied]
    kept = [key for key in changed if key not in applied]
    logger.info(
        "SIGHUP: settings reloaded; changed live: %s",
        ", ".join(f"{k} {old_values[k]} -> {new_values[k]}" for k in applied) or "nothing",
        extra={"event": "reloaded", "applied": applied},
    )
    if kept:
        logger.warning(
            "SIGHUP: kept %s as they were (%s); %s",
            ", ".join(kept),
            ", ".join(f"{k} stays {old_values[k]}, asked {new_values[k]}" for k in kept),
            "a restart changes them"
            if not not_applied
            else f"this backend cannot change {', '.join(not_applied)} live; a restart does",
            extra={"event": "reload_kept", "kept": kept},
        )
