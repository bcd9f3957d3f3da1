"""The embedded default's durable state: a locked state dir holding a journal."""

from __future__ import annotations

import logging
from pathlib import Path

from hotspot_server.store.journal_store import DEFAULT_FSYNC_INTERVAL, JournalStore
from hotspot_server.store.state_dir import StateDir, StateDirLocked

__all__ = ["DEFAULT_FSYNC_INTERVAL", "JournalStore", "StateDirLocked", "open_state_store"]

logger = logging.getLogger("hotspot.store")


def open_state_store(path: Path, fsync_interval: float = DEFAULT_FSYNC_INTERVAL) -> JournalStore:
    """Lock `path` and open its store, recovering what it can.

    Raises StateDirLocked when another server holds it. Anything else wrong with
    the store is reported in one warning and never stops the start: a store that
    cannot be read is set aside, one that cannot be written refuses grants.
    """
    state_dir = StateDir(path)
    state_dir.acquire()
    try:
        store = JournalStore(state_dir, fsync_interval)
    except BaseException:
        state_dir.release()
        raise
    if store.dropped:
        logger.warning(
            "state store %s: dropped %s",
            store.path,
            "; ".join(store.dropped),
            extra={"event": "store_dropped", "dropped": store.dropped},
        )
    if store.unwritable_because is not None:
        logger.error(
            "state store %s cannot be written (%s): every grant is refused with UNAVAILABLE "
            "until it can",
            store.path,
            store.unwritable_because,
            extra={"event": "store_unwritable", "reason": store.unwritable_because},
        )
    return store
