"""Child tasks of a parent ETLTask: handles, views of related runs, and status tracking.

A parent's ``add_child_task_to_scheduler`` writes a row to ``task_child_request``. The operator
creates the child ETLTask, records it with ``TaskDatabase.assign_child``, and gives the child's
``task_run`` rows the parent's task id. ``ETLTask.process_messages`` reads both tables through
``ChildTracker``, which keeps one ``ChildTask`` handle per child and finds the status changes not
yet delivered to the parent. The runtime never calls the Kubernetes API, so
the task database is the only channel between parent, operator and children.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from etl_runtime.taskdb import (
    REJECTED,
    TERMINAL_STATUSES,
    ChildRequest,
    RunRecord,
    StatusChange,
    TaskDatabase,
)

if TYPE_CHECKING:
    from etl_runtime._task import ETLTask

# Statuses of a child that has no task_run row yet. They are never passed to
# ``process_child_status_update``, because the operator has not created the child yet.
REQUESTED = "Requested"
AWAITING_APPROVAL = "AwaitingApproval"
# Status of a child whose request the parent rejected. It counts as finished at once.
CANCELLED = "Cancelled"


@dataclass
class ChildTask:
    """Handle of one child of a task, updated each time the parent reads the task database.

    ``request_id`` is set for a child requested through ``add_child_task_to_scheduler``.
    ``namespace``, ``name`` and ``task_id`` are set once the operator has created the child
    ETLTask and its run row. ``status`` is the child run's status, or ``Requested`` and
    ``AwaitingApproval`` before the operator has created it, or ``Cancelled`` once the parent
    rejected the request.
    """

    task_class: str
    request_id: int | None = None
    display_name: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    needs_approval: bool = False
    approval: str | None = None
    namespace: str | None = None
    name: str | None = None
    task_id: int | None = None
    status: str = REQUESTED
    # A child task object that runs in this process, registered with ``register_child``.
    local_task: ETLTask | None = field(default=None, repr=False, compare=False)

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def awaits_approval(self) -> bool:
        """Whether the request needs the parent's approval and has none yet."""
        return self.request_id is not None and self.needs_approval and self.approval is None

    def describe(self) -> str:
        """Return a short description for log lines, e.g. ``request 7 (pkg.Job) as analytics/a-c7``."""
        where = f" as {self.namespace}/{self.name}" if self.name else ""
        if self.request_id is not None:
            return f"child request {self.request_id} ({self.task_class}){where}"
        return f"child {self.task_class}{where}"


@dataclass(frozen=True)
class RelatedTask:
    """Read-only view of a parent or root task run, built from its task database rows."""

    task_id: int | None
    # The ETLTask's name, or the ``module.Class`` name for a task object in this process.
    name: str
    namespace: str | None
    task_class: str
    display_name: str | None
    status: str
    parameters: Mapping[str, Any]

    @classmethod
    def from_run(cls, run: RunRecord, parameters: Mapping[str, Any]) -> RelatedTask:
        return cls(
            task_id=run.id,
            name=run.name,
            namespace=run.namespace,
            task_class=run.task_class,
            display_name=run.display_name,
            status=run.status,
            parameters=dict(parameters),
        )

    @classmethod
    def from_task(cls, task: ETLTask) -> RelatedTask:
        return cls(
            task_id=task.task_id,
            name=task.name,
            namespace=None,
            task_class=task.name,
            display_name=task.display_name,
            status=task.status.value,
            # Secret values are masked, as in the task database that from_run reads.
            parameters=task.parameters().masked(),
        )


@dataclass(frozen=True)
class StatusUpdate:
    """A status change of a child, not yet delivered to the parent."""

    child: ChildTask
    status: str
    # The task_status_history row of the change, or None for a change that has no row.
    history_id: int | None


@dataclass
class _Delivered:
    """Delivery state of one child: the last status delivered to the parent, and where it came from."""

    status: str | None = None
    history_id: int = 0
    task_id: int | None = None
    # Set after a rejected child's Cancelled was delivered: its later rows are not followed.
    closed: bool = False


