"""StateDir: the directory a server keeps its state in, held by one server at a time."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

LOCK_FILE = "hotspot.lock"


class StateDirLocked(OSError):
    """Another live server holds the state dir: two would each think they own its windows."""


class StateDir:
    """A state dir and its lock (flock: released by the kernel when the holder dies, so a
    crashed server never leaves a stale lock behind)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None
        self.writable = True
        """False when the dir (or its file system) cannot be written: its state is still read."""

    def acquire(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and self.path.is_dir():
                self.writable = False  # nobody can write it, so no second writer either
                return
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateDirLocked(
                f"state dir {self.path} is in use by another hotspot-server (pid {holder}); "
                "give each server its own --state-dir"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is only for the message above; the lock is what counts
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None
