"""Hot-spot alerts: raised at alert_ratio * limit calls in the window, cleared 10 points lower."""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger("hotspot.alerts")


class AlertState(enum.Enum):
    RAISED = "raised"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class Alert:
    fixture_id: str
    state: AlertState
    calls_in_window: int
    threshold: int
    clear_below: int
    at: float
    """Unix seconds of the change."""


AlertListener = Callable[[Alert], None]


class AlertBoard:
    """The fixtures hot right now, and the listeners told of every change.

    Listeners are told after the call that changed the state, in a later loop step and
    in an empty context: fan-out to subscribers and webhooks is never part of the
    Acquire that raised an alert, nor done as its caller.
    """

    def __init__(self, *, threshold: int, clear_below: int) -> None:
        self.threshold = threshold
        self.clear_below = clear_below
        # Only when each alert was raised: a hot fixture should cost a few bytes, not an object.
        self._raised_at: dict[str, float] = {}
        self._listeners: list[AlertListener] = []
        self._outbox: list[Alert] = []
        self._context = contextvars.Context()

    def active(self, calls_in_window: Callable[[str], int]) -> list[Alert]:
        """The alerts raised and not cleared, with each fixture's current count."""
        return [
            Alert(
                fixture_id,
                AlertState.RAISED,
                calls_in_window(fixture_id),
                self.threshold,
                self.clear_below,
                at,
            )
            for fixture_id, at in self._raised_at.items()
        ]

    def subscribe(self, listener: AlertListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def restore(self, fixture_id: str, at: float) -> None:
        """A fixture found hot again after a restart: active, but neither logged nor announced
        a second time (its alert was raised before the restart)."""
        self._raised_at[fixture_id] = at

    def observe(self, fixture_id: str, calls_in_window: int, hot: bool, at: float) -> bool:
        """Note a fixture's count; returns whether it is hot now (with hysteresis)."""
        if not hot and calls_in_window >= self.threshold:
            self._change(fixture_id, AlertState.RAISED, calls_in_window, at)
            return True
        if hot and calls_in_window < self.clear_below:
            self._change(fixture_id, AlertState.CLEARED, calls_in_window, at)
            return False
        return hot

    def _change(self, fixture_id: str, state: AlertState, calls: int, at: float) -> None:
        alert = Alert(fixture_id, state, calls, self.threshold, self.clear_below, at)
        if state is AlertState.RAISED:
            self._raised_at[fixture_id] = at
        else:
            self._raised_at.pop(fixture_id, None)
        logger.warning(
            "hot spot %s: fixture_id=%s calls_in_window=%d threshold=%d clear_below=%d",
            state.value,
            fixture_id,
            calls,
            self.threshold,
            self.clear_below,
            extra={
                "event": f"alert_{state.value}",
                "fixture_id": fixture_id,
                "calls_in_window": calls,
                "threshold": self.threshold,
                "clear_below": self.clear_below,
            },
        )
        self._outbox.append(alert)
        if len(self._outbox) == 1:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop, so no permit path to keep it off
                self._deliver()
            else:
                loop.call_soon(self._deliver, context=self._context)

    def _deliver(self) -> None:
        alerts, self._outbox = self._outbox, []
        for alert in alerts:
            for listener in list(self._listeners):
                try:
                    listener(alert)
                except Exception:
                    logger.exception("alert listener failed")
