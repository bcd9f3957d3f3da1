"""LogSummary on virtual time (looptime): a line per key and period, then one count."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hotspot_core.clock import LoopClock
from hotspot_core.log_summary import LogSummary
from hotspot_core.memory import MemoryBackend
from hotspot_core.policy import PermitPolicy
from hotspot_core.stats import StatsView

pytestmark = pytest.mark.looptime

logger = logging.getLogger("hotspot.test_summary")


class Lines:
    """What `logger` has logged in the test so far."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog

    @property
    def records(self) -> list[logging.LogRecord]:
        return [r for r in self._caplog.records if r.name == logger.name]

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Lines:
    caplog.set_level(logging.WARNING, logger.name)
    return Lines(caplog)


def summary(**kw: int) -> LogSummary:
    return LogSummary(
        LoopClock(), logger, what="things", key_name="fixture_id", event="things", **kw
    )


async def test_the_first_event_of_a_key_is_logged_the_rest_counted_at_the_period_end(
    lines: Lines,
) -> None:
    s = summary()
    assert s.first("a") is True
    assert [s.first("a") for _ in range(49)] == [False] * 49
    assert s.first("b") is True
    await asyncio.sleep(59.9)
    assert lines.messages() == []  # nothing before the period ends
    await asyncio.sleep(0.2)
    assert lines.messages() == ["49 more things on fixture_id=a in the last 60s"]
    [record] = lines.records
    fields = (record.event, record.fixture_id, record.count)  # type: ignore[attr-defined]
    assert fields == ("things", "a", 49)


async def test_a_new_period_logs_the_first_event_again() -> None:
    s = summary()
    assert s.first("a")
    assert not s.first("a")
    await asyncio.sleep(61)
    assert s.first("a")


async def test_keys_past_the_bound_are_counted_in_one_line(
    lines: Lines,
) -> None:
    s = summary(max_keys=3)
    firsts = [s.first(f"f{i}") for i in range(1000) for _ in range(2)]
    assert firsts.count(True) == 3  # a flood over many keys logs the first 3 keys only
    await asyncio.sleep(60)
    messages = lines.messages()
    assert messages[:3] == [f"1 more things on fixture_id=f{i} in the last 60s" for i in range(3)]
    assert messages[3:] == [
        "1994 things on other fixture_id values (past the first 3) in the last 60s"
    ]


async def test_flush_tells_the_counts_at_once_and_cancels_the_timer(
    lines: Lines,
) -> None:
    s = summary()
    s.first("a")
    s.first("a")
    s.flush()
    assert len(lines.messages()) == 1
    await asyncio.sleep(120)
    assert len(lines.messages()) == 1  # the period's timer was cancelled: no second, empty summary


async def test_many_abandoned_permits_on_a_few_fixtures_are_a_few_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "hotspot.permits")
    backend = MemoryBackend(PermitPolicy(limit=1000, lease=1.0, window=10.0))
    for fixture_id in ("f1", "f2", "f3"):
        for _ in range(300):
            await backend.acquire(fixture_id, client_id="crashy")
    await asyncio.sleep(2)  # every lease has ended
    assert (await backend.stats(StatsView())).totals.abandoned_total == 900
    await asyncio.sleep(60)
    messages = [r.getMessage() for r in caplog.records if r.name == "hotspot.permits"]
    abandoned = [m for m in messages if m.startswith("permit abandoned")]
    summaries = [m for m in messages if "more permits abandoned" in m]
    assert len(abandoned) == 3
    assert sorted(summaries) == [
        f"299 more permits abandoned on fixture_id={f} in the last 60s" for f in ("f1", "f2", "f3")
    ]
    await backend.close()
