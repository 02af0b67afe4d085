"""Build the pod of one attempt of an ETLTask.

The reconciler calls `build_pod` when a task is Starting. The pod runs `etl-runtime run`; the task's
identity goes into its environment and the task database URL comes from a Secret, so the password never
appears in the pod spec, the ETLTask or the operator's logs. Secret parameters (spec.secretParameters)
reach the pod the same way, each in its own variable, and `secret_parameter_hint` explains a pod that
cannot start because one of their Secrets or keys is missing.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ._settings import OperatorSettings
from ._spec import API_GROUP, API_VERSION, KIND, TaskView

LABEL_TASK = f"{API_GROUP}/task"
LABEL_ATTEMPT = f"{API_GROUP}/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
CONTAINER_NAME = "etl"
CONFIG_MOUNT_PATH = "/etc/kube-etl/config"
MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63


def pod_name(task_name: str, attempt: int) -> str:
    """Return the pod name of an attempt, `<task>-<attempt>`, shortened with a hash if too long."""
    suffix = f"-{attempt}"
    if len(task_name) + len(suffix) <= MAX_NAME_LENGTH:
        return task_name + suffix
    digest = hashlib.sha256(task_name.encode()).hexdigest()[:10]
    keep = MAX_NAME_LENGTH - len(suffix) - len(digest) - 1
    return f"{task_name[:keep]}-{digest}{suffix}"


def task_label_value(task_name: str) -> str:
    """Return the task label's value: the task name, or a prefix and a hash when it exceeds 63 characters."""
    if len(task_name) <= MAX_LABEL_LENGTH:
        return task_name
    digest = hashlib.sha256(task_name.encode()).hexdigest()[:10]
    return f"{task_name[: MAX_LABEL_LENGTH - 11].rstrip('-.')}-{digest}"


def secret_parameter_hint(view: TaskView, message: str) -> str:
    """Return what to fix when `message`, why the pod cannot start, names a Secret of spec.secretParameters.

    The kubelet's message names a missing Secret without the key, and a missing key without the
    parameter, so the hint names all three. Returns "" when no secret parameter's Secret is named.
    """
    # The kubelet's message for a missing key. The message for a missing Secret names no key.
    missing_key = re.search(r"couldn't find key (\S+) in Secret", message)
    hints = []
    for parameter in view.spec.secret_parameters:
        if missing_key is not None and missing_key.group(1) != parameter.key:
            continue
        # Secret names are DNS subdomains: a name matches only where no name character continues it.
        if re.search(rf"(?<![-.a-z0-9]){re.escape(parameter.secret_name)}(?![-.a-z0-9])", message):
            hints.append(
                f"secret parameter {parameter.name} needs key {parameter.key} in Secret "
                f"{parameter.secret_name} of namespace {view.namespace}"
            )
    if not hints:
        return ""
    return f"; {'; '.join(hints)}: create the Secret or add the key, or correct spec.secretParameters"


def build_pod(
    view: TaskView,
    *,
    task_id: int,
    settings: OperatorSettings,
    parent_task_id: int | None = None,
    root_task_id: int | None = None,
) -> dict[str, Any]:
    """Return the pod manifest for the current attempt of `view`."""
    template = view.spec.pod_template
    name = pod_name(view.name, view.attempt)
    env: list[dict[str, Any]] = [
        {"name": "KUBE_ETL_TASK_ID", "value": str(task_id)},
        {"name": "KUBE_ETL_TASK_CLASS", "value": view.spec.task},
        {"name": "KUBE_ETL_TASK_NAME", "value": view.name},
        {"name": "KUBE_ETL_NAMESPACE", "value": view.namespace},
        {"name": "KUBE_ETL_ATTEMPT", "value": str(view.attempt)},
        {
            "name": "KUBE_ETL_DATABASE_URL",
            "valueFrom": {
                "secretKeyRef": {"name": settings.database_secret_name, "key": settings.database_secret_key}
            },
        },
    ]
    # The operator never reads these values: the kubelet resolves them when it starts the container.
    env.extend(
        {
            "name": parameter.variable,
            "valueFrom": {"secretKeyRef": {"name": parameter.secret_name, "key": parameter.key}},
        }
        for parameter in view.spec.secret_parameters
    )
    # An attempt that will be retried sends no mail; the last one does if it fails.
    will_retry = view.attempt <= view.spec.retries.limit
    if view.spec.no_mail or not view.spec.notify_email or will_retry:
        env.append({"name": "KUBE_ETL_NO_MAIL", "value": "1"})
    else:
        env.append({"name": "KUBE_ETL_NOTIFY_EMAIL", "value": ",".join(view.spec.notify_email)})
    if parent_task_id is not None:
        env.append({"name": "KUBE_ETL_PARENT_TASK_ID", "value": str(parent_task_id)})
    if root_task_id is not None:
        env.append({"name": "KUBE_ETL_ROOT_TASK_ID", "value": str(root_task_id)})

    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if view.spec.config_secret:
        volumes.append({"name": "config", "secret": {"secretName": view.spec.config_secret}})
        mounts.append({"name": "config", "mountPath": CONFIG_MOUNT_PATH, "readOnly": True})
        env.append({"name": "KUBE_ETL_CONFIG", "value": f"{CONFIG_MOUNT_PATH}/config.ini"})
    # The run's identity cannot be overridden: a job that wrote into another run's record would corrupt it.
    reserved = {item["name"] for item in env}
    env.extend(item for item in template.get("env") or [] if item.get("name") not in reserved)

    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": view.spec.image or settings.default_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["etl-runtime", "run"],
        "env": env,
        "volumeMounts": mounts,
    }
    if template.get("resources"):
        container["resources"] = template["resources"]

    labels = {
        **(template.get("labels") or {}),
        LABEL_TASK: task_label_value(view.name),
        LABEL_ATTEMPT: str(view.attempt),
        LABEL_MANAGED_BY: "kube-etl",
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes,
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
    }
    service_account = template.get("serviceAccountName") or settings.pod_service_account
    if service_account:
        spec["serviceAccountName"] = service_account
    if view.spec.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = view.spec.active_deadline_seconds
    if template.get("nodeSelector"):
        spec["nodeSelector"] = template["nodeSelector"]
    # Evict the pod from a node that stops reporting sooner than the cluster default of 300 s, so a
    # lost node fails the attempt in bounded time.
    spec["tolerations"] = [
        *(template.get("tolerations") or []),
        *(
            {
                "key": f"node.kubernetes.io/{condition}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": settings.node_lost_seconds,
            }
            for condition in ("not-ready", "unreachable")
        ),
    ]

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": view.namespace,
            "labels": labels,
            "annotations": dict(template.get("annotations") or {}),
            "ownerReferences": [
                {
                    "apiVersion": f"{API_GROUP}/{API_VERSION}",
                    "kind": KIND,
                    "name": view.name,
                    "uid": view.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
