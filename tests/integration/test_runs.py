"""One ETLTask from manifest to database: success, failure, an unknown class, and schema rejections."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from etl_runtime.taskdb import TaskDatabase

from ..conftest import ClusterUnderTest
from .support import OperatorProcess, Tasks

pytestmark = pytest.mark.integration


def csv_rows(name: str) -> int:
    import importlib.util

    spec = importlib.util.find_spec("vega_datasets")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "_data" / name
    with path.open(newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def test_demo_job_loads_every_row(tasks: Tasks, taskdb: TaskDatabase, warehouse_url: str) -> None:
    tasks.create(
        "extract-weather",
        "warehouse.jobs.extract_weather.ExtractWeather",
        config={"secretName": "warehouse-config"},
        parameters={"batch_size": 250},
    )

    status = tasks.wait_until_finished("extract-weather", timeout=120)

    assert status["phase"] == "Succeeded", status
    run = taskdb.get_run(status["taskId"])
    assert run.status == "Succeeded"
    assert run.namespace == tasks.namespace
    assert run.started_at is not None
    assert run.finished_at is not None
    assert taskdb.load_parameters(run.id) == {"batch_size": 250}
    statistics = taskdb.read_statistics(run.id)
    expected = csv_rows("seattle-weather.csv")
    assert statistics["task.rows_read"] == expected
    assert statistics["task.rows_written"] == expected
    assert status["statistics"]["rowsRead"] == expected
    with create_engine(warehouse_url).connect() as connection:
        loaded = connection.execute(text("SELECT count(*) FROM stg_weather")).scalar_one()
    assert loaded == expected


def test_status_history_records_each_phase(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("history", parameters={"seconds": 0.1})
    status = tasks.wait_until_finished("history")
    phases = [change.status for change in taskdb.status_history(status["taskId"])]
    assert phases[0] == "Pending"
    assert phases[-3:] == ["Starting", "Running", "Succeeded"]


def test_failing_job_keeps_statistics(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("fails", "tests.jobs.Fail")

    status = tasks.wait_until_finished("fails")

    assert status["phase"] == "Failed"
    assert "RuntimeError" in status["message"]
    assert status["exitCode"] == 1
    run = taskdb.get_run(status["taskId"])
    assert run.status == "Failed"
    assert run.error is not None and "Fail job raised on purpose" in run.error
    assert taskdb.read_statistics(run.id)["task.rows_read"] == 2


def test_unknown_class_fails_naming_it(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("unknown", "tests.jobs.DoesNotExist")

    status = tasks.wait_until_finished("unknown")

    assert status["phase"] == "Failed"
    assert "tests.jobs.DoesNotExist" in status["message"]
    assert taskdb.get_run(status["taskId"]).status == "Failed"


def test_pod_is_owned_and_named_by_attempt(tasks: Tasks) -> None:
    tasks.create("owned", parameters={"seconds": 0.1})
    status = tasks.wait_until_finished("owned")
    pod = tasks.core.read_namespaced_pod(status["podName"], tasks.namespace)
    assert status["podName"] == "owned-1"
    assert pod.metadata.owner_references[0].kind == "ETLTask"
    assert pod.metadata.owner_references[0].name == "owned"
    assert pod.spec.restart_policy == "Never"
    assert pod.metadata.labels["etl.kube-etl.io/task"] == "owned"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "spec.task"),
        ({"task": 42}, "spec.task"),
        ({"task": "tests.jobs.Sleep", "parameters": "not-a-map"}, "spec.parameters"),
        ({"task": "tests.jobs.Sleep", "retries": {"limit": -1}}, "spec.retries.limit"),
        ({"task": "tests.jobs.Sleep", "dependsOn": [{"name": "a", "task": "b.*"}]}, "spec.dependsOn[0]"),
    ],
    ids=[
        "missing-task",
        "task-not-string",
        "parameters-not-object",
        "negative-retries",
        "dependency-both-kinds",
    ],
)
def test_invalid_manifest_is_rejected(tasks: Tasks, spec: dict[str, Any], field: str) -> None:
    manifest = tasks.manifest("invalid", "placeholder")
    manifest["spec"] = spec
    with pytest.raises(ApiException) as caught:
        tasks.create_manifest(manifest)
    assert caught.value.status == 422
    assert field in str(caught.value.body)


def test_finished_task_is_deleted_after_ttl(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("short-lived", parameters={"seconds": 0.1}, ttlSecondsAfterFinished=1)
    status = tasks.wait_until_finished("short-lived")

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "short-lived" in tasks.task_names():
        time.sleep(0.2)

    assert "short-lived" not in tasks.task_names()
    assert taskdb.get_run(status["taskId"]).status == "Succeeded"


def test_database_password_never_leaks(
    tasks: Tasks, taskdb: TaskDatabase, operator: OperatorProcess, test_cluster: ClusterUnderTest
) -> None:
    password = make_url(test_cluster.taskdb_url).password
    assert password
    tasks.create("leak-ok", parameters={"seconds": 0.1})
    tasks.create("leak-fail", "tests.jobs.Fail")
    statuses = [tasks.wait_until_finished(name) for name in ("leak-ok", "leak-fail")]

    events = tasks.core.list_namespaced_event(tasks.namespace).items
    pods = [tasks.core.read_namespaced_pod(status["podName"], tasks.namespace) for status in statuses]
    places = {
        "operator log": operator.log(),
        "statuses": json.dumps(statuses),
        "events": " ".join(str(event.message) for event in events),
        "pod specs": " ".join(str(pod.spec) for pod in pods),
    }
    with taskdb.engine.connect() as connection:
        for table in ("task_run", "task_parameter", "task_statistic", "task_status_history"):
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()
            places[f"table {table}"] = " ".join(str(row) for row in rows)
    for place, content in places.items():
        assert password not in content, f"the task database password appears in the {place}"


def test_rerun_under_same_name_gets_new_pod(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("rerun-me", parameters={"seconds": 0.1})
    first = tasks.wait_until_finished("rerun-me")
    tasks.delete("rerun-me")
    deadline = time.monotonic() + 30
    while "rerun-me" in tasks.task_names() and time.monotonic() < deadline:
        time.sleep(0.1)

    tasks.create("rerun-me", parameters={"seconds": 0.1})
    second = tasks.wait_until_finished("rerun-me")

    assert first["phase"] == "Succeeded"
    assert second["phase"] == "Succeeded", second["message"]
    assert second["taskId"] != first["taskId"]
    run = taskdb.get_run(second["taskId"])
    assert run.started_at is not None
    assert taskdb.read_statistics(run.id)["task.rows_read"] == 1


def test_unknown_class_is_not_retried(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("hopeless", "tests.jobs.DoesNotExist", retries={"limit": 2, "backoffSeconds": 1})

    status = tasks.wait_until_finished("hopeless")

    assert status["phase"] == "Failed"
    assert [run.attempt for run in taskdb.runs_for(tasks.namespace, "hopeless")] == [1]


def test_missing_config_secret_is_reported(tasks: Tasks) -> None:
    tasks.create("no-config", config={"secretName": "does-not-exist"}, parameters={"seconds": 0.1})

    stuck = tasks.wait_for(
        "no-config",
        lambda status: "cannot start" in (status.get("message") or ""),
        description="a message saying why the pod cannot start",
    )
    assert stuck["phase"] == "Starting"
    assert "does-not-exist" in stuck["message"]

    tasks.core.create_namespaced_secret(
        tasks.namespace, {"metadata": {"name": "does-not-exist"}, "stringData": {"config.ini": "[x]\n"}}
    )
    assert tasks.wait_until_finished("no-config", timeout=60)["phase"] == "Succeeded"


def events_of(tasks: Tasks, name: str) -> list[Any]:
    return list(
        tasks.core.list_namespaced_event(tasks.namespace, field_selector=f"involvedObject.name={name}").items
    )


def test_invalid_spec_posts_warning_event(tasks: Tasks) -> None:
    # A name in both parameters and secretParameters passes the schema; only the operator can reject it.
    tasks.create(
        "twice-named",
        parameters={"token": "x"},
        secretParameters=[{"name": "token", "secretKeyRef": {"name": "s", "key": "k"}}],
    )

    status = tasks.wait_until_finished("twice-named")
    deadline = time.monotonic() + 10
    while not events_of(tasks, "twice-named") and time.monotonic() < deadline:
        time.sleep(0.1)

    assert status["phase"] == "Failed"
    complete = {item["type"]: item for item in status["conditions"]}["Complete"]
    assert complete["status"] == "False"
    assert complete["reason"] == "InvalidSpec"
    events = events_of(tasks, "twice-named")
    assert [(event.type, event.reason) for event in events] == [("Warning", "InvalidSpec")]
    assert "invalid spec: parameter 'token'" in events[0].message


def test_edit_after_finish_is_reported(tasks: Tasks) -> None:
    tasks.create("edited-late", parameters={"seconds": 0})
    finished = tasks.wait_until_finished("edited-late")

    edited = tasks.patch_spec("edited-late", {"parameters": {"seconds": 5}})
    status = tasks.wait_for(
        "edited-late",
        lambda status: status.get("observedGeneration") == edited["metadata"]["generation"],
        description="the edit to be seen",
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ignored = [event for event in events_of(tasks, "edited-late") if event.reason == "SpecChangeIgnored"]
        if ignored:
            break
        time.sleep(0.1)

    assert finished["phase"] == "Succeeded"
    assert status["phase"] == "Succeeded"
    assert status["completionTime"] == finished["completionTime"]
    assert len(ignored) == 1
    assert ignored[0].type == "Warning"
    assert "delete the ETLTask and create it anew" in ignored[0].message
    assert tasks.pod_names() == {"edited-late-1"}
