"""Values returned by ``TaskDatabase``, and its status vocabulary.

Used by the operator and the runtime to read runs without touching SQLAlchemy rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Statuses after which a run changes no more. Recording one sets ``task_run.finished_at``.
TERMINAL_STATUSES: frozenset[str] = frozenset({"Succeeded", "Failed", "UpstreamFailed", "Cancelled"})

# Recording this status for the first time sets ``task_run.started_at``.
RUNNING_STATUS = "Running"

# Values of ``task_child_request.approval``; NULL means that no decision was made yet.
APPROVED = "approved"
REJECTED = "rejected"


class TaskDatabaseError(Exception):
    """A task database operation failed for a reason other than a driver error."""


class TaskNotFoundError(TaskDatabaseError, LookupError):
    """No ``task_run`` row has the requested id."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"task run {task_id} not found in the task database")
        self.task_id = task_id


class ChildRequestNotFoundError(TaskDatabaseError, LookupError):
    """No ``task_child_request`` row has the requested id."""

    def __init__(self, request_id: int) -> None:
        super().__init__(f"child request {request_id} not found in the task database")
        self.request_id = request_id


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
class StoredParameter:
    """One ``task_parameter`` row. The value of a ``secret`` parameter is the mask, never the secret."""

    name: str
    value: Any
    secret: bool


@dataclass(frozen=True)
class StatusChange:
    """One ``task_status_history`` row."""

    id: int
    task_id: int
    status: str
    message: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class ChildRequest:
    """One ``task_child_request`` row: a parent task's request for a child run."""

    id: int
    parent_task_id: int
    task_class: str
    display_name: str | None
    parameters: Mapping[str, Any]
    needs_approval: bool
    # APPROVED, REJECTED, or None while undecided.
    approval: str | None
    # The ETLTask that the operator created for the request, or None before that.
    child_namespace: str | None
    child_name: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def is_assigned(self) -> bool:
        """Whether the operator has recorded the child ETLTask it created."""
        return self.child_name is not None

    @property
    def awaits_approval(self) -> bool:
        """Whether the request needs the parent's approval and has none yet."""
        return self.needs_approval and self.approval is None
