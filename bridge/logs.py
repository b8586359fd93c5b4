"""Logging set-up for the command line: text or JSON lines, never a secret.

Nothing in the bridge logs a secret value, a token or a signature in the first place;
this module only decides the shape of each line.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from bridge.config import LoggingConfig

_TEXT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(cfg: LoggingConfig | None = None) -> None:
    """Send the bridge's logs to stderr, as text or JSON lines."""
    cfg = cfg or LoggingConfig()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if cfg.format == "json" else logging.Formatter(_TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(cfg.level)
    for noisy in ("urllib3", "github"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


_QUIET = ("/healthz", "/readyz", "/metrics")


def log_request(
    logger: logging.Logger,
    method: str,
    path: str,
    status: int,
    fields: dict[str, str],
    error: str | None,
    started: float,
) -> None:
    """The one line per request, with the ids it produced; health checks only at DEBUG."""
    level = logging.DEBUG if path in _QUIET else logging.INFO
    if not logger.isEnabledFor(level):
        return
    ms = (time.perf_counter() - started) * 1000
    extra = "".join(f" {k}={v}" for k, v in fields.items() if v not in (None, ""))
    args = (method, path, status, extra, f" error={error}" if error else "", ms)
    # Made directly rather than through logger.log(), which walks the stack for the
    # caller's file and line on every request; no format of ours shows them.
    record = logger.makeRecord(
        logger.name, level, __file__, 0, "request %s %s status=%d%s%s ms=%.1f", args, None
    )
    logger.handle(record)
