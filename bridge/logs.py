"""Logging for the bridge: text or JSON lines, one per request, never forgeable.

Nothing in the bridge logs a secret value, a token or a signature in the first place.
Text that came from a request or from GitHub can hold control characters; every text
line escapes them, so nobody can start a forged line of their own, and every message is
cut at ``MAX_MESSAGE`` characters, so a long answer cannot flood the log.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from bridge.config.model import LoggingConfig
from bridge.text import printable

_TEXT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
_QUIET = ("/healthz", "/readyz", "/metrics")
MAX_MESSAGE = 8000  # characters of one log message, after escaping


def _bounded(message: str) -> str:
    """A JSON line's message (JSON escapes the rest), cut to ``MAX_MESSAGE``."""
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE} more characters)"


class TextFormatter(logging.Formatter):
    """One physical line per record: the message escaped, a traceback indented."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message, MAX_MESSAGE)
        return super().formatMessage(record)

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        lines = super().formatException(ei).splitlines()
        return "\n".join("    | " + printable(line) for line in lines)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": _bounded(record.getMessage()),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(cfg: LoggingConfig | None = None) -> None:
    """Send the bridge's logs to stderr, as text or JSON lines."""
    cfg = cfg or LoggingConfig()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if cfg.format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(cfg.level)
    for noisy in ("urllib3", "github"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def log_request(
    logger: logging.Logger,
    method: str,
    path: str,
    status: int,
    fields: dict[str, str],
    error: str | None,
    ms: float,
) -> None:
    """The one line per request, with the ids it produced; health checks only at DEBUG."""
    level = logging.DEBUG if path in _QUIET else logging.INFO
    extra = "".join(f" {k}={v}" for k, v in fields.items() if v not in (None, ""))
    logger.log(
        level,
        "request %s %s status=%d%s%s ms=%.1f",
        printable(method),
        printable(path),
        status,
        extra,
        f" error={error}" if error else "",
        ms,
    )
