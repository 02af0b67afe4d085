"""The pod of an attempt: deterministic name, owner, labels and the task's identity in its environment.

Also the secret parameters: references to Secrets in the pod's environment, never values, and the
hint that names the Secret and key when the pod cannot start without them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from etl_operator._children import child_manifest
from etl_operator._pods import build_pod, pod_name, secret_parameter_hint, task_label_value
from etl_operator._settings import OperatorSettings
from etl_operator._spec import InvalidSpecError, SecretParameter, view_of
from etl_runtime.taskdb import ChildRequest

from .factories import task_body

SETTINGS = OperatorSettings(database_url="postgresql+psycopg://u:p@127.0.0.1/db")


def test_pod_name_is_task_and_attempt() -> None:
    assert pod_name("load-fact", 2) == "load-fact-2"


def test_long_pod_name_stays_within_limit_and_unique() -> None:
    first = pod_name("x" * 253, 1)
    second = pod_name("x" * 252 + "y", 1)
    assert len(first) <= 253
    assert first != second
    assert first.endswith("-1")


def test_long_task_label_is_shortened() -> None:
    value = task_label_value("a" * 100)
    assert len(value) <= 63


def test_pod_has_identity_env_and_owner() -> None:
    body = task_body("load", "warehouse.Load", config={"secretName": "wh"}, activeDeadlineSeconds=60)
    body["status"] = {"attempt": 2}
    pod = build_pod(view_of(body), task_id=7, settings=SETTINGS)
    container = pod["spec"]["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    assert pod["metadata"]["name"] == "load-2"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "uid-default-load"
    assert pod["metadata"]["ownerReferences"][0]["controller"] is True
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["activeDeadlineSeconds"] == 60
    assert container["command"] == ["etl-runtime", "run"]
    assert env["KUBE_ETL_TASK_ID"]["value"] == "7"
    assert env["KUBE_ETL_TASK_CLASS"]["value"] == "warehouse.Load"
    assert env["KUBE_ETL_ATTEMPT"]["value"] == "2"
    assert env["KUBE_ETL_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "kube-etl-taskdb",
        "key": "url",
    }
    assert "value" not in env["KUBE_ETL_DATABASE_URL"]
    assert env["KUBE_ETL_CONFIG"]["value"] == "/etc/kube-etl/config/config.ini"
    assert pod["spec"]["volumes"] == [{"name": "config", "secret": {"secretName": "wh"}}]


def test_template_env_cannot_override_identity() -> None:
    body = task_body(
        "load", podTemplate={"env": [{"name": "KUBE_ETL_TASK_ID", "value": "1"}, {"name": "X", "value": "y"}]}
    )
    pod = build_pod(view_of(body), task_id=7, settings=SETTINGS)
    env = pod["spec"]["containers"][0]["env"]
    assert [item["value"] for item in env if item["name"] == "KUBE_ETL_TASK_ID"] == ["7"]
    assert {"name": "X", "value": "y"} in env


def test_attempt_to_be_retried_sends_no_mail() -> None:
    body = task_body("load", notify={"email": ["team@example.org"]}, retries={"limit": 1})
    body["status"] = {"attempt": 1}
    first = {
        item["name"]: item
        for item in build_pod(view_of(body), task_id=7, settings=SETTINGS)["spec"]["containers"][0]["env"]
    }
    body["status"] = {"attempt": 2}
    last = {
        item["name"]: item
        for item in build_pod(view_of(body), task_id=8, settings=SETTINGS)["spec"]["containers"][0]["env"]
    }
    assert first["KUBE_ETL_NO_MAIL"]["value"] == "1"
    assert "KUBE_ETL_NO_MAIL" not in last
    assert last["KUBE_ETL_NOTIFY_EMAIL"]["value"] == "team@example.org"


API_TOKEN = {"name": "api_token", "secretKeyRef": {"name": "weather-api", "key": "token"}}


def test_secret_parameter_reaches_pod_as_secret_reference() -> None:
    body = task_body("load", parameters={"batch_size": 5}, secretParameters=[API_TOKEN])

    view = view_of(body)
    env = build_pod(view, task_id=7, settings=SETTINGS)["spec"]["containers"][0]["env"]

    assert view.spec.secret_parameters == (SecretParameter("api_token", "weather-api", "token"),)
    assert {
        "name": "KUBE_ETL_SECRET_PARAMETER_API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "weather-api", "key": "token"}},
    } in env
    assert all("value" not in item for item in env if item["name"].startswith("KUBE_ETL_SECRET"))


def test_template_env_cannot_override_secret_parameter() -> None:
    override = {"name": "KUBE_ETL_SECRET_PARAMETER_API_TOKEN", "value": "in clear"}
    body = task_body("load", secretParameters=[API_TOKEN], podTemplate={"env": [override]})

    env = build_pod(view_of(body), task_id=7, settings=SETTINGS)["spec"]["containers"][0]["env"]

    assert override not in env


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"parameters": {"API_TOKEN": "x"}, "secretParameters": [API_TOKEN]},
            "parameter 'API_TOKEN' is in spec.parameters and, as 'api_token', in spec.secretParameters",
        ),
        (
            {"secretParameters": [API_TOKEN, {**API_TOKEN, "name": "Api_Token"}]},
            "secret parameters 'api_token' and 'Api_Token' in spec.secretParameters name the same parameter",
        ),
        (
            {"secretParameters": [{**API_TOKEN, "name": "api-token"}]},
            "spec.secretParameters[0]: secret parameter name 'api-token' is invalid",
        ),
        (
            {"secretParameters": [{"name": "api_token", "secretKeyRef": {"name": "weather-api"}}]},
            "spec.secretParameters[0] must set name, secretKeyRef.name and secretKeyRef.key",
        ),
    ],
    ids=["in-both", "twice", "not-identifier", "no-key"],
)
def test_invalid_secret_parameters_name_the_fix(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        view_of(task_body("load", **spec))

    assert message in str(caught.value)


@pytest.mark.parametrize(
    "kubelet_message",
    [
        'secret "weather-api" not found',
        'secret "weather-api" not found in namespace "analytics"',
        "couldn't find key token in Secret analytics/weather-api",
    ],
)
def test_stuck_pod_hint_names_secret_and_key(kubelet_message: str) -> None:
    view = view_of(task_body("load", namespace="analytics", secretParameters=[API_TOKEN]))

    hint = secret_parameter_hint(view, kubelet_message)

    assert hint == (
        "; secret parameter api_token needs key token in Secret weather-api of namespace analytics: "
        "create the Secret or add the key, or correct spec.secretParameters"
    )


def test_stuck_pod_hint_ignores_other_secrets_and_keys() -> None:
    other = {"name": "other", "secretKeyRef": {"name": "weather-api", "key": "other-key"}}
    view = view_of(task_body("load", secretParameters=[API_TOKEN, other]))

    assert secret_parameter_hint(view, 'secret "weather-api-old" not found') == ""
    assert secret_parameter_hint(view, 'secret "warehouse-config" not found') == ""
    missing_other_key = "couldn't find key other-key in Secret default/weather-api"
    assert "api_token" not in secret_parameter_hint(view, missing_other_key)
    assert "secret parameter other needs key other-key" in secret_parameter_hint(view, missing_other_key)


def test_child_inherits_secret_parameters_unless_requested() -> None:
    region = {"name": "region_key", "secretKeyRef": {"name": "regions", "key": "emea"}}
    parent = task_body("nightly", secretParameters=[API_TOKEN, region])
    request = ChildRequest(
        id=4,
        parent_task_id=1,
        task_class="jobs.Child",
        display_name=None,
        parameters={"REGION_KEY": "public"},
        needs_approval=False,
        approval=None,
        child_namespace=None,
        child_name=None,
        created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
    )

    spec = child_manifest(parent, request)["spec"]

    assert spec["secretParameters"] == [API_TOKEN]
    assert spec["parameters"] == {"REGION_KEY": "public"}
    view_of({**parent, "spec": spec})
