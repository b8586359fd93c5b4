"""Logging for the bridge: text or JSON lines, one per request, never forgeable.

A log call names its values as fields, ``log.info("run found", extra=fields(run=7))``:
a text line shows them after the message as ``key=value``, a JSON line as keys of its
own, so a machine reads them without parsing the message. Values that came from a
request or from GitHub go in fields, never in the message.

Nothing in the bridge logs a secret value, a token or a signature in the first place.
Text that came from a request or from GitHub can hold control characters; every text
line escapes them, so nobody can start a forged line of their own, and quotes a value
with a space, a quote or an ``=``, so nobody can add a field of their own. Every
message is cut at ``MAX_MESSAGE`` characters and every field at ``MAX_FIELD``, so a
long answer cannot flood the log.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Mapping

from bridge.config.model import LoggingConfig
from bridge.text import printable

_TEXT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
_QUIET = ("/healthz", "/readyz", "/metrics")
_FIELDS = "bridge_fields"  # the record attribute ``fields()`` fills
# a JSON line's own keys; a field of one of these names goes under "fields" instead
_OWN_KEYS = frozenset({"time", "level", "logger", "pid", "message", "exception", "fields"})
MAX_MESSAGE = 8000  # characters of one log message, after escaping
MAX_FIELD = 1000  # characters of one field's value, after escaping


def fields(**values: object) -> dict[str, object]:
    """The ``extra`` of a log call with these fields. Numbers and booleans stay numbers
    and booleans in JSON, anything else is written as text, and ``None`` is left out."""
    return {_FIELDS: values}


def fields_of(record: logging.LogRecord) -> dict[str, object]:
    """The fields a log call gave (``None`` left out), in the order it gave them."""
    given: Mapping[str, object] = getattr(record, _FIELDS, None) or {}
    return {k: v for k, v in given.items() if v is not None}


def _bounded(text: str, limit: int = MAX_MESSAGE) -> str:
    """Text for a JSON line (JSON escapes the rest), cut to ``limit`` characters."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _json_value(value: object) -> object:
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return _bounded(str(value), MAX_FIELD)


def _text_value(value: object) -> str:
    """``value`` as a text line shows it: escaped, cut, and quoted (``"`` and ``\\``
    escaped) when it is empty or holds a space, a quote or an ``=``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    shown = printable(value if isinstance(value, str) else str(value), MAX_FIELD)
    if shown and " " not in shown and '"' not in shown and "=" not in shown:
        return shown
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'


class TextFormatter(logging.Formatter):
    """One physical line per record: the message escaped, then `` key=value`` for each
    field, a traceback indented."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        shown = [printable(record.message, MAX_MESSAGE)]
        shown.extend(f"{k}={_text_value(v)}" for k, v in fields_of(record).items())
        record.message = " ".join(shown)
        return super().formatMessage(record)

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        lines = super().formatException(ei).splitlines()
        return "\n".join("    | " + printable(line) for line in lines)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: its own keys, then one key per field (a field named
    like one of its own keys goes under ``fields``)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": _bounded(record.getMessage()),
        }
        clashing: dict[str, object] = {}
        for key, value in fields_of(record).items():
            (clashing if key in _OWN_KEYS else line)[key] = _json_value(value)
        if clashing:
            line["fields"] = clashing
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
    found: Mapping[str, object],
    error: str | None,
    ms: float,
) -> None:
    """The one line per request, with the ids it produced (``found``); health checks only
    at DEBUG. The path is a field like the rest: whatever it holds, it stays one value."""
    level = logging.DEBUG if path in _QUIET else logging.INFO
    given = {"method": method, "path": path, "status": status, **found}
    given.update(error=error, ms=round(ms, 1))
    logger.log(level, "request", extra=fields(**given))