class ChildTracker:
    """The children of one task, and the status changes already delivered to the task.

    Not thread-safe: the task's own thread calls it from ``process_messages`` and ``children``.
    """

    def __init__(self) -> None:
        self._children: list[ChildTask] = []
        self._by_request: dict[int, ChildTask] = {}
        self._by_etl_task: dict[tuple[str, str], ChildTask] = {}
        self._delivered: dict[int, _Delivered] = {}
        self._parent_task_id: int | None = None

    @property
    def children(self) -> list[ChildTask]:
        return list(self._children)

    def all_finished(self) -> bool:
        return all(child.is_finished for child in self._children)

    def unfinished(self) -> list[ChildTask]:
        return [child for child in self._children if not child.is_finished]

    def add_request(self, request: ChildRequest) -> ChildTask:
        """Return the handle of a request, adding it when it is new."""
        child = self._by_request.get(request.id)
        if child is None:
            child = ChildTask(task_class=request.task_class, request_id=request.id)
            self._add(child)
            self._by_request[request.id] = child
        child.display_name = request.display_name
        child.parameters = dict(request.parameters)
        child.needs_approval = request.needs_approval
        child.approval = request.approval
        if request.child_name is not None:
            child.namespace, child.name = request.child_namespace, request.child_name
        _set_status_without_run(child)
        return child

    def add_local(self, task: ETLTask) -> ChildTask:
        """Return the handle of a child task object in this process, adding it when it is new."""
        for child in self._children:
            if child.local_task is task:
                return child
        child = ChildTask(
            task_class=task.name,
            display_name=task.display_name,
            task_id=task.task_id,
            status=task.status.value,
            local_task=task,
        )
        self._add(child)
        return child

    def set_approval(self, child: ChildTask, approval: str) -> None:
        child.approval = approval
        if child.task_id is None or approval == REJECTED:
            _set_status_without_run(child)

    def refresh(self, database: TaskDatabase | None, parent_task_id: int | None) -> None:
        """Read the parent's child requests and child runs, and update every handle."""
        for child in self._children:
            if child.local_task is not None:
                child.task_id = child.local_task.task_id
                child.status = child.local_task.status.value
        if database is None or parent_task_id is None:
            return

        self._parent_task_id = parent_task_id
        for request in database.child_requests(parent_task_id):
            self.add_request(request)
        runs = {(run.namespace, run.name): run for run in database.child_runs(parent_task_id)}
        for child in list(self._by_request.values()):
            run = _take_run_of_request(child, runs)
            if run is not None:
                _apply_run(child, run)
        # Children with a parent that no request of this task explains, e.g. an ETLTask applied with
        # spec.parent set.
        for key, run in runs.items():
            adopted = self._by_etl_task.get(key)
            if adopted is None:
                adopted = ChildTask(task_class=run.task_class, namespace=run.namespace, name=run.name)
                self._add(adopted)
                self._by_etl_task[key] = adopted
            _apply_run(adopted, run)

    def pending_updates(self, database: TaskDatabase | None) -> list[StatusUpdate]:
        """Return the status changes not yet delivered, oldest first per child.

        A child run's changes come from its status history, so a status that began and ended
        between two reads is still reported. Each change is reported until ``mark_delivered``.
        """
        updates: list[StatusUpdate] = []
        for child in self._children:
            state = self._state(child)
            if state.closed:
                continue
            if child.approval == REJECTED or child.local_task is not None:
                # No status history to read: report the current status when it changed.
                if child.status != state.status:
                    updates.append(StatusUpdate(child, child.status, None))
            elif (
                database is not None
                and child.task_id is not None
                and (child.task_id != state.task_id or child.status != state.status)
            ):
                updates.extend(self._history_updates(database, child, state))
        return updates

    def mark_delivered(self, update: StatusUpdate) -> None:
        state = self._state(update.child)
        state.status = update.status
        state.task_id = update.child.task_id
        if update.history_id is not None:
            state.history_id = max(state.history_id, update.history_id)
        if update.child.approval == REJECTED and update.status == CANCELLED:
            state.closed = True

    def _history_updates(
        self, database: TaskDatabase, child: ChildTask, state: _Delivered
    ) -> list[StatusUpdate]:
        assert child.task_id is not None
        updates: list[StatusUpdate] = []
        previous = state.status
        newest_history_id = state.history_id
        for change in self._changes_since(database, child, state):
            if change.id <= state.history_id:
                continue
            newest_history_id = max(newest_history_id, change.id)
            if change.status != previous:
                updates.append(StatusUpdate(child, change.status, change.id))
                previous = change.status
        if not updates and child.status != state.status:
            # The status changed without a history row, which only a write outside TaskDatabase does.
            updates.append(StatusUpdate(child, child.status, None))
        if not updates:
            # Nothing new to deliver: remember the run and the history read, so the next read skips them.
            state.task_id = child.task_id
            state.history_id = newest_history_id
        return updates

    def _changes_since(
        self, database: TaskDatabase, child: ChildTask, state: _Delivered
    ) -> list[StatusChange]:
        """Return the status history of the child's attempts since the last delivered one, oldest first.

        When the newest attempt is not the one delivered last, the earlier attempts count too: the
        one delivered last may have changed again, and a whole attempt may have come and gone
        between two reads. On the first read, every attempt of the child counts.
        """
        assert child.task_id is not None
        if state.task_id == child.task_id or child.name is None:
            return database.status_history(child.task_id)
        oldest = state.task_id if state.task_id is not None else 0
        changes: list[StatusChange] = []
        for run in database.runs_for(child.namespace or "", child.name):
            if oldest <= run.id <= child.task_id and run.parent_task_id == self._parent_task_id:
                changes.extend(database.status_history(run.id))
        return sorted(changes, key=lambda change: change.id)

    def _add(self, child: ChildTask) -> None:
        self._children.append(child)
        self._delivered[id(child)] = _Delivered()

    def _state(self, child: ChildTask) -> _Delivered:
        return self._delivered[id(child)]


def _set_status_without_run(child: ChildTask) -> None:
    if child.approval == REJECTED:
        child.status = CANCELLED
    elif child.task_id is None:
        child.status = AWAITING_APPROVAL if child.awaits_approval else REQUESTED


def _take_run_of_request(child: ChildTask, runs: dict[tuple[str, str], RunRecord]) -> RunRecord | None:
    """Remove and return the run of a requested child from ``runs``, or return None.

    The request names its ETLTask once the operator has recorded it. Before that, the run is
    recognised by the name the operator gives a requested child, ``<parent-name>-c<request id>``.
    """
    if child.name is not None:
        return runs.pop((child.namespace or "", child.name), None)
    suffix = f"-c{child.request_id}"
    for key, run in runs.items():
        if run.name.endswith(suffix):
            del runs[key]
            return run
    return None


def _apply_run(child: ChildTask, run: RunRecord) -> None:
    child.task_id = run.id
    child.namespace, child.name = run.namespace, run.name
    child.status = CANCELLED if child.approval == REJECTED else run.status
