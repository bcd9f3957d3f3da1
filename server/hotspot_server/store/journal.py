"""The journal's file format: checksummed records, each one fixture's whole state or its end.

A file starts with a header (magic, format). Then records, each framed as
`<u32 length><u32 crc32 of the payload><payload>`. Payload kinds:

- CLOCK: the clock_id of the records that follow (one per writer, at most a few per file);
- STATE: a fixture's record (FixtureRecord, without the clock id);
- GONE: a fixture forgotten (idle): any earlier record of it is dead.

The last record of a fixture wins, so replaying files in order gives the live state. A record
that is cut short or fails its checksum ends the file: what follows is dropped, and said.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from hotspot_core.persistence import FixtureRecord

MAGIC = b"HSPTJRNL"
FORMAT = 1
HEADER = MAGIC + struct.pack("<H", FORMAT)
_FRAME = struct.Struct("<II")
_STATE = struct.Struct("<dddQQQHH")  # offset, lease, paused, calls, rejected, abandoned, counts
CLOCK, STATE, GONE = 1, 2, 3
_BIG_ENDIAN = sys.byteorder == "big"  # times are little-endian doubles on every machine


class JournalError(ValueError):
    """A file that is not a journal this server can read."""


def _frame(payload: bytes) -> bytes:
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _name(kind: int, text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<BH", kind, len(raw)) + raw


def _doubles(values: array[float]) -> bytes:
    if _BIG_ENDIAN:
        values = array("d", values)
        values.byteswap()
    return values.tobytes()


def clock_record(clock_id: str) -> bytes:
    return _frame(_name(CLOCK, clock_id))


def gone_record(fixture_id: str) -> bytes:
    return _frame(_name(GONE, fixture_id))


def state_record(record: FixtureRecord) -> bytes:
    held, released = record.held, record.released
    return _frame(
        _name(STATE, record.fixture_id)
        + _STATE.pack(
            record.clock_offset,
            record.lease,
            record.paused_until,
            record.calls_total,
            record.rejected_total,
            record.abandoned_total,
            len(held),
            len(released),
        )
        + _doubles(held)
        + _doubles(released)
    )


@dataclass
class Replay:
    """The live state a sequence of journal files describes, and what could not be read."""

    states: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """fixture_id -> (clock_id, STATE payload), the last record of each live fixture."""
    dropped: list[str] = field(default_factory=list)

    def read(self, name: str, data: bytes) -> None:
        """Apply one file's records."""
        if not data.startswith(MAGIC):
            raise JournalError(f"{name} is not a hotspot journal")
        (version,) = struct.unpack_from("<H", data, len(MAGIC))
        if version != FORMAT:
            raise JournalError(f"{name} is of format {version}; this server reads {FORMAT}")
        offset, clock_id = len(HEADER), ""
        states = self.states
        while offset < len(data):
            if offset + _FRAME.size > len(data):
                break
            length, crc = _FRAME.unpack_from(data, offset)
            payload = data[offset + _FRAME.size : offset + _FRAME.size + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            offset += _FRAME.size + length
            kind, size = struct.unpack_from("<BH", payload)
            text = payload[3 : 3 + size].decode(errors="replace")
            if kind == STATE:
                states[text] = (clock_id, payload)
            elif kind == GONE:
                states.pop(text, None)
            elif kind == CLOCK:
                clock_id = text
        if offset < len(data):
            self.dropped.append(f"the last {len(data) - offset} bytes of {name} (a torn write)")

    def records(self) -> tuple[list[FixtureRecord], int]:
        """The live records, and how many stored ones could not be decoded."""
        records: list[FixtureRecord] = []
        bad = 0
        for fixture_id, (clock_id, payload) in self.states.items():
            try:
                records.append(decode_state(fixture_id, clock_id, payload))
            except (struct.error, ValueError):
                bad += 1
        return records, bad


def decode_state(fixture_id: str, clock_id: str, payload: bytes) -> FixtureRecord:
    start = 3 + struct.unpack_from("<H", payload, 1)[0]
    offset, lease, paused, calls, rejected, abandoned, n_held, n_released = _STATE.unpack_from(
        payload, start
    )
    start += _STATE.size
    end = start + 8 * (n_held + n_released)
    if end != len(payload):
        raise ValueError("a state record of the wrong length")
    held = array("d", payload[start : start + 8 * n_held])
    released = array("d", payload[start + 8 * n_held : end])
    if _BIG_ENDIAN:
        held.byteswap()
        released.byteswap()
    # One sum in C rather than a test per value: an infinity or a NaN anywhere makes it non-finite.
    if not math.isfinite(sum(held) + sum(released) + offset + lease):
        raise ValueError("a time that is not a finite number")
    return FixtureRecord(
        fixture_id, clock_id, offset, held, released, lease, paused, calls, rejected, abandoned
    )


def snapshot_bytes(states: dict[str, tuple[str, bytes]]) -> Iterator[bytes]:
    """A compacted file: the header, then each live fixture's last record under its clock."""
    yield HEADER
    by_clock: dict[str, list[bytes]] = {}
    for clock_id, payload in states.values():
        by_clock.setdefault(clock_id, []).append(payload)
    for clock_id, payloads in by_clock.items():
        yield clock_record(clock_id)
        yield b"".join(_frame(p) for p in payloads)


def batch_bytes(
    clock_id: str | None, changed: Iterable[FixtureRecord], forgotten: Iterable[str]
) -> tuple[bytes, str | None]:
    """One write: a CLOCK record where the clock changes, then the records."""
    parts: list[bytes] = []
    for record in changed:
        if record.clock_id != clock_id:
            clock_id = record.clock_id
            parts.append(clock_record(clock_id))
        parts.append(state_record(record))
    parts.extend(gone_record(f) for f in forgotten)
    return b"".join(parts), clock_id
