"""Log format of the runtime: one line per event on stdout, with the task id in each record.

``etl-runtime run`` calls ``configure_logging`` once. ``ETLTask.log`` adds the task id to each
record through ``TaskLoggerAdapter``, and records from other loggers show ``task=-``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

LOG_FORMAT = "%(asctime)s %(levelname)-7s task=%(task_id)s %(name)s: %(message)s"


class TaskIdDefault(logging.Filter):
    """Give records without a task id the placeholder ``-``, which LOG_FORMAT needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "task_id"):
            record.task_id = "-"
        return True


class UtcFormatter(logging.Formatter):
    """Formatter that writes times as ISO 8601 in UTC with milliseconds."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class TaskLoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Logger adapter that stores the task id in every record as ``task_id``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send all log records to ``stream`` (stdout by default) in the runtime's one-line format."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(UtcFormatter(LOG_FORMAT))
    handler.addFilter(TaskIdDefault())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic logs its setup at INFO on every upgrade; TaskDatabase.upgrade logs the outcome instead.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
