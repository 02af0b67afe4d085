"""TaskDatabase against a real Postgres: runs, status, parameters, statistics and migrations."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from etl_runtime.taskdb import (
    TERMINAL_STATUSES,
    ParameterError,
    TaskDatabase,
    TaskDatabaseError,
    TaskNotFoundError,
)


def new_run(database: TaskDatabase, **overrides: Any) -> int:
    values: dict[str, Any] = {
        "namespace": "analytics",
        "name": "load-fact-weather",
        "uid": str(uuid.uuid4()),
        "attempt": 1,
        "task_class": "warehouse.jobs.load_fact_weather.LoadFactWeather",
        "display_name": "Load weather facts",
        "parameters": {"as_of": "2026-12-01", "full_reload": False},
    }
    values.update(overrides)
    return database.create_run(**values)


def test_upgrade_creates_tables(taskdb_url: str) -> None:
    engine = create_engine(taskdb_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()

    assert {"task_run", "task_parameter", "task_status_history", "task_statistic"} <= tables
    assert "alembic_version" in tables


def test_upgrade_twice_changes_nothing(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)

    task_database.upgrade()

    assert task_database.get_run(task_id).id == task_id


def test_concurrent_upgrades_all_succeed(empty_database_url: str) -> None:
    script = "import sys; from etl_runtime.taskdb import TaskDatabase; TaskDatabase(sys.argv[1]).upgrade()"
    command = [sys.executable, "-c", script, empty_database_url]
    processes = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr

    database = TaskDatabase(empty_database_url)
    try:
        with database.engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        database.dispose()
    assert len(versions) == 1


def test_create_run_stores_columns_and_parameters(task_database: TaskDatabase) -> None:
    parent_id = new_run(task_database, name="nightly-batch")
    task_id = new_run(
        task_database,
        pod_name="load-fact-weather-1",
        parent_task_id=parent_id,
        root_task_id=parent_id,
        parameters={"As_Of": "2026-12-01", "limits": {"rows": 10, "tags": ["a", None]}},
    )

    run = task_database.get_run(task_id)

    assert run.namespace == "analytics"
    assert run.name == "load-fact-weather"
    assert run.attempt == 1
    assert run.status == "Pending"
    assert run.pod_name == "load-fact-weather-1"
    assert run.parent_task_id == parent_id
    assert run.root_task_id == parent_id
    assert run.display_name == "Load weather facts"
    assert run.created_at.tzinfo is not None
    assert run.started_at is None
    assert run.finished_at is None
    assert task_database.load_parameters(task_id) == {
        "As_Of": "2026-12-01",
        "limits": {"rows": 10, "tags": ["a", None]},
    }
    assert [change.status for change in task_database.status_history(task_id)] == ["Pending"]


def test_create_run_is_idempotent(task_database: TaskDatabase) -> None:
    uid = str(uuid.uuid4())
    first = new_run(task_database, uid=uid, parameters={"a": 1})
    second = new_run(task_database, uid=uid, parameters={"a": 2, "b": 3}, status="Running")

    assert second == first
    assert task_database.load_parameters(first) == {"a": 1}
    assert task_database.get_run(first).status == "Pending"
    assert len(task_database.status_history(first)) == 1


def test_attempts_get_separate_rows(task_database: TaskDatabase) -> None:
    uid = str(uuid.uuid4())
    second = new_run(task_database, uid=uid, attempt=2)
    first = new_run(task_database, uid=uid, attempt=1)

    runs = task_database.runs_for("analytics", "load-fact-weather")

    assert first != second
    assert [run.attempt for run in runs] == [1, 2]
    assert [run.id for run in runs] == [first, second]


def test_create_run_rejects_unserialisable_parameter(task_database: TaskDatabase) -> None:
    with pytest.raises(ParameterError, match="'as_of'"):
        new_run(task_database, parameters={"as_of": datetime.now(UTC)})

    assert task_database.runs_for("analytics", "load-fact-weather") == []


def test_create_run_rejects_nan_parameter(task_database: TaskDatabase) -> None:
    with pytest.raises(ParameterError, match="'ratio'"):
        new_run(task_database, parameters={"ratio": float("nan")})


def test_create_run_rejects_case_duplicates(task_database: TaskDatabase) -> None:
    with pytest.raises(ParameterError, match="differ only in case"):
        new_run(task_database, parameters={"Limit": 1, "limit": 2})


def test_record_status_sets_timestamps(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    finished = datetime(2026, 1, 2, 3, 9, 5, tzinfo=UTC)

    task_database.record_status(task_id, "Starting")
    task_database.record_status(task_id, "Running", at=started)
    task_database.record_status(task_id, "Succeeded", message="done", exit_code=0, at=finished)
    run = task_database.get_run(task_id)

    assert run.status == "Succeeded"
    assert run.started_at == started
    assert run.finished_at == finished
    assert run.exit_code == 0
    assert run.message == "done"


def test_record_status_keeps_first_started_at(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)
    first = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)

    task_database.record_status(task_id, "Running", at=first)
    task_database.record_status(task_id, "Waiting")
    task_database.record_status(task_id, "Running", at=datetime(2026, 1, 2, 4, 0, 0, tzinfo=UTC))

    assert task_database.get_run(task_id).started_at == first


def test_record_status_appends_history(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)

    task_database.record_status(task_id, "Waiting", message="waiting for extract-weather")
    task_database.record_status(task_id, "Running")
    task_database.record_status(task_id, "Failed", message="exit code 1", exit_code=1)
    history = task_database.status_history(task_id)

    assert [change.status for change in history] == ["Pending", "Waiting", "Running", "Failed"]
    assert [change.message for change in history] == [
        None,
        "waiting for extract-weather",
        None,
        "exit code 1",
    ]
    assert all(change.task_id == task_id for change in history)
    assert history[0].recorded_at <= history[-1].recorded_at


def test_repeated_status_adds_no_row(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)

    task_database.record_status(task_id, "Waiting", message="waiting for a")
    task_database.record_status(task_id, "Waiting")
    task_database.record_status(task_id, "Waiting", message="waiting for a")

    assert len(task_database.status_history(task_id)) == 2


def test_repeated_status_with_new_message_adds_row(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)

    task_database.record_status(task_id, "Waiting", message="waiting for a")
    task_database.record_status(task_id, "Waiting", message="waiting for b")

    assert len(task_database.status_history(task_id)) == 3
    assert task_database.get_run(task_id).message == "waiting for b"


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_terminal_status_sets_finished_at(task_database: TaskDatabase, status: str) -> None:
    task_id = new_run(task_database)

    task_database.record_status(task_id, status)

    assert task_database.get_run(task_id).finished_at is not None


def test_nonterminal_status_leaves_finished_at(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)

    task_database.record_status(task_id, "Retrying")

    assert task_database.get_run(task_id).finished_at is None


def test_unknown_task_id_raises(task_database: TaskDatabase) -> None:
    missing = 987_654_321

    with pytest.raises(TaskNotFoundError, match="987654321"):
        task_database.get_run(missing)
    with pytest.raises(TaskNotFoundError):
        task_database.record_status(missing, "Running")
    with pytest.raises(TaskNotFoundError):
        task_database.record_error(missing, "boom")
    with pytest.raises(TaskNotFoundError):
        task_database.set_parameters(missing, {"a": 1})
    with pytest.raises(TaskNotFoundError):
        task_database.write_statistics(missing, {"a": 1})
    with pytest.raises(TaskNotFoundError):
        task_database.load_parameters(missing)


def test_set_parameters_upserts_case_insensitively(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database, parameters={"Batch_Size": 100, "mode": "full"})

    task_database.set_parameters(task_id, {"batch_size": 500, "extra": [1, 2]})

    assert task_database.load_parameters(task_id) == {"batch_size": 500, "mode": "full", "extra": [1, 2]}


def test_none_parameter_round_trips(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database, parameters={"cutoff": None})

    assert task_database.load_parameters(task_id) == {"cutoff": None}


def test_set_parameters_rejects_object(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)

    with pytest.raises(ParameterError, match="'handle'"):
        task_database.set_parameters(task_id, {"handle": object()})


def test_statistics_upsert_and_read(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)

    task_database.write_statistics(task_id, {"task.rows_read": 10, "task.load.seconds": 1.5})
    task_database.write_statistics(task_id, {"task.rows_read": 12, "reader.rows_read": 7})

    assert task_database.read_statistics(task_id) == {
        "reader.rows_read": 7,
        "task.load.seconds": 1.5,
        "task.rows_read": 12,
    }


def test_record_error_stores_text(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)

    task_database.record_error(task_id, "RuntimeError: boom")

    assert task_database.get_run(task_id).error == "RuntimeError: boom"


def test_deleting_run_removes_dependent_rows(task_database: TaskDatabase) -> None:
    task_id = new_run(task_database)
    task_database.write_statistics(task_id, {"task.rows_read": 1})
    child_id = new_run(task_database, name="child", parent_task_id=task_id, root_task_id=task_id)

    with task_database.engine.begin() as connection:
        connection.execute(text("DELETE FROM task_run WHERE id = :id"), {"id": task_id})
        leftovers = {
            table: connection.execute(
                text(f"SELECT count(*) FROM {table} WHERE task_id = :id"), {"id": task_id}
            ).scalar_one()
            for table in ("task_parameter", "task_status_history", "task_statistic")
        }

    assert leftovers == {"task_parameter": 0, "task_status_history": 0, "task_statistic": 0}
    assert task_database.get_run(child_id).parent_task_id is None


def test_from_env_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBE_ETL_DATABASE_URL", raising=False)

    with pytest.raises(TaskDatabaseError, match="KUBE_ETL_DATABASE_URL"):
        TaskDatabase.from_env()


def test_plain_postgresql_url_uses_psycopg() -> None:
    database = TaskDatabase("postgresql://user:secret@127.0.0.1:1/db")

    assert database.engine.url.drivername == "postgresql+psycopg"
    assert "secret" not in repr(database)


def test_purge_removes_old_trees_without_orphans(task_database: TaskDatabase) -> None:
    def run(name: str, *, parent: int | None = None, root: int | None = None) -> int:
        return task_database.create_run(
            namespace="purge",
            name=name,
            uid=f"uid-{name}",
            attempt=1,
            task_class="jobs.Example",
            display_name=None,
            parameters={"p": 1},
            parent_task_id=parent,
            root_task_id=root,
        )

    old_root = run("old-root")
    old_child = run("old-child", parent=old_root, root=old_root)
    mixed_root = run("mixed-root")
    mixed_child = run("mixed-child", parent=mixed_root, root=mixed_root)
    unfinished = run("unfinished")
    for task_id in (old_root, old_child, mixed_root):
        task_database.write_statistics(task_id, {"task.rows_read": 1})
        task_database.record_status(task_id, "Succeeded")
    task_database.request_child(old_root, "jobs.Example")
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    time.sleep(1.1)
    task_database.record_status(mixed_child, "Succeeded")

    deleted = task_database.purge_runs(cutoff)

    assert deleted == 2
    for task_id in (old_root, old_child):
        with pytest.raises(TaskNotFoundError):
            task_database.get_run(task_id)
    assert task_database.get_run(mixed_child).parent_task_id == mixed_root
    assert task_database.get_run(unfinished).status == "Pending"
    with task_database.engine.connect() as connection:
        for table in ("task_parameter", "task_statistic", "task_status_history", "task_child_request"):
            column = "parent_task_id" if table == "task_child_request" else "task_id"
            orphans = connection.execute(
                text(f"SELECT count(*) FROM {table} WHERE {column} NOT IN (SELECT id FROM task_run)")
            ).scalar_one()
            assert orphans == 0, table
