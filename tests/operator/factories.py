"""Small builders of ETLTask bodies and views for the operator's unit tests."""

from __future__ import annotations

from typing import Any

from etl_operator._spec import TaskView, view_of


def task_body(
    name: str,
    task: str = "jobs.Example",
    *,
    namespace: str = "default",
    phase: str | None = None,
    created: str = "2026-12-04T10:00:00Z",
    resource_version: str = "1",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "etl.kube-etl.io/v1alpha1",
        "kind": "ETLTask",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "creationTimestamp": created,
            "resourceVersion": resource_version,
            "generation": 1,
        },
        "spec": {"task": task, **spec},
    }
    if phase is not None:
        body["status"] = {"phase": phase}
    return body


def task_view(name: str, task: str = "jobs.Example", **kwargs: Any) -> TaskView:
    return view_of(task_body(name, task, **kwargs))
