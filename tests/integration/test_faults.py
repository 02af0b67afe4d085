"""Faults while tasks run: the operator killed again and again, stopped politely, pods lost, and the
apiserver restarted under the operator."""

from __future__ import annotations

import random
import signal
import time
from itertools import combinations

import pytest

from etl_runtime.taskdb import TaskDatabase

from ..conftest import ClusterUnderTest
from .support import TERMINAL, OperatorProcess, Tasks, strand_task_on_lost_node
from .test_scheduling import interval

pytestmark = pytest.mark.integration

KILLS = 30


def create_dag(tasks: Tasks) -> dict[str, list[str]]:
    """Create a DAG of 12 tasks whose loads share one lock; return each task's dependencies."""
    dag: dict[str, list[str]] = {
        "extract-a": [],
        "extract-b": [],
        "extract-c": [],
        "dimension": ["extract-a", "extract-b"],
        "load-1": ["dimension"],
        "load-2": ["dimension"],
        "load-3": ["dimension", "extract-c"],
        "load-4": ["extract-c"],
        "load-5": ["extract-c"],
        "report-1": ["load-1", "load-2"],
        "report-2": ["load-3", "load-4", "load-5"],
        "summary": ["report-1", "report-2"],
    }
    for name, dependencies in dag.items():
        spec: dict[str, object] = {
            "dependsOn": [{"name": dependency} for dependency in dependencies],
            "parameters": {"seconds": 0.4},
            "allowConcurrentRuns": True,
        }
        if name.startswith("load-"):
            spec["mutuallyExclusiveWith"] = ["warehouse-lock"]
        tasks.create(name, **spec)  # type: ignore[arg-type]
    return dag


def test_operator_killed_thirty_times_loses_nothing(
    tasks: Tasks, operator: OperatorProcess, taskdb: TaskDatabase
) -> None:
    randomness = random.Random(20261204)
    dag = create_dag(tasks)

    for _ in range(KILLS):
        time.sleep(randomness.uniform(0.0, 1.5))
        operator.kill()
        time.sleep(randomness.uniform(0.0, 0.5))
        operator.start()

    statuses = {name: tasks.wait_until_finished(name, timeout=180) for name in dag}

    assert {name: status["phase"] for name, status in statuses.items()} == dict.fromkeys(dag, "Succeeded")
    assert tasks.pod_names() == {f"{name}-1" for name in dag}
    intervals = {name: interval(taskdb, status["taskId"]) for name, status in statuses.items()}
    for name, dependencies in dag.items():
        for dependency in dependencies:
            assert intervals[dependency][1] <= intervals[name][0], f"{name} started before {dependency} ended"
    loads = [name for name in dag if name.startswith("load-")]
    for first, second in combinations(loads, 2):
        (start_a, end_a), (start_b, end_b) = intervals[first], intervals[second]
        assert end_a <= start_b or end_b <= start_a, f"{first} and {second} overlapped"
    for name, status in statuses.items():
        runs = taskdb.runs_for(tasks.namespace, name)
        assert [run.attempt for run in runs] == [1]
        assert runs[0].status == status["phase"]
        assert runs[0].id == status["taskId"]


def test_polite_stop_keeps_pods_running(tasks: Tasks, operator: OperatorProcess) -> None:
    tasks.create("long", parameters={"seconds": 3})
    tasks.wait_for_phase("long", "Running")

    operator.stop(signal.SIGTERM)
    pod = tasks.core.read_namespaced_pod("long-1", tasks.namespace)
    assert pod.metadata.deletion_timestamp is None
    assert pod.status.phase == "Running"
    operator.start()

    assert tasks.wait_until_finished("long")["phase"] == "Succeeded"
    assert tasks.pod_names() == {"long-1"}


def test_pod_deleted_by_hand_fails_the_attempt(tasks: Tasks) -> None:
    tasks.create("victim", parameters={"seconds": 300})
    tasks.wait_for_phase("victim", "Running")

    tasks.core.delete_namespaced_pod("victim-1", tasks.namespace)

    status = tasks.wait_until_finished("victim", timeout=60)
    assert status["phase"] == "Failed"
    assert status["phase"] in TERMINAL


def test_deadline_exceeded_fails_with_reason(tasks: Tasks) -> None:
    tasks.create("slow", parameters={"seconds": 60}, activeDeadlineSeconds=1)

    status = tasks.wait_until_finished("slow", timeout=60)

    assert status["phase"] == "Failed"
    conditions = {item["type"]: item for item in status["conditions"]}
    assert conditions["Complete"]["reason"] == "DeadlineExceeded"


