"""Parents and children: requests through the task database become child ETLTasks the operator runs."""

from __future__ import annotations

import pytest

from etl_runtime.taskdb import TaskDatabase

from .support import Tasks

pytestmark = pytest.mark.integration


def children_of(tasks: Tasks, parent: str) -> dict[str, dict[str, object]]:
    return {
        name: tasks.get(name)
        for name in tasks.task_names()
        if (tasks.get(name).get("spec") or {}).get("parent") == parent
    }


def test_parent_waits_for_three_children(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("parent", "tests.jobs.ParentOfThree")

    status = tasks.wait_until_finished("parent", timeout=120)

    assert status["phase"] == "Succeeded", status
    children = children_of(tasks, "parent")
    assert len(children) == 3
    for name, child in children.items():
        assert name.startswith("parent-c")
        child_status = child["status"]
        assert isinstance(child_status, dict)
        assert child_status["phase"] == "Succeeded"
        run = taskdb.get_run(int(child_status["taskId"]))
        assert run.parent_task_id == status["taskId"]
        assert run.root_task_id == status["taskId"]
    statistics = taskdb.read_statistics(status["taskId"])
    assert statistics["task.children_succeeded"] == 3
    assert statistics["task.child_updates"] >= 3


def test_parent_that_leaves_waits_for_children(tasks: Tasks) -> None:
    tasks.create("leaver", "tests.jobs.ParentThatLeaves", parameters={"children": ["tests.jobs.Sleep"]})

    tasks.wait_for_phase("leaver", "WaitingForChildren", timeout=60)
    status = tasks.wait_until_finished("leaver", timeout=60)

    assert status["phase"] == "Succeeded"
    assert [child["status"]["phase"] for child in children_of(tasks, "leaver").values()] == ["Succeeded"]  # type: ignore[index]


def test_failed_child_fails_parent(tasks: Tasks) -> None:
    tasks.create("unlucky", "tests.jobs.ParentThatLeaves", parameters={"children": ["tests.jobs.Fail"]})

    status = tasks.wait_until_finished("unlucky", timeout=60)

    assert status["phase"] == "Failed"
    assert "unlucky-c" in status["message"]


def test_child_waits_for_approval(tasks: Tasks, taskdb: TaskDatabase) -> None:
    tasks.create("approver", "tests.jobs.ApprovingParent")

    status = tasks.wait_until_finished("approver", timeout=120)

    assert status["phase"] == "Succeeded", status
    outcomes = {
        child["spec"]["displayName"]: child["status"]  # type: ignore[index]
        for child in children_of(tasks, "approver").values()
    }
    assert outcomes["approve me"]["phase"] == "Succeeded"
    assert outcomes["reject me"]["phase"] == "Cancelled"
    history = [change.status for change in taskdb.status_history(int(outcomes["approve me"]["taskId"]))]
    assert "AwaitingApproval" in history
    assert len([name for name in tasks.pod_names() if name.startswith("approver-c")]) == 1
