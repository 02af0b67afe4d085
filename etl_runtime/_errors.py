"""Exceptions shared by the runtime and the task database layer.

This is the bottom layer of ``etl_runtime``: it imports nothing from the package, so both
``etl_runtime.taskdb`` (used by the operator) and the task classes can raise the same types.
"""

from __future__ import annotations


class ParameterError(ValueError):
    """A task parameter is missing, or its value cannot be stored as JSON."""


class TaskStopRequested(Exception):
    """The task must stop at its next check, and the run ends ``Cancelled``.

    The runner raises it after SIGTERM or SIGINT, between ``init``, ``load`` and ``finish``, and a
    long step raises it itself by calling ``ETLTask.raise_if_stop_requested()``.
    ``ETLTask.process_messages`` also raises it when an ancestor task was cancelled; then
    ``signal_number`` is None.
    """

    def __init__(self, signal_number: int | None = None, reason: str | None = None) -> None:
        if reason is None:
            reason = f"stop requested by signal {signal_number}"
        super().__init__(reason)
        self.signal_number = signal_number
        self.reason = reason


class WorkflowFinished(Exception):
    """Raised by a message handler of a parent task to end ``process_messages`` early.

    ``ETLTask.process_messages`` catches it and returns, even while children still run. Raised
    anywhere else, it fails the run like any other exception.
    """


class TaskClassNotFoundError(LookupError):
    """A task class name, full or partial, does not resolve to a subclass of ``ETLTask``."""


class AmbiguousTaskNameError(TaskClassNotFoundError):
    """A partial task name matches more than one task class. ``candidates`` lists them."""

    def __init__(self, message: str, candidates: tuple[str, ...]) -> None:
        super().__init__(message)
        self.candidates = candidates


class ConfigError(LookupError):
    """A setting or database section is missing from the task's config.ini, or is invalid."""
