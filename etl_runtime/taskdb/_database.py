"""``TaskDatabase``: reads and writes the record of every ETLTask run.

The operator creates a run row per attempt and records phase changes. The runtime, inside the pod,
reads the run's parameters and writes statistics, parameters set by the job, and the error text.
Secret parameters are stored as ``SECRET_MASK`` with ``task_parameter.secret`` set, and once a
parameter of a run is secret, no later write stores a value for it.
A parent task's runtime requests child runs here, and the operator, which LISTENs on
``CHILD_REQUEST_CHANNEL`` and ``CHILD_APPROVAL_CHANNEL``, creates the child ETLTasks. All methods
are synchronous, and each read or write is a single transaction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Row,
    case,
    create_engine,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import URL, make_url

from etl_runtime._errors import ParameterError
from etl_runtime._json import check_parameter_value, json_problem
from etl_runtime._secrets import SECRET_MASK
from etl_runtime.taskdb._records import (
    APPROVED,
    REJECTED,
    RUNNING_STATUS,
    TERMINAL_STATUSES,
    ChildRequest,
    ChildRequestNotFoundError,
    RunRecord,
    StatusChange,
    StoredParameter,
    TaskDatabaseError,
    TaskNotFoundError,
)
from etl_runtime.taskdb._schema import (
    task_child_request,
    task_parameter,
    task_run,
    task_statistic,
    task_status_history,
)

DATABASE_URL_VARIABLE = "KUBE_ETL_DATABASE_URL"

# NOTIFY channels of the child requests. The payload of CHILD_REQUEST_CHANNEL is the parent's task
# id, and the payload of CHILD_APPROVAL_CHANNEL is the request id, both as decimal text.
CHILD_REQUEST_CHANNEL = "kube_etl_child_request"
CHILD_APPROVAL_CHANNEL = "kube_etl_child_approval"

log = logging.getLogger("etl_runtime.taskdb")


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and select the psycopg 3 driver when it names plain ``postgresql``.

    SQLAlchemy's default Postgres driver is psycopg2, which kube-etl does not install.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def parameter_rows(
    task_id: int, values: Mapping[str, Any], secret_names: Collection[str] = ()
) -> list[dict[str, Any]]:
    """Check parameter names and values, and return one ``task_parameter`` row per parameter.

    The parameters named in ``secret_names`` (compared case-insensitively) get the mask as their
    value and ``secret`` set; their values are neither checked nor kept.
    """
    secret_keys = {name.lower() for name in secret_names if isinstance(name, str)}
    rows: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise ParameterError(f"parameter name {name!r} is invalid: expected a non-empty string")
        key = name.lower()
        secret = key in secret_keys
        if not secret:
            check_parameter_value(name, value)
        if key in rows:
            raise ParameterError(
                f"parameters {rows[key]['name']!r} and {name!r} differ only in case; "
                "parameter names are case-insensitive, so give only one of them"
            )
        rows[key] = {
            "task_id": task_id,
            "key": key,
            "name": name,
            "value": SECRET_MASK if secret else value,
            "secret": secret,
        }
    return list(rows.values())


def run_parameter_values(parameters: Mapping[str, Any], secret_parameters: Collection[str]) -> dict[str, Any]:
    """Return the parameters of a new run with the secret ones added as masks.

    Raises ParameterError naming a parameter that is both a value and a secret, or a secret given twice.
    """
    values = dict(parameters)
    keys = {name.lower(): name for name in values if isinstance(name, str)}
    for name in secret_parameters:
        if not isinstance(name, str) or not name:
            raise ParameterError(f"secret parameter name {name!r} is invalid: expected a non-empty string")
        earlier_name = keys.get(name.lower())
        if earlier_name is not None and earlier_name in parameters:
            raise ParameterError(
                f"parameter {earlier_name!r} is given both as a value and as the secret parameter "
                f"{name!r}; give it once: drop the value (spec.parameters or --param) to read it from "
                "the secret"
            )
        if earlier_name is not None:
            raise ParameterError(
                f"secret parameters {earlier_name!r} and {name!r} name the same parameter, because "
                "parameter names are case-insensitive; give it once"
            )
        keys[name.lower()] = name
        values[name] = SECRET_MASK
    return values


# The task_run columns that RunRecord holds, selected by name so that a later column does not break it.
RUN_COLUMNS = [task_run.c[field.name] for field in fields(RunRecord)]
HISTORY_COLUMNS = [task_status_history.c[field.name] for field in fields(StatusChange)]
CHILD_REQUEST_COLUMNS = [task_child_request.c[field.name] for field in fields(ChildRequest)]


def run_record(row: Row[Any]) -> RunRecord:
    return RunRecord(**row._asdict())


def child_request_record(row: Row[Any]) -> ChildRequest:
    return ChildRequest(**row._asdict())


def notify(connection: Connection, channel: str, payload: str) -> None:
    """Queue a NOTIFY, which Postgres delivers only when the caller's transaction commits."""
    connection.execute(select(func.pg_notify(channel, payload)))


