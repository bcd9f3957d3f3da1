"""Log set-up: readable lines, or one JSON object per line for log pipelines."""

from __future__ import annotations

import json
import logging
import re
import sys

# Attributes every LogRecord has; anything else was passed in `extra=` and is a structured field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# What could end a line or disguise one in a terminal: C0 and C1 controls (newline, carriage
# return, escape), DEL, the Unicode line and paragraph separators, and the invisible format
# characters (bidirectional overrides, zero-width spaces).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def _escape_char(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]  # none of them is printable, so repr escapes each: \n, \x1b


def escape_controls(text: str) -> str:
    """`text` on one line and unable to pass for another: each control character as its
    Python escape (a newline becomes the two characters \\n)."""
    return _UNSAFE.sub(_escape_char, text)


class TextFormatter(logging.Formatter):
    """One line per record, whatever its arguments hold; a traceback follows on indented lines.

    Callers choose fixture ids, client ids and permit ids: escaping the whole line, not only
    the arguments, also covers a caller's text inside an exception or any other object.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = escape_controls(self.formatMessage(record))
        exception = self.formatException(record.exc_info) if record.exc_info else record.exc_text
        for more in (exception, record.stack_info and self.formatStack(record.stack_info)):
            if more:
                line += "\n" + _indented(more)
        return line


def _indented(text: str) -> str:
    """Continuation lines start with spaces, so none can pass for a record's first line."""
    return "\n".join("    " + escape_controls(line) for line in text.splitlines())


def set_log_level(level: str) -> None:
    """`debug`, `info`, `warning` or `error`, for every logger; SIGHUP changes it live."""
    logging.getLogger().setLevel(level.upper())


def configure_logging(log_format: str = "text", level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_log_level(level)
