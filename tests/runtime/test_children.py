"""Parents and children through the task database: requests, NOTIFY, approvals and status updates.

The tests stand in for the operator with ``OperatorStandIn``, which writes through TaskDatabase
what the operator writes: it assigns each request a child ETLTask named
``<parent-name>-c<request id>`` and creates and updates the child's task_run rows.
"""

from __future__ import annotations

import configparser
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from etl_runtime import (
    AmbiguousTaskNameError,
    ChildTask,
    ETLTask,
    TaskClassNotFoundError,
    TaskStatus,
    TaskStopRequested,
    WorkflowFinished,
)
from etl_runtime.taskdb import (
    CHILD_APPROVAL_CHANNEL,
    CHILD_REQUEST_CHANNEL,
    ChildRequestNotFoundError,
    ParameterError,
    TaskDatabase,
    TaskDatabaseError,
    TaskNotFoundError,
)
from etl_runtime.taskdb._migrations import alembic_config
from etl_runtime.taskdb._schema import metadata

NAMESPACE = "analytics"


class ChildJob(ETLTask):
    def load(self) -> None:
        pass


class OtherChildJob(ETLTask):
    def load(self) -> None:
        pass


class ParentJob(ETLTask):
    """Records every status update; the tests set ``approve`` and ``finish_on`` as needed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.updates: list[tuple[int | None, str]] = []
        self.asked: list[int | None] = []
        self.approve: dict[int, bool] = {}
        self.needs_approval = False
        self.finish_on: str | None = None

    def load(self) -> None:
        pass

    def needs_to_ok_child_runs(self) -> bool:
        return self.needs_approval

    def process_child_run_requested(self, child: ChildTask) -> bool:
        self.asked.append(child.request_id)
        return self.approve.get(child.request_id or 0, True)

    def process_child_status_update(self, child: ChildTask, status: str) -> None:
        self.updates.append((child.request_id, status))
        if status == self.finish_on:
            raise WorkflowFinished(f"a child reached {status}")


def new_run(database: TaskDatabase, name: str, **overrides: Any) -> int:
    values: dict[str, Any] = {
        "namespace": NAMESPACE,
        "name": name,
        "uid": str(uuid.uuid4()),
        "attempt": 1,
        "task_class": "tests.runtime.test_children.ParentJob",
        "display_name": None,
        "parameters": {},
    }
    values.update(overrides)
    return database.create_run(**values)


class OperatorStandIn:
    """Creates and updates child runs as the operator does, through TaskDatabase only."""

    def __init__(self, database: TaskDatabase, parent_task_id: int) -> None:
        self.database = database
        self.parent = database.get_run(parent_task_id)
        self.runs: dict[int, int] = {}

    def create_children(self) -> dict[int, int]:
        """Create a child run for every unassigned request of the parent; return request id -> task id."""
        for request in self.database.child_requests(self.parent.id, only_unassigned=True):
            name = f"{self.parent.name}-c{request.id}"
            self.database.assign_child(request.id, NAMESPACE, name)
            self.runs[request.id] = self.database.create_run(
                namespace=NAMESPACE,
                name=name,
                uid=str(uuid.uuid4()),
                attempt=1,
                task_class=request.task_class,
                display_name=request.display_name,
                parameters=request.parameters,
                parent_task_id=self.parent.id,
                root_task_id=self.parent.root_task_id or self.parent.id,
            )
        return dict(self.runs)

    def record(self, request_id: int, *statuses: str) -> None:
        for status in statuses:
            self.database.record_status(self.runs[request_id], status)


@pytest.fixture
def parent(task_database: TaskDatabase) -> Iterator[ParentJob]:
    task_id = new_run(task_database, "nightly", parameters={"as_of": "2026-12-01"})
    with ParentJob(task_id, task_database=task_database) as job:
        yield job


def listen(taskdb_url: str, *channels: str) -> psycopg.Connection[Any]:
    conninfo = make_url(taskdb_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg.connect(conninfo, autocommit=True)
    for channel in channels:
        connection.execute(f"LISTEN {channel}")
    return connection


# TaskDatabase: requests, NOTIFY and child runs


def test_migration_matches_schema(task_database: TaskDatabase) -> None:
    with task_database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)

    assert differences == []


def test_child_request_migration_downgrades(task_database: TaskDatabase, taskdb_url: str) -> None:
    config = alembic_config(taskdb_url)

    command.downgrade(config, "0001_initial")
    tables_after_downgrade = set(inspect(task_database.engine).get_table_names())
    task_database.upgrade()
    tables_after_upgrade = set(inspect(task_database.engine).get_table_names())

    assert "task_child_request" not in tables_after_downgrade
    assert "task_run" in tables_after_downgrade
    assert "task_child_request" in tables_after_upgrade


def test_request_child_stores_request(task_database: TaskDatabase) -> None:
    parent_id = new_run(task_database, "nightly")

    request_id = task_database.request_child(
        parent_id, "pkg.jobs.Load", parameters={"Region": "emea"}, display_name="Load EMEA"
    )
    request = task_database.get_child_request(request_id)

    assert request.parent_task_id == parent_id
    assert request.task_class == "pkg.jobs.Load"
    assert request.parameters == {"Region": "emea"}
    assert request.display_name == "Load EMEA"
    assert request.needs_approval is False
    assert request.approval is None
    assert request.child_name is None
    assert request.created_at.tzinfo is not None


def test_request_child_notifies_listener(task_database: TaskDatabase, taskdb_url: str) -> None:
    parent_id = new_run(task_database, "nightly")
    listener = listen(taskdb_url, CHILD_REQUEST_CHANNEL)
    try:
        task_database.request_child(parent_id, "pkg.jobs.Load")
        received = list(listener.notifies(timeout=5, stop_after=1))
    finally:
        listener.close()

    assert [(note.channel, note.payload) for note in received] == [(CHILD_REQUEST_CHANNEL, str(parent_id))]


def test_failed_request_sends_no_notify(task_database: TaskDatabase, taskdb_url: str) -> None:
    listener = listen(taskdb_url, CHILD_REQUEST_CHANNEL)
    try:
        with pytest.raises(TaskNotFoundError):
            task_database.request_child(987_654, "pkg.jobs.Load")
        with pytest.raises(ParameterError, match="'handle'"):
            task_database.request_child(987_654, "pkg.jobs.Load", parameters={"handle": object()})
        received = list(listener.notifies(timeout=0.5))
    finally:
        listener.close()

    assert received == []
    assert task_database.child_requests() == []


def test_approval_notifies_listener(task_database: TaskDatabase, taskdb_url: str) -> None:
    parent_id = new_run(task_database, "nightly")
    request_id = task_database.request_child(parent_id, "pkg.jobs.Load", needs_approval=True)
    listener = listen(taskdb_url, CHILD_APPROVAL_CHANNEL)
    try:
        task_database.set_child_approval(request_id, False)
        task_database.set_child_approval(request_id, False)
        received = list(listener.notifies(timeout=1))
    finally:
        listener.close()

    assert [(note.channel, note.payload) for note in received] == [(CHILD_APPROVAL_CHANNEL, str(request_id))]
    assert task_database.get_child_request(request_id).approval == "rejected"


def test_approval_decision_cannot_change(task_database: TaskDatabase) -> None:
    parent_id = new_run(task_database, "nightly")
    request_id = task_database.request_child(parent_id, "pkg.jobs.Load", needs_approval=True)
    task_database.set_child_approval(request_id, True)

    with pytest.raises(TaskDatabaseError, match="already approved"):
        task_database.set_child_approval(request_id, False)


def test_approval_of_unapproved_request_raises(task_database: TaskDatabase) -> None:
    parent_id = new_run(task_database, "nightly")
    request_id = task_database.request_child(parent_id, "pkg.jobs.Load")

    with pytest.raises(TaskDatabaseError, match="does not need approval"):
        task_database.set_child_approval(request_id, True)
    with pytest.raises(ChildRequestNotFoundError):
        task_database.set_child_approval(987_654, True)


def test_child_requests_filter_by_parent_and_assignment(task_database: TaskDatabase) -> None:
    first_parent = new_run(task_database, "nightly")
    second_parent = new_run(task_database, "weekly")
    assigned = task_database.request_child(first_parent, "pkg.jobs.A")
    open_request = task_database.request_child(first_parent, "pkg.jobs.B")
    other = task_database.request_child(second_parent, "pkg.jobs.C")
    task_database.assign_child(assigned, NAMESPACE, f"nightly-c{assigned}")

    all_ids = [request.id for request in task_database.child_requests()]
    first_ids = [request.id for request in task_database.child_requests(first_parent)]
    open_ids = [request.id for request in task_database.child_requests(only_unassigned=True)]

    assert all_ids == [assigned, open_request, other]
    assert first_ids == [assigned, open_request]
    assert open_ids == [open_request, other]


def test_assign_child_is_idempotent(task_database: TaskDatabase) -> None:
    parent_id = new_run(task_database, "nightly")
    request_id = task_database.request_child(parent_id, "pkg.jobs.Load")

    task_database.assign_child(request_id, NAMESPACE, "nightly-c1")
    task_database.assign_child(request_id, NAMESPACE, "nightly-c1")
    with pytest.raises(TaskDatabaseError, match="already assigned to ETLTask analytics/nightly-c1"):
        task_database.assign_child(request_id, NAMESPACE, "other")

    request = task_database.get_child_request(request_id)
    assert (request.child_namespace, request.child_name) == (NAMESPACE, "nightly-c1")
    assert request.updated_at >= request.created_at


def test_child_runs_return_newest_attempt(task_database: TaskDatabase) -> None:
    parent_id = new_run(task_database, "nightly")
    uid = str(uuid.uuid4())
    first_attempt = new_run(task_database, "nightly-c1", uid=uid, attempt=1, parent_task_id=parent_id)
    second_attempt = new_run(task_database, "nightly-c1", uid=uid, attempt=2, parent_task_id=parent_id)
    other_child = new_run(task_database, "nightly-c2", parent_task_id=parent_id)
    new_run(task_database, "unrelated")

    runs = task_database.child_runs(parent_id)

    assert first_attempt < second_attempt
    assert [run.id for run in runs] == [second_attempt, other_child]
    assert [run.attempt for run in runs] == [2, 1]


def test_deleting_parent_deletes_requests(task_database: TaskDatabase) -> None:
    parent_id = new_run(task_database, "nightly")
    task_database.request_child(parent_id, "pkg.jobs.Load")

    with task_database.engine.begin() as connection:
        connection.execute(text("DELETE FROM task_run WHERE id = :id"), {"id": parent_id})

    assert task_database.child_requests() == []


# ETLTask: requesting children


def test_child_request_records_class_and_parameters(parent: ParentJob, task_database: TaskDatabase) -> None:
    child = parent.add_child_task_to_scheduler(ChildJob, {"region": "emea"}, display_name="EMEA")
    by_name = parent.add_child_task_to_scheduler("tests.runtime.test_children.OtherChildJob")

    requests = task_database.child_requests(parent.task_id)
    assert [request.task_class for request in requests] == [
        "tests.runtime.test_children.ChildJob",
        "tests.runtime.test_children.OtherChildJob",
    ]
    assert requests[0].parameters == {"region": "emea"}
    assert requests[0].display_name == "EMEA"
    assert child.request_id == requests[0].id
    assert child.status == "Requested"
    assert by_name.request_id == requests[1].id
    assert [handle.request_id for handle in parent.children] == [child.request_id, by_name.request_id]


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("tests.runtime.test_children.Missing", "has no class 'Missing'"),
        ("no_such_package.Job", "no module named 'no_such_package'"),
        ("ChildJob", "expected a full module.Class name"),
        ("runtime_sample_jobs.NotATask", "is not a subclass of etl_runtime.ETLTask"),
    ],
)
def test_unresolvable_child_class_raises(
    parent: ParentJob, task_database: TaskDatabase, task: str, message: str
) -> None:
    with pytest.raises(TaskClassNotFoundError, match=message):
        parent.add_child_task_to_scheduler(task)

    assert task_database.child_requests() == []


def test_local_child_class_is_rejected(parent: ParentJob) -> None:
    class DefinedInFunction(ETLTask):
        def load(self) -> None:
            pass

    with pytest.raises(TaskClassNotFoundError, match="its pod could not import it"):
        parent.add_child_task_to_scheduler(DefinedInFunction)


def test_child_request_needs_task_run() -> None:
    with pytest.raises(TaskDatabaseError, match="needs a task run in the task database"):
        ParentJob().add_child_task_to_scheduler(ChildJob)


def test_partial_name_child_resolves_under_base_modules(
    task_database: TaskDatabase, parent: ParentJob
) -> None:
    config = configparser.ConfigParser()
    config.read_string("[kube_etl]\nbase_modules = runtime_partial_jobs\n")
    with ParentJob(parent.task_id, task_database=task_database, config=config) as job:
        child = job.add_child_task_by_partial_name_to_scheduler("EtlTaskE", {"n": 1})
        with pytest.raises(AmbiguousTaskNameError):
            job.add_child_task_by_partial_name_to_scheduler("etl_task_d*")

    assert child.task_class == "runtime_partial_jobs.etl_task_e.EtlTaskE"
    assert [request.task_class for request in task_database.child_requests()] == [child.task_class]


# ETLTask: process_messages


def test_status_updates_are_delivered_once(parent: ParentJob, task_database: TaskDatabase) -> None:
    first = parent.add_child_task_to_scheduler(ChildJob).request_id
    second = parent.add_child_task_to_scheduler(OtherChildJob).request_id
    assert first is not None
    assert second is not None
    operator = OperatorStandIn(task_database, parent.task_id or 0)

    parent.process_messages()
    assert parent.updates == []

    operator.create_children()
    operator.record(first, "Starting", "Running", "Succeeded")
    parent.process_messages()
    parent.process_messages()
    assert parent.updates == [
        (first, "Pending"),
        (first, "Starting"),
        (first, "Running"),
        (first, "Succeeded"),
        (second, "Pending"),
    ]

    operator.record(second, "Running")
    task_database.record_status(operator.runs[second], "Running", message="still running")
    operator.record(second, "Failed")
    parent.process_messages()
    parent.process_messages()
    assert parent.updates[5:] == [(second, "Running"), (second, "Failed")]
    assert [child.status for child in parent.children] == ["Succeeded", "Failed"]
    assert [child.task_id for child in parent.children] == [operator.runs[first], operator.runs[second]]
    assert parent.children[0].name == f"nightly-c{first}"


def test_retried_child_reports_every_attempt(parent: ParentJob, task_database: TaskDatabase) -> None:
    request_id = parent.add_child_task_to_scheduler(ChildJob).request_id
    assert request_id is not None
    operator = OperatorStandIn(task_database, parent.task_id or 0)
    operator.create_children()
    operator.record(request_id, "Running")
    parent.process_messages()
    first = task_database.get_run(operator.runs[request_id])

    # Two more attempts come and go before the parent reads again.
    operator.record(request_id, "Failed", "Retrying")
    attempts = []
    for attempt, outcome in ((2, ("Failed", "Retrying")), (3, ("Succeeded",))):
        task_id = task_database.create_run(
            namespace=NAMESPACE,
            name=first.name,
            uid=first.uid,
            attempt=attempt,
            task_class=first.task_class,
            display_name=None,
            parameters={},
            parent_task_id=parent.task_id,
            status="Starting",
        )
        for status in ("Running", *outcome):
            task_database.record_status(task_id, status)
        attempts.append(task_id)
    parent.process_messages()
    parent.process_messages()

    assert [status for _, status in parent.updates] == [
        "Pending",
        "Running",
        "Failed",
        "Retrying",
        "Starting",
        "Running",
        "Failed",
        "Retrying",
        "Starting",
        "Running",
        "Succeeded",
    ]
    assert parent.children[0].task_id == attempts[-1]


def test_approval_is_written_through_handler(parent: ParentJob, task_database: TaskDatabase) -> None:
    parent.needs_approval = True
    approved = parent.add_child_task_to_scheduler(ChildJob)
    rejected = parent.add_child_task_to_scheduler(OtherChildJob)
    assert approved.request_id is not None
    assert rejected.request_id is not None
    parent.approve = {rejected.request_id: False}
    assert approved.status == "AwaitingApproval"

    parent.process_messages()
    parent.process_messages()

    assert parent.asked == [approved.request_id, rejected.request_id]
    assert task_database.get_child_request(approved.request_id).approval == "approved"
    assert task_database.get_child_request(rejected.request_id).approval == "rejected"
    assert rejected.status == "Cancelled"
    assert rejected.is_finished
    assert approved.status == "Requested"
    assert parent.updates == [(rejected.request_id, "Cancelled")]


def test_default_handler_approves_requests(task_database: TaskDatabase, parent: ParentJob) -> None:
    class ApprovingParent(ETLTask):
        def load(self) -> None:
            pass

        def needs_to_ok_child_runs(self) -> bool:
            return True

    with ApprovingParent(parent.task_id, task_database=task_database) as job:
        child = job.add_child_task_to_scheduler(ChildJob)
        assert child.request_id is not None
        assert task_database.get_child_request(child.request_id).needs_approval is True
        job.process_messages()

    assert task_database.get_child_request(child.request_id).approval == "approved"


def test_statuses_are_not_delivered_when_not_wanted(parent: ParentJob, task_database: TaskDatabase) -> None:
    class QuietParent(ParentJob):
        def needs_to_get_child_statuses(self) -> bool:
            return False

    with QuietParent(parent.task_id, task_database=task_database) as job:
        job.add_child_task_to_scheduler(ChildJob)
        OperatorStandIn(task_database, parent.task_id or 0).create_children()
        job.process_messages()

        assert job.updates == []
        assert [child.status for child in job.children] == ["Pending"]


def finish_children_later(operator: OperatorStandIn, delay: float, final: dict[int, str]) -> threading.Thread:
    """Start a thread that, after ``delay`` s, creates the children and records their final statuses."""

    def work() -> None:
        time.sleep(delay)
        operator.create_children()
        for request_id, status in final.items():
            operator.record(request_id, "Running", status)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_blocking_wait_returns_when_children_finish(parent: ParentJob, task_database: TaskDatabase) -> None:
    first = parent.add_child_task_to_scheduler(ChildJob).request_id
    second = parent.add_child_task_to_scheduler(ChildJob).request_id
    assert first is not None
    assert second is not None
    thread = finish_children_later(
        OperatorStandIn(task_database, parent.task_id or 0), 0.5, {first: "Succeeded", second: "Failed"}
    )

    started = time.monotonic()
    parent.process_messages(block=True, timeout=20)
    thread.join()

    assert time.monotonic() - started < 10
    assert all(child.is_finished for child in parent.children)
    assert (first, "Succeeded") in parent.updates
    assert (second, "Failed") in parent.updates


def test_workflow_finished_ends_blocking_wait(parent: ParentJob, task_database: TaskDatabase) -> None:
    finished = parent.add_child_task_to_scheduler(ChildJob).request_id
    parent.add_child_task_to_scheduler(ChildJob)
    assert finished is not None
    parent.finish_on = "Succeeded"
    thread = finish_children_later(
        OperatorStandIn(task_database, parent.task_id or 0), 0.3, {finished: "Succeeded"}
    )

    parent.process_messages(block=True, timeout=20)
    thread.join()

    assert parent.updates[-1] == (finished, "Succeeded")
    assert [child.status for child in parent.children] == ["Succeeded", "Pending"]


def test_blocking_wait_times_out_naming_children(parent: ParentJob) -> None:
    child = parent.add_child_task_to_scheduler(ChildJob)

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=rf"child request {child.request_id} .* is Requested"):
        parent.process_messages(block=True, timeout=0.5)

    assert 0.4 < time.monotonic() - started < 5


def test_blocking_wait_without_children_returns(parent: ParentJob) -> None:
    parent.process_messages(block=True, timeout=0.1)

    assert parent.children == []


def test_stop_request_interrupts_blocking_wait(parent: ParentJob) -> None:
    parent.add_child_task_to_scheduler(ChildJob)
    timer = threading.Timer(0.3, parent.request_stop, args=(signal.SIGTERM,))
    timer.start()

    with pytest.raises(TaskStopRequested, match="signal 15"):
        parent.process_messages(block=True, timeout=20)
    timer.join()


def test_cancelled_parent_stops_child_that_asks(task_database: TaskDatabase) -> None:
    class Watchful(ChildJob):
        def needs_to_get_ancestor_statuses(self) -> bool:
            return True

    parent_id = new_run(task_database, "nightly")
    child_id = new_run(task_database, "nightly-c1", parent_task_id=parent_id, root_task_id=parent_id)
    with Watchful(
        child_id, task_database=task_database, parent_task_id=parent_id, root_task_id=parent_id
    ) as child:
        child.process_messages()
        task_database.record_status(parent_id, "Cancelled")

        with pytest.raises(
            TaskStopRequested, match=f"the parent task run {parent_id} \\(nightly\\) was cancelled"
        ):
            child.process_messages()


def test_child_reads_parent_and_root_views(task_database: TaskDatabase) -> None:
    root_id = new_run(task_database, "monthly", parameters={"month": "2026-12"})
    parent_id = new_run(task_database, "nightly", parent_task_id=root_id, root_task_id=root_id)
    task_database.record_status(parent_id, "Running")
    child_id = new_run(task_database, "nightly-c1", parent_task_id=parent_id, root_task_id=root_id)

    with ChildJob(
        child_id, task_database=task_database, parent_task_id=parent_id, root_task_id=root_id
    ) as child:
        parent_view = child.parent_task
        root_view = child.root_task

    assert parent_view is not None
    assert root_view is not None
    assert (parent_view.task_id, parent_view.name, parent_view.status) == (parent_id, "nightly", "Running")
    assert (root_view.task_id, root_view.name, root_view.status) == (root_id, "monthly", "Pending")
    assert root_view.parameters == {"month": "2026-12"}
    assert ChildJob().parent_task is None


def test_child_with_spec_parent_is_listed(parent: ParentJob, task_database: TaskDatabase) -> None:
    applied = new_run(
        task_database, "applied-child", parent_task_id=parent.task_id, task_class="pkg.jobs.Applied"
    )

    parent.process_messages()

    assert [(child.request_id, child.name, child.task_id) for child in parent.children] == [
        (None, "applied-child", applied)
    ]
    assert parent.updates == [(None, "Pending")]


def test_registered_child_reports_its_status() -> None:
    parent = ParentJob()
    child = ChildJob(parameters={"region": "emea"})

    handle = parent.register_child(child)
    parent.process_messages()
    child.run()
    parent.process_messages()

    assert handle.local_task is child
    assert parent.updates == [(None, "Pending"), (None, "Succeeded")]
    assert child.parent_task is not None
    assert child.parent_task.name == "tests.runtime.test_children.ParentJob"
    assert child.root_task is not None
    assert child.root_task.status == TaskStatus.PENDING.value
    assert parent.children == [handle]
