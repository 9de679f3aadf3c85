"""Structured JSON-line logs with request id and stage, and quiet third-party loggers.

faust and aiokafka format a debug record of every message (payload included) unless
their loggers sit at INFO or above: besides leaking content into debug logs, that alone
took ~15% of a worker's CPU. They are pinned to WARNING here whatever the root level is.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

__all__ = ["NOISY_LOGGERS", "JsonFormatter", "configure_logging"]

NOISY_LOGGERS = ("faust", "aiokafka", "mode", "kafka", "venusian", "presidio-analyzer",
                 "httpx2", "httpcore2",
                 "presidio-anonymizer", "httpx", "httpcore", "openai", "urllib3", "tldextract")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields `request_id` and `stage` when present."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("request_id", "stage", "event"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception messages can quote request content.
            entry["exc_type"] = record.exc_info[0].__name__
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "WARNING") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet = max(logging.WARNING, logging.getLevelName(level) if isinstance(
        logging.getLevelName(level), int) else logging.WARNING)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
