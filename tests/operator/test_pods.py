"""The pod of an attempt: deterministic name, owner, labels and the task's identity in its environment."""

from __future__ import annotations

from etl_operator._pods import build_pod, pod_name, task_label_value
from etl_operator._settings import OperatorSettings
from etl_operator._spec import view_of

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
