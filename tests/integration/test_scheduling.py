"""Dependencies, mutual exclusion, retries and restarts on the real control plane and Postgres."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from itertools import pairwise

import pytest

from etl_runtime.taskdb import TaskDatabase

from .support import TERMINAL, OperatorProcess, Tasks

pytestmark = pytest.mark.integration

SUCCEEDED = "Succeeded"


def interval(taskdb: TaskDatabase, task_id: int) -> tuple[datetime, datetime]:
    """When an attempt held its claims: from its Starting record to its terminal record."""
    history = taskdb.status_history(task_id)
    start = next(change.recorded_at for change in history if change.status == "Starting")
    end = next(change.recorded_at for change in history if change.status in TERMINAL)
    return start, end


def test_chain_runs_in_order(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("a", parameters={"seconds": 0.3})
    tasks.create("b", dependsOn=[{"name": "a"}], parameters={"seconds": 0.3})
    tasks.create("c", dependsOn=[{"name": "b"}], parameters={"seconds": 0.3})

    statuses = {name: tasks.wait_until_finished(name) for name in ("a", "b", "c")}

    assert {status["phase"] for status in statuses.values()} == {SUCCEEDED}
    runs = {name: taskdb.get_run(status["taskId"]) for name, status in statuses.items()}
    assert runs["a"].finished_at is not None and runs["b"].started_at is not None
    assert runs["a"].finished_at <= runs["b"].started_at
    assert runs["b"].finished_at is not None and runs["c"].started_at is not None
    assert runs["b"].finished_at <= runs["c"].started_at


def test_dependent_created_first_waits_for_dependency(tasks: Tasks) -> None:
    tasks.create("late-dependent", dependsOn=[{"name": "early-dependency"}], parameters={"seconds": 0.1})

    waiting = tasks.wait_for_phase("late-dependent", "Waiting")
    conditions = {item["type"]: item for item in waiting["conditions"]}
    assert conditions["DependenciesMet"]["reason"] == "DependencyNotFound"
    assert waiting["waitingFor"] == ["early-dependency"]

    tasks.create("early-dependency", parameters={"seconds": 0.1})
    assert tasks.wait_until_finished("late-dependent")["phase"] == SUCCEEDED


def test_failed_dependency_fails_dependents_without_pods(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("root", "tests.jobs.Fail")
    tasks.create("child", dependsOn=[{"name": "root"}])
    tasks.create("grandchild", dependsOn=[{"name": "child"}])

    child = tasks.wait_until_finished("child")
    grandchild = tasks.wait_until_finished("grandchild")

    assert tasks.status("root")["phase"] == "Failed"
    assert child["phase"] == "UpstreamFailed"
    assert grandchild["phase"] == "UpstreamFailed"
    assert "root" in child["message"]
    assert tasks.pod_names() == {"root-1"}
    assert taskdb.get_run(child["taskId"]).status == "UpstreamFailed"


def test_cycle_fails_every_member_naming_it(tasks: Tasks) -> None:
    tasks.create("ping", dependsOn=[{"name": "pong"}])
    tasks.create("pong", dependsOn=[{"name": "ping"}])

    for name in ("ping", "pong"):
        status = tasks.wait_until_finished(name)
        assert status["phase"] == "Failed"
        assert "ping" in status["message"]
        assert "pong" in status["message"]
        assert "cycle" in status["message"]
    assert tasks.pod_names() == set()


def test_pattern_dependency_waits_for_matching_class(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("dimension", "tests.jobs.Sleep", parameters={"seconds": 1.0})
    tasks.create("fact", "tests.jobs.Fail", dependsOn=[{"task": "tests.jobs.Sle*"}])

    fact = tasks.wait_until_finished("fact")
    dimension = tasks.status("dimension")

    assert dimension["phase"] == SUCCEEDED
    fact_start, _ = interval(taskdb, fact["taskId"])
    _, dimension_end = interval(taskdb, dimension["taskId"])
    assert dimension_end <= fact_start


def test_thirty_tasks_on_one_mutex_never_overlap(tasks: Tasks, taskdb: TaskDatabase) -> None:
    names = [f"mutex-{index:02d}" for index in range(30)]
    active: set[str] = set()
    overlaps: list[set[str]] = []
    finished: set[str] = set()

    def watch() -> None:
        for name, phase, _ in tasks.watch_phases(timeout_seconds=240):
            if phase in ("Starting", "Running"):
                active.add(name)
            else:
                active.discard(name)
            if len(active) > 1:
                overlaps.append(set(active))
            if phase in TERMINAL:
                finished.add(name)
            if finished >= set(names):
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.5)
    for name in names:
        tasks.create(
            name,
            mutuallyExclusiveWith=["shared-lock"],
            allowConcurrentRuns=True,
            parameters={"seconds": 0.05},
        )

    statuses = {name: tasks.wait_until_finished(name, timeout=240) for name in names}
    watcher.join(timeout=30)

    assert {status["phase"] for status in statuses.values()} == {SUCCEEDED}
    assert overlaps == []
    intervals = sorted((interval(taskdb, statuses[name]["taskId"]), name) for name in names)
    for (first, _), (second, _) in pairwise(intervals):
        assert first[1] <= second[0], f"{first} overlaps {second}"
    assert [name for _, name in intervals] == names


def test_deleted_holder_lets_next_waiter_start(tasks: Tasks) -> None:
    tasks.create("holder", mutuallyExclusiveWith=["lock"], parameters={"seconds": 300})
    tasks.wait_for_phase("holder", "Running")
    tasks.create("deleted-waiter", mutuallyExclusiveWith=["lock"], parameters={"seconds": 0.1})
    tasks.create("waiter", mutuallyExclusiveWith=["lock"], parameters={"seconds": 0.1})
    tasks.wait_for_phase("deleted-waiter", "Blocked")
    blocked = tasks.wait_for_phase("waiter", "Blocked")
    assert blocked["blockedBy"] == ["holder"]

    tasks.delete("deleted-waiter")
    tasks.delete("holder")

    assert tasks.wait_until_finished("waiter")["phase"] == SUCCEEDED


def test_operator_killed_while_holder_runs(
    tasks: Tasks, operator: OperatorProcess, taskdb: TaskDatabase
) -> None:
    tasks.create("holder", mutuallyExclusiveWith=["lock"], parameters={"seconds": 2})
    tasks.wait_for_phase("holder", "Running")
    tasks.create("waiter", mutuallyExclusiveWith=["lock"], parameters={"seconds": 0.1})
    tasks.wait_for_phase("waiter", "Blocked")

    operator.kill()
    pod_phase = ""
    deadline = time.monotonic() + 30
    while pod_phase != SUCCEEDED and time.monotonic() < deadline:
        pod_phase = tasks.core.read_namespaced_pod("holder-1", tasks.namespace).status.phase
        time.sleep(0.2)
    assert pod_phase == SUCCEEDED
    assert tasks.status("holder")["phase"] == "Running"
    operator.start()

    holder = tasks.wait_until_finished("holder")
    waiter = tasks.wait_until_finished("waiter")
    assert holder["phase"] == SUCCEEDED
    assert waiter["phase"] == SUCCEEDED
    assert tasks.pod_names() == {"holder-1", "waiter-1"}
    holder_end = interval(taskdb, holder["taskId"])[1]
    assert holder_end <= interval(taskdb, waiter["taskId"])[0]


def test_crossed_claims_do_not_deadlock(tasks: Tasks) -> None:
    tasks.create(
        "claims-ab", mutuallyExclusiveWith=["a", "b"], allowConcurrentRuns=True, parameters={"seconds": 0.5}
    )
    tasks.create(
        "claims-ba", mutuallyExclusiveWith=["b", "a"], allowConcurrentRuns=True, parameters={"seconds": 0.5}
    )

    assert tasks.wait_until_finished("claims-ab")["phase"] == SUCCEEDED
    assert tasks.wait_until_finished("claims-ba")["phase"] == SUCCEEDED


def test_created_and_patched_at_once_gets_one_pod(tasks: Tasks) -> None:
    tasks.create("patched", parameters={"seconds": 0.3})
    tasks.patch_spec("patched", {"displayName": "patched right away"})
    tasks.patch_spec("patched", {"priority": 1})

    assert tasks.wait_until_finished("patched")["phase"] == SUCCEEDED
    assert tasks.pod_names() == {"patched-1"}


def test_retries_record_each_attempt_and_free_claims(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create(
        "flaky",
        "tests.jobs.FailUntilAttempt",
        parameters={"succeed_on": 3},
        mutuallyExclusiveWith=["lock"],
        retries={"limit": 2, "backoffSeconds": 3},
    )
    tasks.wait_for(
        "flaky", lambda status: status.get("phase") == "Retrying", description="its first retry backoff"
    )
    tasks.create("waiter", mutuallyExclusiveWith=["lock"], parameters={"seconds": 0.1})

    waiter = tasks.wait_until_finished("waiter")
    flaky = tasks.wait_until_finished("flaky")

    assert flaky["phase"] == SUCCEEDED
    assert flaky["attempt"] == 3
    runs = taskdb.runs_for(tasks.namespace, "flaky")
    assert [run.attempt for run in runs] == [1, 2, 3]
    assert [run.status for run in runs] == ["Failed", "Failed", SUCCEEDED]
    assert tasks.pod_names() == {"flaky-1", "flaky-2", "flaky-3", "waiter-1"}
    waiter_start, waiter_end = interval(taskdb, waiter["taskId"])
    attempts = [interval(taskdb, run.id) for run in runs]
    assert any(
        earlier[1] <= waiter_start and waiter_end <= later[0] for earlier, later in pairwise(attempts)
    ), "the waiter did not run during a retry backoff"


def test_cancel_stops_the_pod(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("long", parameters={"seconds": 300})
    tasks.wait_for_phase("long", "Running")

    tasks.patch_spec("long", {"cancel": True})

    status = tasks.wait_until_finished("long")
    assert status["phase"] == "Cancelled"
    assert taskdb.get_run(status["taskId"]).status == "Cancelled"
    deadline = time.monotonic() + 30
    while "long-1" in tasks.pod_names() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "long-1" not in tasks.pod_names()


def test_namespace_limit_holds_extra_tasks(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.core.patch_namespace(
        tasks.namespace, {"metadata": {"annotations": {"etl.kube-etl.io/max-concurrent-tasks": "1"}}}
    )
    time.sleep(0.5)
    tasks.create("first", "tests.jobs.Sleep", allowConcurrentRuns=True, parameters={"seconds": 1.5})
    tasks.wait_for_phase("first", "Starting", "Running")
    tasks.create("second", "tests.jobs.Sleep", allowConcurrentRuns=True, parameters={"seconds": 0.1})

    blocked = tasks.wait_for_phase("second", "Blocked")
    conditions = {item["type"]: item for item in blocked["conditions"]}
    assert conditions["Admitted"]["reason"] == "ConcurrencyLimit"
    second = tasks.wait_until_finished("second")
    first = tasks.status("first")
    assert interval(taskdb, first["taskId"])[1] <= interval(taskdb, second["taskId"])[0]