def test_database_outage_delays_but_loses_nothing(
    tasks: Tasks, taskdb: TaskDatabase, test_cluster: ClusterUnderTest
) -> None:
    if test_cluster.local is None:
        pytest.skip("stopping the task database needs the local cluster's Postgres")
    postgres = test_cluster.local.postgres
    postgres.halt()
    try:
        tasks.create("during-outage", parameters={"seconds": 0.1})
        stuck = tasks.wait_for(
            "during-outage",
            lambda status: any(
                item["type"] == "TaskDatabaseReady" and item["status"] == "False"
                for item in status.get("conditions") or ()
            ),
            description="TaskDatabaseReady=False",
        )
        assert "unreachable" in stuck["conditions"][0]["message"]
        assert tasks.pod_names() == set()
    finally:
        postgres.resume()

    status = tasks.wait_until_finished("during-outage", timeout=90)

    assert status["phase"] == "Succeeded"
    conditions = {item["type"]: item for item in status["conditions"]}
    assert conditions["TaskDatabaseReady"]["status"] == "True"
    history = [change.status for change in taskdb.status_history(status["taskId"])]
    assert history[-3:] == ["Starting", "Running", "Succeeded"]


def test_lost_node_fails_running_attempt(tasks: Tasks, test_cluster: ClusterUnderTest) -> None:
    local = test_cluster.local
    if local is None or local.runner is None:
        pytest.skip("losing the node needs the local cluster's pod runner")
    status = strand_task_on_lost_node(tasks, local.runner.pid, local.restart_pod_runner)

    assert status["phase"] == "Failed"
    conditions = {item["type"]: item for item in status["conditions"]}
    assert conditions["Complete"]["reason"] == "PodLost"
    assert "may be lost" in status["message"]


def test_standby_replica_takes_over(
    tasks: Tasks, operator: OperatorProcess, test_cluster: ClusterUnderTest, taskdb: TaskDatabase
) -> None:
    # The session's operator watches the whole cluster and would act beside the replicas.
    operator.stop()
    environment = test_cluster.operator_environment()
    arguments = [f"--leader-election={tasks.namespace}/kube-etl-operator"]
    first = OperatorProcess(environment, test_cluster.work_dir, arguments=arguments, name="replica-a")
    second = OperatorProcess(environment, test_cluster.work_dir, arguments=arguments, name="replica-b")
    try:
        first.start()
        second.start(ready_line="standing by")
        tasks.create("before-failover", mutuallyExclusiveWith=["lock"], parameters={"seconds": 0.2})
        assert tasks.wait_until_finished("before-failover")["phase"] == "Succeeded"
        assert "kube-etl operator started" not in second.log()

        first.kill()
        killed_at = time.monotonic()
        tasks.create("after-failover", mutuallyExclusiveWith=["lock"], parameters={"seconds": 0.2})
        status = tasks.wait_until_finished("after-failover", timeout=60)
        takeover_seconds = time.monotonic() - killed_at
    finally:
        first.stop()
        second.stop()

    assert status["phase"] == "Succeeded"
    assert "kube-etl operator started" in second.log()
    # A killed leader's Lease expires after 15 s; the standby checks every 5 s.
    assert takeover_seconds < 30
    assert taskdb.get_run(status["taskId"]).status == "Succeeded"


def test_database_outage_during_run_keeps_statistics(
    tasks: Tasks, taskdb: TaskDatabase, test_cluster: ClusterUnderTest
) -> None:
    if test_cluster.local is None:
        pytest.skip("stopping the task database needs the local cluster's Postgres")
    postgres = test_cluster.local.postgres
    tasks.create("through-outage", parameters={"seconds": 2})
    tasks.wait_for_phase("through-outage", "Running")

    postgres.halt()
    try:
        # The job finishes while the database is down, so its statistics wait for it.
        time.sleep(6)
    finally:
        postgres.resume()

    status = tasks.wait_until_finished("through-outage", timeout=120)
    assert status["phase"] == "Succeeded", status["message"]
    assert taskdb.read_statistics(status["taskId"])["task.rows_read"] == 1
    history = [change.status for change in taskdb.status_history(status["taskId"])]
    assert history[-2:] == ["Running", "Succeeded"]