class TaskDatabase:
    """The task database: runs, parameters, status history and statistics, in Postgres."""

    def __init__(self, url: str, *, engine_options: dict[str, Any] | None = None) -> None:
        options: dict[str, Any] = {"pool_pre_ping": True}
        options.update(engine_options or {})
        self._engine: Engine = create_engine(normalize_url(url), **options)

    @classmethod
    def from_env(cls) -> TaskDatabase:
        """Create a TaskDatabase for the URL in ``$KUBE_ETL_DATABASE_URL``. It connects on first use."""
        url = os.environ.get(DATABASE_URL_VARIABLE, "").strip()
        if not url:
            raise TaskDatabaseError(
                f"environment variable {DATABASE_URL_VARIABLE} is not set; set it to the task database URL, "
                "e.g. postgresql+psycopg://user:password@host:5432/kube_etl"
            )
        return cls(url)

    @property
    def engine(self) -> Engine:
        return self._engine

    def __repr__(self) -> str:
        return f"TaskDatabase({self._engine.url.render_as_string(hide_password=True)!r})"

    def upgrade(self) -> None:
        """Bring the schema to the newest migration. Safe to call from several processes at once."""
        # Alembic is imported here rather than at the top: job pods never migrate, and the import
        # costs each pod process about 90 ms of CPU.
        from etl_runtime.taskdb._migrations import upgrade_to_head

        before, after = upgrade_to_head(self._engine)
        if before != after:
            log.info("task database schema upgraded from revision %s to %s", before or "(empty)", after)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    # Runs

    def create_run(
        self,
        *,
        namespace: str,
        name: str,
        uid: str,
        attempt: int,
        task_class: str,
        display_name: str | None,
        parameters: Mapping[str, Any],
        pod_name: str | None = None,
        parent_task_id: int | None = None,
        root_task_id: int | None = None,
        status: str = "Pending",
        secret_parameters: Collection[str] = (),
    ) -> int:
        """Insert the run row of one attempt with its parameters and first status, and return its id.

        ``secret_parameters`` names the parameters whose values come from a secret that never
        reaches the database. They are stored as the mask, flagged secret. A name that is also
        in ``parameters`` raises ParameterError. Idempotent on ``(uid, attempt)``: when that
        attempt already has a row, its id is returned and nothing is written, so a retried
        operator handler cannot create a second row.
        """
        rows = parameter_rows(0, run_parameter_values(parameters, secret_parameters), secret_parameters)
        with self._engine.begin() as connection:
            inserted = connection.execute(
                insert(task_run)
                .values(
                    namespace=namespace,
                    name=name,
                    uid=uid,
                    attempt=attempt,
                    task_class=task_class,
                    display_name=display_name,
                    status=status,
                    pod_name=pod_name,
                    parent_task_id=parent_task_id,
                    root_task_id=root_task_id,
                )
                .on_conflict_do_nothing(index_elements=["uid", "attempt"])
                .returning(task_run.c.id, task_run.c.created_at)
            ).one_or_none()

            if inserted is None:
                existing_id: int = connection.execute(
                    select(task_run.c.id).where(task_run.c.uid == uid, task_run.c.attempt == attempt)
                ).scalar_one()
                return existing_id

            task_id: int = inserted.id
            if rows:
                for row in rows:
                    row["task_id"] = task_id
                connection.execute(insert(task_parameter), rows)
            connection.execute(
                insert(task_status_history).values(
                    task_id=task_id, status=status, recorded_at=inserted.created_at
                )
            )
            return task_id

    def get_run(self, task_id: int) -> RunRecord:
        with self._engine.connect() as connection:
            row = connection.execute(select(*RUN_COLUMNS).where(task_run.c.id == task_id)).one_or_none()
        if row is None:
            raise TaskNotFoundError(task_id)
        return run_record(row)

    def runs_for(self, namespace: str, name: str) -> list[RunRecord]:
        """Return every attempt of the ETLTask ``namespace/name``, ordered by attempt."""
        query = (
            select(*RUN_COLUMNS)
            .where(task_run.c.namespace == namespace, task_run.c.name == name)
            .order_by(task_run.c.attempt, task_run.c.id)
        )
        with self._engine.connect() as connection:
            return [run_record(row) for row in connection.execute(query)]

    # Status

    def record_status(
        self,
        task_id: int,
        status: str,
        *,
        message: str | None = None,
        exit_code: int | None = None,
        at: datetime | None = None,
    ) -> None:
        """Set the run's status and append a status history row.

        ``message`` and ``exit_code`` replace the stored values only when given. The first
        ``Running`` sets ``started_at``, and the first terminal status sets ``finished_at``.
        Recording the current status again without a new message adds no history row.
        ``at`` defaults to the database server's clock.
        """
        if not status:
            raise ValueError("status must be a non-empty phase name, e.g. 'Running'")
        timestamp: ColumnElement[datetime] = (
            literal(at, DateTime(timezone=True)) if at is not None else func.now()
        )

        with self._engine.begin() as connection:
            current = connection.execute(
                select(
                    task_run.c.status,
                    task_run.c.message,
                    task_run.c.exit_code,
                    task_run.c.started_at,
                    task_run.c.finished_at,
                )
                .where(task_run.c.id == task_id)
                .with_for_update()
            ).one_or_none()
            if current is None:
                raise TaskNotFoundError(task_id)

            status_changed = status != current.status
            message_changed = message is not None and message != current.message
            changes: dict[str, Any] = {}
            if status_changed:
                changes["status"] = status
            if message_changed:
                changes["message"] = message
            if exit_code is not None and exit_code != current.exit_code:
                changes["exit_code"] = exit_code
            if status == RUNNING_STATUS and current.started_at is None:
                changes["started_at"] = timestamp
            if status in TERMINAL_STATUSES and current.finished_at is None:
                changes["finished_at"] = timestamp

            if changes:
                connection.execute(update(task_run).where(task_run.c.id == task_id).values(**changes))
            if status_changed or message_changed:
                connection.execute(
                    insert(task_status_history).values(
                        task_id=task_id, status=status, message=message, recorded_at=timestamp
                    )
                )

    def status_history(self, task_id: int) -> list[StatusChange]:
        """Return the run's status changes, oldest first."""
        query = (
            select(*HISTORY_COLUMNS)
            .where(task_status_history.c.task_id == task_id)
            .order_by(task_status_history.c.id)
        )
        with self._engine.connect() as connection:
            self._require_run(connection, task_id)
            return [StatusChange(**row._asdict()) for row in connection.execute(query)]

    def purge_runs(self, finished_before: datetime) -> int:
        """Delete the runs of every task tree whose runs all finished before `finished_before`.

        A tree is a root run with every run whose root_task_id points at it. A tree with one
        unfinished run, or one that finished later, is kept whole, so no kept run loses its parent
        or root. Parameters, statistics, status history and child requests go with their runs
        (ON DELETE CASCADE). Returns the number of runs deleted.
        """
        statement = text(
            """
            WITH tree AS (
                SELECT coalesce(root_task_id, id) AS root,
                       max(coalesce(finished_at, 'infinity'::timestamptz)) AS last_finished
                FROM task_run
                GROUP BY coalesce(root_task_id, id)
            )
            DELETE FROM task_run AS run
            USING tree
            WHERE coalesce(run.root_task_id, run.id) = tree.root AND tree.last_finished < :cutoff
            """
        )
        with self._engine.begin() as connection:
            result = connection.execute(statement, {"cutoff": finished_before})
        deleted = int(result.rowcount or 0)
        if deleted:
            log.info("purged %d task runs that finished before %s", deleted, finished_before.isoformat())
        return deleted

    def record_error(self, task_id: int, error: str) -> None:
        """Store the runtime's error text (a traceback summary) on the run row."""
        with self._engine.begin() as connection:
            result = connection.execute(update(task_run).where(task_run.c.id == task_id).values(error=error))
            if result.rowcount == 0:
                raise TaskNotFoundError(task_id)

    # Parameters

    def load_parameters(self, task_id: int) -> dict[str, Any]:
        """Return the run's parameters, keyed by their names as given."""
        query = select(task_parameter.c.name, task_parameter.c.value).where(
            task_parameter.c.task_id == task_id
        )
        with self._engine.connect() as connection:
            self._require_run(connection, task_id)
            return {row.name: row.value for row in connection.execute(query)}

    def parameter_records(self, task_id: int) -> list[StoredParameter]:
        """Return the run's parameters with their secret flags, in the order of ``load_parameters``.

        A secret parameter's value is the mask; its real value is not in the database.
        """
        query = select(task_parameter.c.name, task_parameter.c.value, task_parameter.c.secret).where(
            task_parameter.c.task_id == task_id
        )
        with self._engine.connect() as connection:
            self._require_run(connection, task_id)
            return [StoredParameter(row.name, row.value, row.secret) for row in connection.execute(query)]

    def set_parameters(
        self, task_id: int, values: Mapping[str, Any], *, secret_names: Collection[str] = ()
    ) -> None:
        """Insert or replace parameters. A name that differs only in case replaces the stored one.

        The parameters named in ``secret_names`` are stored as the mask and flagged secret. A
        parameter that is already secret stays secret and keeps the mask, whatever value comes.
        """
        rows = parameter_rows(task_id, values, secret_names)
        if not rows:
            return
        statement = insert(task_parameter)
        stored = task_parameter.c
        statement = statement.on_conflict_do_update(
            index_elements=["task_id", "key"],
            set_={
                "name": statement.excluded.name,
                "value": case((stored.secret, stored.value), else_=statement.excluded.value),
                "secret": stored.secret | statement.excluded.secret,
            },
        )
        with self._engine.begin() as connection:
            self._require_run(connection, task_id, lock=True)
            connection.execute(statement, rows)

    # Statistics

    def write_statistics(self, task_id: int, flat: Mapping[str, Any]) -> None:
        """Insert or replace statistics, given as dotted names and JSON values."""
        rows = []
        for name, value in flat.items():
            problem = json_problem(value)
            if problem is not None:
                raise ValueError(f"statistic {name!r} cannot be stored as JSON: {problem}")
            rows.append({"task_id": task_id, "name": name, "value": value})
        if not rows:
            return
        statement = insert(task_statistic)
        statement = statement.on_conflict_do_update(
            index_elements=["task_id", "name"], set_={"value": statement.excluded.value}
        )
        with self._engine.begin() as connection:
            self._require_run(connection, task_id, lock=True)
            connection.execute(statement, rows)

    def read_statistics(self, task_id: int) -> dict[str, Any]:
        """Return the run's statistics by dotted name, sorted by name."""
        query = (
            select(task_statistic.c.name, task_statistic.c.value)
            .where(task_statistic.c.task_id == task_id)
            .order_by(task_statistic.c.name)
        )
        with self._engine.connect() as connection:
            self._require_run(connection, task_id)
            return {row.name: row.value for row in connection.execute(query)}

    # Child requests

    def request_child(
        self,
        parent_task_id: int,
        task_class: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        display_name: str | None = None,
        needs_approval: bool = False,
    ) -> int:
        """Insert a request for a child run of task run ``parent_task_id`` and return the request id.

        A NOTIFY on ``CHILD_REQUEST_CHANNEL`` with the parent's task id goes out in the same
        transaction, so a listener receives it when the request is committed, and never before.
        Raises TaskNotFoundError when the parent run does not exist, and ParameterError for a
        parameter that cannot be stored as JSON.
        """
        task_class = task_class.strip()
        if not task_class:
            raise ValueError("task_class must be a non-empty module.Class name")
        values = dict(parameters or {})
        parameter_rows(parent_task_id, values)
        with self._engine.begin() as connection:
            self._require_run(connection, parent_task_id, lock=True)
            request_id: int = connection.execute(
                insert(task_child_request)
                .values(
                    parent_task_id=parent_task_id,
                    task_class=task_class,
                    display_name=display_name,
                    parameters=values,
                    needs_approval=needs_approval,
                )
                .returning(task_child_request.c.id)
            ).scalar_one()
            notify(connection, CHILD_REQUEST_CHANNEL, str(parent_task_id))
        return request_id

    def child_requests(
        self, parent_task_id: int | None = None, *, only_unassigned: bool = False
    ) -> list[ChildRequest]:
        """Return the child requests of one parent, or of every parent when None, oldest first.

        ``only_unassigned`` keeps the requests that have no child ETLTask recorded yet.
        """
        query = select(*CHILD_REQUEST_COLUMNS).order_by(task_child_request.c.id)
        if parent_task_id is not None:
            query = query.where(task_child_request.c.parent_task_id == parent_task_id)
        if only_unassigned:
            query = query.where(task_child_request.c.child_name.is_(None))
        with self._engine.connect() as connection:
            return [child_request_record(row) for row in connection.execute(query)]

    def get_child_request(self, request_id: int) -> ChildRequest:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(*CHILD_REQUEST_COLUMNS).where(task_child_request.c.id == request_id)
            ).one_or_none()
        if row is None:
            raise ChildRequestNotFoundError(request_id)
        return child_request_record(row)

    def assign_child(self, request_id: int, namespace: str, name: str) -> None:
        """Record the ETLTask that the operator created for a request.

        Recording the same ETLTask again changes nothing. Raises TaskDatabaseError when the
        request already names another ETLTask.
        """
        with self._engine.begin() as connection:
            current = self._lock_child_request(connection, request_id)
            if current.child_name is not None:
                if (current.child_namespace, current.child_name) != (namespace, name):
                    raise TaskDatabaseError(
                        f"child request {request_id} is already assigned to ETLTask "
                        f"{current.child_namespace}/{current.child_name}, not {namespace}/{name}"
                    )
                return
            connection.execute(
                update(task_child_request)
                .where(task_child_request.c.id == request_id)
                .values(child_namespace=namespace, child_name=name, updated_at=func.now())
            )

    def set_child_approval(self, request_id: int, approved: bool) -> None:
        """Approve or reject a request that needs approval, and NOTIFY ``CHILD_APPROVAL_CHANNEL``.

        The NOTIFY payload is the request id, sent when the transaction commits. Setting the same
        decision again changes nothing and sends no NOTIFY. Raises TaskDatabaseError when the
        request does not need approval or was already decided the other way.
        """
        decision = APPROVED if approved else REJECTED
        with self._engine.begin() as connection:
            current = self._lock_child_request(connection, request_id)
            if not current.needs_approval:
                raise TaskDatabaseError(
                    f"child request {request_id} does not need approval; its child starts without one"
                )
            if current.approval == decision:
                return
            if current.approval is not None:
                raise TaskDatabaseError(
                    f"child request {request_id} is already {current.approval}; a decision cannot change"
                )
            connection.execute(
                update(task_child_request)
                .where(task_child_request.c.id == request_id)
                .values(approval=decision, updated_at=func.now())
            )
            notify(connection, CHILD_APPROVAL_CHANNEL, str(request_id))

    def child_runs(self, parent_task_id: int) -> list[RunRecord]:
        """Return the newest run row of each ETLTask whose parent run is ``parent_task_id``.

        Each child ETLTask (namespace and name) has a row per attempt, and the newest row, the one
        with the highest id, stands for it. The rows are ordered by id.
        """
        newest_first = (
            func.row_number()
            .over(partition_by=(task_run.c.namespace, task_run.c.name), order_by=task_run.c.id.desc())
            .label("newest_first")
        )
        ranked = (
            select(*RUN_COLUMNS, newest_first).where(task_run.c.parent_task_id == parent_task_id).subquery()
        )
        query = (
            select(*(ranked.c[column.name] for column in RUN_COLUMNS))
            .where(ranked.c.newest_first == 1)
            .order_by(ranked.c.id)
        )
        with self._engine.connect() as connection:
            return [run_record(row) for row in connection.execute(query)]

    def _lock_child_request(self, connection: Connection, request_id: int) -> ChildRequest:
        row = connection.execute(
            select(*CHILD_REQUEST_COLUMNS).where(task_child_request.c.id == request_id).with_for_update()
        ).one_or_none()
        if row is None:
            raise ChildRequestNotFoundError(request_id)
        return child_request_record(row)

    def _require_run(self, connection: Connection, task_id: int, *, lock: bool = False) -> None:
        """Raise TaskNotFoundError unless the run exists.

        With ``lock``, the row also cannot be deleted until the transaction ends, so the rows that
        the caller inserts next cannot violate their foreign key.
        """
        query = select(task_run.c.id).where(task_run.c.id == task_id)
        if lock:
            query = query.with_for_update(key_share=True)
        found = connection.execute(query).one_or_none()
        if found is None:
            raise TaskNotFoundError(task_id)
