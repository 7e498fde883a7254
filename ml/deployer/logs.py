"""One JSON object per log line, so CloudWatch Logs Insights can filter on fields."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Final

LOGGER_NAME: Final = "ml.deployer"
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            document["error"] = self.formatException(record.exc_info)
        return json.dumps(document, sort_keys=True, default=str)


class _StdoutHandler(logging.Handler):
    """Writes to whatever sys.stdout is at the time (the Lambda runtime and pytest swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # logging must never break a deployment
            self.handleError(record)


def deployer_logger() -> logging.Logger:
    """The deployer's logger, writing JSON lines to stdout (configured once, on first use)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        # The Lambda runtime's root handler would print every line a second time, as text.
        logger.propagate = False
    return logger