def test_api_server_restart_mid_run(
    tasks: Tasks, operator: OperatorProcess, taskdb: TaskDatabase, test_cluster: ClusterUnderTest
) -> None:
    local = test_cluster.local
    if local is None:
        pytest.skip(
            "restarting kube-apiserver needs the local cluster's control plane, and "
            "KUBE_ETL_TEST_KUBECONFIG names another cluster"
        )
    # The Sleep tasks allow concurrent runs, so that only their dependencies order them.
    # The apiserver rejects new connections from its SIGTERM on, and is back only after 5 s down and its
    # start. In that time "short" ends and the parent requests its child. "long" runs on after the
    # apiserver is back, and the other two wait on their dependencies through the restart.
    tasks.create("short", parameters={"seconds": 2}, allowConcurrentRuns=True)
    tasks.create("long", parameters={"seconds": 30}, allowConcurrentRuns=True)
    tasks.create(
        "parent",
        "tests.jobs.ParentThatLeaves",
        parameters={"children": ["tests.jobs.Sleep"], "delay_seconds": 2},
    )
    tasks.create(
        "after-short", dependsOn=[{"name": "short"}], parameters={"seconds": 0.2}, allowConcurrentRuns=True
    )
    tasks.create(
        "after-both",
        dependsOn=[{"name": "short"}, {"name": "long"}],
        parameters={"seconds": 0.2},
        allowConcurrentRuns=True,
    )
    for name in ("short", "long", "parent"):
        tasks.wait_for_phase(name, "Running", timeout=60)
    assert tasks.status("after-both")["phase"] == "Waiting"

    local.control_plane.restart_api_server(down_seconds=5)
    tasks.create("after-restart", parameters={"seconds": 0.2}, allowConcurrentRuns=True)

    names = ["short", "long", "parent", "after-short", "after-both", "after-restart"]
    statuses = {name: tasks.wait_until_finished(name, timeout=180) for name in names}
    children = [name for name in tasks.task_names() if name.startswith("parent-c")]
    assert len(children) == 1, f"the parent should have one child, not {children}"
    statuses[children[0]] = tasks.wait_until_finished(children[0], timeout=60)

    assert operator.running, f"the operator exited; see {operator.log_path}"
    assert {name: status["phase"] for name, status in statuses.items()} == dict.fromkeys(
        statuses, "Succeeded"
    )
    assert tasks.pod_names() == {f"{name}-1" for name in statuses}
    for name, status in statuses.items():
        runs = taskdb.runs_for(tasks.namespace, name)
        assert [(run.attempt, run.id, run.status) for run in runs] == [(1, status["taskId"], "Succeeded")]
    for name, dependencies in {"after-short": ["short"], "after-both": ["short", "long"]}.items():
        start = interval(taskdb, statuses[name]["taskId"])[0]
        for dependency in dependencies:
            assert interval(taskdb, statuses[dependency]["taskId"])[1] <= start


def test_pod_that_cannot_start_gives_up_its_claims(
    tasks: Tasks, operator: OperatorProcess, test_cluster: ClusterUnderTest, taskdb: TaskDatabase
) -> None:
    # The session's operator waits 600 s for such a pod; this one gives up after 5 s.
    operator.stop()
    impatient = OperatorProcess(
        test_cluster.operator_environment(KUBE_ETL_START_TIMEOUT_SECONDS="5"),
        test_cluster.work_dir,
        name="impatient-operator",
    )
    try:
        impatient.start()
        tasks.create(
            "no-secret",
            mutuallyExclusiveWith=["lock"],
            parameters={"seconds": 0},
            secretParameters=[{"name": "api_token", "secretKeyRef": {"name": "absent", "key": "token"}}],
        )
        tasks.wait_for_phase("no-secret", "Starting")
        tasks.create("next-on-lock", mutuallyExclusiveWith=["lock"], parameters={"seconds": 0})
        stuck = tasks.wait_until_finished("no-secret", timeout=90)
        after = tasks.wait_until_finished("next-on-lock", timeout=60)
    finally:
        impatient.stop()

    assert stuck["phase"] == "Failed"
    complete = {item["type"]: item for item in stuck["conditions"]}["Complete"]
    assert complete["reason"] == "PodNotStarting"
    assert "Secret absent" in stuck["message"]
    assert "gave up after 5 s" in stuck["message"]
    assert after["phase"] == "Succeeded"
    assert "no-secret-1" not in tasks.pod_names()
    assert taskdb.get_run(stuck["taskId"]).status == "Failed"
