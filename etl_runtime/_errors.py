"""Exceptions shared by the runtime and the task database layer.

This is the bottom layer of ``etl_runtime``: it imports nothing from the package, so both
``etl_runtime.taskdb`` (used by the operator) and the task classes can raise the same types.
"""

from __future__ import annotations


class ParameterError(ValueError):
    """A task parameter is missing, or its value cannot be stored as JSON."""


class TaskStopRequested(Exception):
    """The runner received SIGTERM or SIGINT and the task stops at its next check.

    The runtime raises it between ``init``, ``load`` and ``finish``, and a long step raises it
    itself by calling ``ETLTask.raise_if_stop_requested()``.
    """

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"stop requested by signal {signal_number}")
        self.signal_number = signal_number


class TaskClassNotFoundError(LookupError):
    """A ``module.Class`` name does not resolve to a subclass of ``ETLTask``."""


class ConfigError(LookupError):
    """A setting or database section is missing from the task's config.ini, or is invalid."""
