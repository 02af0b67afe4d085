"""Values returned by ``TaskDatabase``, and its status vocabulary.

Used by the operator and the runtime to read runs without touching SQLAlchemy rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Statuses after which a run changes no more. Recording one sets ``task_run.finished_at``.
TERMINAL_STATUSES: frozenset[str] = frozenset({"Succeeded", "Failed", "UpstreamFailed", "Cancelled"})

# Recording this status for the first time sets ``task_run.started_at``.
RUNNING_STATUS = "Running"


class TaskDatabaseError(Exception):
    """A task database operation failed for a reason other than a driver error."""


class TaskNotFoundError(TaskDatabaseError, LookupError):
    """No ``task_run`` row has the requested id."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"task run {task_id} not found in the task database")
        self.task_id = task_id


@dataclass(frozen=True)
class RunRecord:
    """One ``task_run`` row: one attempt of one ETLTask."""

    id: int
    namespace: str
    name: str
    uid: str
    attempt: int
    task_class: str
    display_name: str | None
    status: str
    pod_name: str | None
    parent_task_id: int | None
    root_task_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    message: str | None
    error: str | None

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class StatusChange:
    """One ``task_status_history`` row."""

    id: int
    task_id: int
    status: str
    message: str | None
    recorded_at: datetime
