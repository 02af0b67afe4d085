"""Log format of the runtime: one line per event on stdout, with the task id in each record.

``etl-runtime`` calls ``configure_logging`` once, in the text format or, with
``KUBE_ETL_LOG_FORMAT=json`` (or ``--log-format json``), as one JSON object per line.
``ETLTask.log`` adds the task id to each record through ``TaskLoggerAdapter``, and records from
other loggers show ``task=-``. ``SecretRedactor`` masks the values of secret parameters in every
record (see ``_secrets``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

from etl_runtime._secrets import redact, redacting

LOG_FORMAT = "%(asctime)s %(levelname)-7s task=%(task_id)s %(name)s: %(message)s"
LOG_FORMAT_VARIABLE = "KUBE_ETL_LOG_FORMAT"
LOG_FORMATS = ("text", "json")

# Attributes that every LogRecord has. Any other attribute came from ``extra`` and is logged as a
# field of its own in the JSON format.
STANDARD_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


def utc_timestamp(record: logging.LogRecord) -> str:
    """Return the record's time as ISO 8601 in UTC with milliseconds."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class TaskIdDefault(logging.Filter):
    """Give records without a task id the placeholder ``-``, which LOG_FORMAT needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "task_id"):
            record.task_id = "-"
        return True


class SecretRedactor(logging.Filter):
    """Mask the registered secret values in a record's message, traceback, stack and extra fields.

    ``configure_logging`` adds it to the runtime's handler, and each task adds it to its own
    logger, so that the records of a task run outside ``etl-runtime`` are masked too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not redacting():
            return True
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            masked = redact(record.exc_text)
            if masked != record.exc_text:
                # Formatters print exc_text as it is once exc_info is gone, instead of formatting
                # the exception again.
                record.exc_text = masked
                record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in STANDARD_RECORD_ATTRIBUTES:
                continue
            text = value if isinstance(value, str) else str(value)
            masked = redact(text)
            if masked != text:
                setattr(record, key, masked)
        return True


class UtcFormatter(logging.Formatter):
    """Formatter that writes times as ISO 8601 in UTC with milliseconds."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_timestamp(record)


class JsonFormatter(logging.Formatter):
    """Formatter that writes each record as one JSON object.

    Fields: ``time``, ``level``, ``logger``, ``message``, ``task_id`` (null outside a task), each
    ``extra`` field, and ``exception`` with the traceback when the record has one. Values that
    JSON cannot represent are written as their ``str()``.
    """

    def format(self, record: logging.LogRecord) -> str:
        task_id = getattr(record, "task_id", None)
        entry: dict[str, Any] = {
            "time": utc_timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "task_id": None if task_id == "-" else task_id,
        }
        for key, value in vars(record).items():
            if key not in STANDARD_RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TaskLoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Logger adapter that stores the task id in every record as ``task_id``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


def configure_logging(
    level: int = logging.INFO, stream: TextIO | None = None, log_format: str = "text"
) -> None:
    """Send all log records to ``stream`` (stdout by default) as text lines or JSON lines."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r} is invalid; use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if log_format == "json" else UtcFormatter(LOG_FORMAT))
    handler.addFilter(TaskIdDefault())
    handler.addFilter(SecretRedactor())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic logs its setup at INFO on every upgrade; TaskDatabase.upgrade logs the outcome instead.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
