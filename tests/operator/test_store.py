"""The TaskStore: which versions it keeps, and how it keeps finished tasks."""

from __future__ import annotations

from etl_operator._store import TaskStore

from .factories import task_body


def test_finished_task_body_reads_back_whole() -> None:
    store = TaskStore()
    body = task_body("done", phase="Succeeded", parameters={"day": "2026-12-01"}, resource_version="7")
    body["status"]["completionTime"] = "2026-12-04T10:05:00Z"
    store.upsert(body)
    assert store.body(("default", "done")) == body
    assert [key for key in store.task_keys()] == [("default", "done")]
    view = store.view(("default", "done"))
    assert view is not None and view.phase == "Succeeded"


def test_same_or_older_version_is_not_stored_again() -> None:
    store = TaskStore()
    assert store.upsert(task_body("a", phase="Running", resource_version="5")) is not None
    assert store.upsert(task_body("a", phase="Pending", resource_version="5")) is None
    assert store.upsert(task_body("a", phase="Pending", resource_version="4")) is None
    change = store.upsert(task_body("a", phase="Succeeded", resource_version="6"))
    assert change is not None and change.phase_changed
    view = store.view(("default", "a"))
    assert view is not None and view.phase == "Succeeded"


def test_recreated_task_replaces_finished_one() -> None:
    store = TaskStore()
    store.upsert(task_body("a", phase="Failed", resource_version="9"))
    again = task_body("a", resource_version="3")
    again["metadata"]["uid"] = "uid-new"
    change = store.upsert(again)
    assert change is not None and change.previous is None
    stored = store.body(("default", "a"))
    assert stored is not None and stored["metadata"]["uid"] == "uid-new"
    store.remove(("default", "a"))
    assert store.body(("default", "a")) is None
    assert list(store.task_keys()) == []
