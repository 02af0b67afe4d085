"""Secret parameters on the real control plane: the value travels from a Secret to the job, nowhere else.

The job (`tests.jobs.CheckSecretToken`) gets only the SHA-256 of the expected value as an ordinary
parameter, so a match proves that it received the real value. The value itself must appear in no
place that the operator or the runtime writes: the ETLTask, Events, the pod spec, the operator's
log, the job's log and the task database.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from sqlalchemy import text

from etl_runtime import SECRET_MASK
from etl_runtime.taskdb import TaskDatabase

from ..conftest import ClusterUnderTest
from .support import OperatorProcess, Tasks

pytestmark = pytest.mark.integration

API_TOKEN = {"name": "api_token", "secretKeyRef": {"name": "weather-api", "key": "token"}}


def create_secret(tasks: Tasks, name: str, data: dict[str, str]) -> None:
    tasks.core.create_namespaced_secret(tasks.namespace, {"metadata": {"name": name}, "stringData": data})


def pod_log(tasks: Tasks, test_cluster: ClusterUnderTest, pod: str) -> str:
    """Return the job's log: from the pod runner's folder on the local cluster, else from the kubelet."""
    if test_cluster.local is None:
        log: str = tasks.core.read_namespaced_pod_log(pod, tasks.namespace)
        return log
    folder = test_cluster.local.state_dir / "pods" / f"{tasks.namespace}_{pod}"
    return "".join(path.read_text(errors="replace") for path in sorted(folder.glob("*.log")))


def test_secret_parameter_reaches_job_and_nothing_else(
    tasks: Tasks,
    taskdb: TaskDatabase,
    operator: OperatorProcess | None,
    test_cluster: ClusterUnderTest,
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    expected_sha256 = hashlib.sha256(token.encode()).hexdigest()
    create_secret(tasks, "weather-api", {"token": token})
    tasks.create(
        "secret-token",
        "tests.jobs.CheckSecretToken",
        parameters={"expected_sha256": expected_sha256},
        secretParameters=[API_TOKEN],
    )
    tasks.create(
        "secret-token-fails",
        "tests.jobs.CheckSecretToken",
        parameters={"expected_sha256": expected_sha256, "fail": True},
        secretParameters=[API_TOKEN],
    )

    status = tasks.wait_until_finished("secret-token", timeout=120)
    failed = tasks.wait_until_finished("secret-token-fails", timeout=120)

    assert status["phase"] == "Succeeded", status
    task_id = status["taskId"]
    statistics = taskdb.read_statistics(task_id)
    assert statistics["task.token_matches"] is True
    assert statistics["task.token_length"] == len(token)
    assert taskdb.load_parameters(task_id)["api_token"] == SECRET_MASK
    assert {record.name: record.secret for record in taskdb.parameter_records(task_id)} == {
        "expected_sha256": False,
        "api_token": True,
    }

    pod = tasks.core.read_namespaced_pod(status["podName"], tasks.namespace)
    [variable] = [
        item for item in pod.spec.containers[0].env if item.name == "KUBE_ETL_SECRET_PARAMETER_API_TOKEN"
    ]
    assert variable.value is None
    assert (variable.value_from.secret_key_ref.name, variable.value_from.secret_key_ref.key) == (
        "weather-api",
        "token",
    )
    job_log = pod_log(tasks, test_cluster, status["podName"])
    assert f"calling the API with token {SECRET_MASK}" in job_log

    assert failed["phase"] == "Failed", failed
    assert f"RuntimeError: the API rejected token {SECRET_MASK}" in failed["message"]
    assert f"the API rejected token {SECRET_MASK}" in (taskdb.get_run(failed["taskId"]).error or "")
    assert taskdb.read_statistics(failed["taskId"])["task.token_matches"] is True

    events = tasks.core.list_namespaced_event(tasks.namespace).items
    failed_pod = tasks.core.read_namespaced_pod(failed["podName"], tasks.namespace)
    places: dict[str, str] = {
        "ETLTasks": json.dumps([tasks.get("secret-token"), tasks.get("secret-token-fails")]),
        "events": " ".join(f"{event.reason} {event.message}" for event in events),
        "pod specs": f"{pod.spec} {failed_pod.spec}",
        "pod statuses": f"{pod.status} {failed_pod.status}",
        "job logs": job_log + pod_log(tasks, test_cluster, failed["podName"]),
    }
    if operator is not None:
        places["operator log"] = operator.log()
    run_columns = {"task_run": "id", "task_parameter": "task_id", "task_statistic": "task_id"}
    run_columns["task_status_history"] = "task_id"
    with taskdb.engine.connect() as connection:
        for table, column in run_columns.items():
            for run_id in (task_id, failed["taskId"]):
                rows = connection.execute(text(f"SELECT * FROM {table} WHERE {column} = :id"), {"id": run_id})
                places[f"table {table}"] = places.get(f"table {table}", "") + str(rows.all())
    for place, content in places.items():
        assert token not in content, f"the secret value appears in the {place}"


def test_missing_secret_and_key_are_named(tasks: Tasks, taskdb: TaskDatabase) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    tasks.create(
        "needs-token",
        "tests.jobs.CheckSecretToken",
        parameters={"expected_sha256": hashlib.sha256(token.encode()).hexdigest()},
        secretParameters=[API_TOKEN],
    )

    def stuck_on(fragment: str) -> dict[str, Any]:
        return tasks.wait_for(
            "needs-token",
            lambda status: fragment in (status.get("message") or ""),
            description=f"a message saying why the pod cannot start, with {fragment!r}",
        )

    no_secret = stuck_on('"weather-api"')
    assert no_secret["phase"] == "Starting"
    assert "secret parameter api_token needs key token in Secret weather-api" in no_secret["message"]

    create_secret(tasks, "weather-api", {"other": "x"})
    no_key = stuck_on("couldn't find key token")
    assert "secret parameter api_token needs key token in Secret weather-api" in no_key["message"]

    tasks.core.patch_namespaced_secret("weather-api", tasks.namespace, {"stringData": {"token": token}})
    status = tasks.wait_until_finished("needs-token", timeout=60)
    assert status["phase"] == "Succeeded", status
    assert taskdb.read_statistics(status["taskId"])["task.token_matches"] is True


def test_parameter_in_both_fails_naming_it(tasks: Tasks) -> None:
    tasks.create(
        "token-twice",
        "tests.jobs.CheckSecretToken",
        parameters={"API_TOKEN": "in clear"},
        secretParameters=[API_TOKEN],
    )

    status = tasks.wait_until_finished("token-twice")

    assert status["phase"] == "Failed"
    assert "parameter 'API_TOKEN' is in spec.parameters" in status["message"]
    assert "remove it from spec.parameters" in status["message"]
    assert not tasks.pods()


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"name": "api-token", "secretKeyRef": {"name": "s", "key": "k"}}, "spec.secretParameters[0].name"),
        ({"name": "api_token", "secretKeyRef": {"name": "s"}}, "spec.secretParameters[0].secretKeyRef.key"),
        ({"name": "api_token"}, "spec.secretParameters[0].secretKeyRef"),
    ],
    ids=["name-not-identifier", "no-key", "no-reference"],
)
def test_invalid_secret_parameter_is_rejected(tasks: Tasks, entry: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiException) as caught:
        tasks.create("invalid", "tests.jobs.Sleep", secretParameters=[entry])

    assert caught.value.status == 422
    assert field in str(caught.value.body)
