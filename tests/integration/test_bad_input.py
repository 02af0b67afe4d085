"""Bad input through the apiserver: each manifest is accepted or rejected, and the operator stays calm."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from etl_runtime.taskdb import TaskDatabase

from .support import TERMINAL, OperatorProcess, Tasks

pytestmark = pytest.mark.integration

json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
names = st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)
task_classes = st.sampled_from(
    ["tests.jobs.Sleep", "tests.jobs.Fail", "tests.jobs.Missing", "nope"]
) | st.text(max_size=12)
specs = st.fixed_dictionaries(
    {"task": task_classes | json_scalars},
    optional={
        "parameters": st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=4)
        | json_scalars,
        "dependsOn": st.lists(
            st.fixed_dictionaries({}, optional={"name": names | json_scalars, "task": st.text(max_size=10)}),
            max_size=3,
        )
        | json_scalars,
        "mutuallyExclusiveWith": st.lists(st.text(max_size=10) | json_scalars, max_size=3) | json_scalars,
        "allowConcurrentRuns": st.booleans() | json_scalars,
        "priority": st.integers(-2000, 2000) | json_scalars,
        "retries": st.fixed_dictionaries(
            {}, optional={"limit": st.integers(-2, 3) | json_scalars, "backoffSeconds": st.integers(-1, 2)}
        )
        | json_scalars,
        "activeDeadlineSeconds": st.integers(-1, 30) | json_scalars,
        "cancel": st.booleans(),
        "podTemplate": st.fixed_dictionaries(
            {},
            optional={
                "env": st.lists(
                    st.dictionaries(st.sampled_from(["name", "value", "x"]), json_scalars), max_size=2
                )
            },
        ),
    },
)


def error_names_a_field(error: ApiException) -> bool:
    body = str(error.body)
    return error.status == 422 and ("spec" in body or "metadata" in body)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=specs)
def test_generated_manifests_accepted_or_rejected(
    tasks: Tasks, operator: OperatorProcess, spec: dict[str, Any]
) -> None:
    manifest = {
        "apiVersion": "etl.kube-etl.io/v1alpha1",
        "kind": "ETLTask",
        "metadata": {"generateName": "fuzz-", "namespace": tasks.namespace},
        "spec": spec,
    }
    try:
        created = tasks.create_manifest(manifest)
    except ApiException as error:
        assert error_names_a_field(error), f"rejected without naming a field: {error.status} {error.body}"
        return
    name = created["metadata"]["name"]
    # An accepted task must get a status from the operator, and the operator must survive it.
    status = tasks.wait_for(name, lambda status: bool(status.get("phase")), timeout=30, description="a phase")
    assert operator.running
    if status["phase"] in TERMINAL:
        assert status.get("message")


def test_operator_does_not_hot_patch_waiting_tasks(tasks: Tasks) -> None:
    tasks.create("waits-forever", dependsOn=[{"name": "never-created"}])
    tasks.wait_for_phase("waits-forever", "Waiting")
    first = tasks.get("waits-forever")["metadata"]["resourceVersion"]
    time.sleep(3)
    assert tasks.get("waits-forever")["metadata"]["resourceVersion"] == first


@pytest.mark.parametrize(
    ("manifest_change", "field"),
    [
        ({"metadata": {"name": "x" * 254}}, "metadata.name"),
        ({"spec": {"task": "a" * 600}}, "spec.task"),
        ({"spec": {"task": "has spaces.Class"}}, "spec.task"),
        ({"spec": {"task": "tests.jobs.Sleep", "priority": 5000}}, "spec.priority"),
    ],
    ids=["name-too-long", "task-too-long", "task-not-a-class-path", "priority-out-of-range"],
)
def test_limits_are_rejected_naming_field(tasks: Tasks, manifest_change: dict[str, Any], field: str) -> None:
    manifest = tasks.manifest("limits", "tests.jobs.Sleep")
    for key, value in manifest_change.items():
        manifest[key] = {**manifest[key], **value}
    with pytest.raises(ApiException) as caught:
        tasks.create_manifest(manifest)
    assert caught.value.status == 422
    assert field in str(caught.value.body)


def test_self_dependency_fails_as_cycle(tasks: Tasks) -> None:
    tasks.create("selfish", dependsOn=[{"name": "selfish"}])
    status = tasks.wait_until_finished("selfish")
    assert status["phase"] == "Failed"
    assert "selfish -> selfish" in status["message"]


def test_large_parameter_map_is_stored(tasks: Tasks, taskdb: TaskDatabase) -> None:
    parameters = {f"key_{index}": "v" * 1000 for index in range(1500)}
    tasks.create("big-parameters", parameters=parameters)

    status = tasks.wait_until_finished("big-parameters", timeout=120)

    assert status["phase"] == "Succeeded"
    assert taskdb.load_parameters(status["taskId"]) == parameters


def test_parameter_map_over_two_megabytes_is_rejected(tasks: Tasks) -> None:
    parameters = {f"key_{index}": "v" * 1000 for index in range(2100)}
    with pytest.raises(ApiException) as caught:
        tasks.create("huge-parameters", parameters=parameters)
    # Caveat: the apiserver reports the storage size limit as a 500 that states both sizes.
    assert "larger than max" in str(caught.value.body)
    assert "huge-parameters" not in tasks.task_names()
