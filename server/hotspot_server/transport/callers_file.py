"""The callers file (--auth-tokens): each caller's name, roles and hashed bearer tokens.

    [callers.odds-api]
    roles = ["acquire", "report-upstream"]
    token_sha256 = "<sha256 hex of the token>"     # or a list of them, while rotating

    [callers.warmer-1]          # an mTLS client whose certificate's CN is warmer-1: no token
    roles = ["acquire"]

Only hashes are stored: a leaked file names no usable token. Tokens must be random (e.g.
`secrets.token_urlsafe(32)`), so one unsalted SHA-256 is enough; a password would need a
slow KDF. The file is read again when it changes (checked at most once a second, and on
SIGHUP); one that no longer parses keeps the callers that were read last.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotspot_server.transport.caller import ROLES, Caller

logger = logging.getLogger("hotspot.auth")

REFRESH_INTERVAL = 1.0
"""Seconds between checks of the file's modification time, made on use."""
CALLER_NAME = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
"""Caller names become client ids in stats and logs: the same rule, nothing to escape."""
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def token_hash(token: str) -> str:
    """What the callers file stores for a token: its SHA-256 in lowercase hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _TokenEntry:
    digest: bytes
    caller: Caller


def _file_signature(path: Path) -> tuple[int, int, int]:
    status = os.stat(path)
    return status.st_mtime_ns, status.st_size, status.st_ino


def parse_callers(text: str, origin: str) -> tuple[dict[str, Caller], list[_TokenEntry]]:
    """The callers and token entries of a callers file; ValueError names what is wrong."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{origin}: not valid TOML: {error}") from None
    unknown = sorted(set(raw) - {"callers"})
    table = raw.get("callers", {})
    if unknown or not isinstance(table, dict):
        raise ValueError(f"{origin}: only a [callers.NAME] table per caller is allowed")
    callers: dict[str, Caller] = {}
    tokens: list[_TokenEntry] = []
    seen: set[str] = set()
    for name, entry in table.items():
        where = f"{origin}: callers.{name}"
        if not CALLER_NAME.fullmatch(name):
            raise ValueError(f"{where}: a name is 1 to 128 characters of [A-Za-z0-9._:@-]")
        if not isinstance(entry, dict) or set(entry) - {"roles", "token_sha256"}:
            raise ValueError(f"{where}: takes roles = [...] and token_sha256 only")
        roles = entry.get("roles", [])
        bad = [r for r in roles if r not in ROLES] if isinstance(roles, list) else [roles]
        if bad:
            raise ValueError(f"{where}: unknown roles {bad}; roles are {', '.join(ROLES)}")
        caller = callers[name] = Caller(name, frozenset(roles))
        for digest in _token_hashes(entry.get("token_sha256", []), where):
            if digest in seen:
                raise ValueError(f"{where}: token_sha256 {digest[:12]}... is given twice")
            seen.add(digest)
            tokens.append(_TokenEntry(bytes.fromhex(digest), caller))
    return callers, tokens


def _token_hashes(value: Any, where: str) -> list[str]:
    hashes = [value] if isinstance(value, str) else value
    if not isinstance(hashes, list) or not all(
        isinstance(h, str) and SHA256_HEX.fullmatch(h) for h in hashes
    ):
        raise ValueError(f"{where}: token_sha256 is a sha256 hex digest (64 of 0-9a-f) or a list")
    return hashes


class CallersFile:
    """Callers by token or by certificate name, from a file read again when it changes."""

    def __init__(self, path: Path) -> None:
        """Raises ValueError for a file that does not parse, OSError for one not readable."""
        self.path = path
        self._signature = _file_signature(path)
        self._callers, self._tokens = parse_callers(path.read_text(), str(path))
        self._checked_at = time.monotonic()

    def by_token(self, token: str) -> Caller | None:
        self._refresh_now_and_then()
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        # Every entry is compared, whatever matched: the time taken does not depend on which.
        for entry in self._tokens:
            if hmac.compare_digest(entry.digest, digest):
                found = entry.caller
        return found

    def by_certificate(self, common_name: str) -> Caller:
        """A client the TLS layer verified: the file's roles for its name, else none."""
        self._refresh_now_and_then()
        return self._callers.get(common_name) or Caller(common_name, frozenset())

    def _refresh_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._checked_at >= REFRESH_INTERVAL:
            self._checked_at = now
            self.reload()

    def reload(self) -> bool:
        """Read the file again if it changed (SIGHUP calls this). True if new callers apply."""
        try:
            signature = _file_signature(self.path)
            if signature == self._signature:
                return False
            self._signature = signature  # a broken file is reported once, not on every call
            callers, tokens = parse_callers(self.path.read_text(), str(self.path))
        except (OSError, ValueError) as error:
            logger.error(
                "callers file not reloaded, the callers read last still apply: %s",
                error,
                extra={"event": "auth_reload_failed"},
            )
            return False
        self._callers, self._tokens = callers, tokens
        logger.info(
            "callers file reloaded: %d callers, %d tokens",
            len(callers),
            len(tokens),
            extra={"event": "auth_reloaded", "callers": len(callers)},
        )
        return True
