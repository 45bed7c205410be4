"""Structured JSON logs on stderr, one object per line, in pino's shape so the TypeScript services' logs and the
trainer's read alike: {"level": 30, "time": <epoch ms>, "pid", "hostname", "name": "trainer", "msg", ...fields}.
Both are proto/alignment/v1/formats.proto's LogLine (formats.py checks lines against it; docs/formats.md).

    log = get_logger()
    log.info("listening", extra={"fields": {"port": 50055}})
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys

SERVICE_NAME = "trainer"

# pino's numeric levels.
_PINO_LEVELS = {
    logging.DEBUG: 20,
    logging.INFO: 30,
    logging.WARNING: 40,
    logging.ERROR: 50,
    logging.CRITICAL: 60,
}


# The longest string a log line carries in a field (issue 12: a 1 MiB id was echoed into a 1 MiB line); the Node
# services' logger clips at the same length (libs/service-kit/src/logger.ts).
MAX_LOGGED_STRING = 4096


def clip(value: object, limit: int = MAX_LOGGED_STRING) -> object:
    """A string longer than `limit` cut there, saying how much was cut; anything else unchanged."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… ({len(value) - limit} more characters)"
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, name: str = SERVICE_NAME) -> None:
        super().__init__()
        self._static = {"pid": os.getpid(), "hostname": socket.gethostname(), "name": name}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "level": _PINO_LEVELS.get(record.levelno, record.levelno),
            "time": int(record.created * 1000),
            **self._static,
            "logger": record.name,
            "msg": clip(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry.setdefault(key, clip(value))
        if record.exc_info:
            entry["err"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure(level: str | None = None, stream=None) -> None:
    """Installs the JSON handler on the root logger (idempotent). level defaults to $LOG_LEVEL or info."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_alignment_json", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._alignment_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("LOG_LEVEL") or "info").upper())


def get_logger(name: str = "alignment_trainer") -> logging.Logger:
    return logging.getLogger(name)


__all__ = ["JsonFormatter", "configure", "get_logger", "SERVICE_NAME"]
