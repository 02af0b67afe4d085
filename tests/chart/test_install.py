"""`helm install` into the local cluster: the objects it creates, the exact permissions of the operator's
and the job pods' service accounts, and the operator running under its account.

The local cluster's pod runner runs only `restartPolicy: Never` pods, so the operator Deployment's pod
never starts there. Instead, one test runs etl-operator as a local process with the chart's service
account token and the Deployment's arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.conftest import ClusterUnderTest
from tests.integration.support import OperatorProcess, Tasks

from .accounts import (
    SELF_REVIEW_RULES,
    ChartOperator,
    account_kubeconfig,
    can_i,
    operator_requests_log,
    rules_of,
)
from .support import (
    CHART_DIR,
    RELEASE_NAMESPACE,
    Tools,
    cluster_rules,
    environment_of,
    operator_container,
    rule_set,
)

pytestmark = pytest.mark.integration

RELEASE = "kube-etl"
TASK_NAMESPACE = "chart-run"
OPERATOR_ACCOUNT = "kube-etl-operator"
JOB_ACCOUNT = "kube-etl-job"


@pytest.fixture(scope="module")
def release(
    tools: Tools,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    test_cluster: ClusterUnderTest,
    chart_namespaces: set[str],
) -> Iterator[str]:
    """The chart installed in cluster scope, with one task namespace; uninstalled after the module."""
    core: Any = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": TASK_NAMESPACE}})
    tools.helm(
        "install",
        RELEASE,
        str(CHART_DIR),
        "--namespace",
        RELEASE_NAMESPACE,
        "--set-string",
        f"taskDatabase.url={test_cluster.taskdb_url}",
        "--set",
        f"jobs.namespaces={{{TASK_NAMESPACE}}}",
        kubeconfig=kubeconfig,
    )
    yield RELEASE
    tools.helm("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait", kubeconfig=kubeconfig)
    core.delete_namespace(TASK_NAMESPACE)


def test_install_creates_crds_rbac_and_deployment(release: str, kube_api: client.ApiClient) -> None:
    extensions: Any = client.ApiextensionsV1Api(kube_api)
    rbac: Any = client.RbacAuthorizationV1Api(kube_api)
    apps: Any = client.AppsV1Api(kube_api)
    core: Any = client.CoreV1Api(kube_api)

    crds = {crd.metadata.name for crd in extensions.list_custom_resource_definition().items}
    assert "etltasks.etl.kube-etl.io" in crds
    role = rbac.read_cluster_role("kube-etl-operator")
    assert rule_set(item.to_dict() for item in role.rules) == cluster_rules()
    binding = rbac.read_cluster_role_binding("kube-etl-operator")
    assert [(subject.name, subject.namespace) for subject in binding.subjects] == [
        (OPERATOR_ACCOUNT, RELEASE_NAMESPACE)
    ]
    deployment = apps.read_namespaced_deployment("kube-etl-operator", RELEASE_NAMESPACE)
    assert deployment.spec.template.spec.service_account_name == OPERATOR_ACCOUNT
    job_account = core.read_namespaced_service_account(JOB_ACCOUNT, TASK_NAMESPACE)
    assert job_account.automount_service_account_token is False
    assert core.read_namespaced_secret("kube-etl-taskdb", TASK_NAMESPACE).data["url"]


def test_operator_account_has_exact_rules(release: str, kube_api: client.ApiClient) -> None:
    for namespace in (TASK_NAMESPACE, "default"):
        rules = rules_of(kube_api, f"system:serviceaccount:{RELEASE_NAMESPACE}:{OPERATOR_ACCOUNT}", namespace)

        assert rules - SELF_REVIEW_RULES == cluster_rules(), namespace


def test_job_account_has_no_rules(release: str, kube_api: client.ApiClient) -> None:
    rules = rules_of(kube_api, f"system:serviceaccount:{TASK_NAMESPACE}:{JOB_ACCOUNT}", TASK_NAMESPACE)

    assert rules == SELF_REVIEW_RULES


# (verb, resource, whether the operator may), checked one by one with `kubectl auth can-i`.
OPERATOR_VERBS = [
    ("create", "pods", True),
    ("delete", "pods", True),
    ("patch", "etltasks.etl.kube-etl.io", True),
    ("patch", "etltasks.etl.kube-etl.io/status", True),
    ("create", "events", True),
    ("watch", "namespaces", True),
    ("watch", "nodes", True),
    ("get", "nodes", False),
    ("update", "etltasks.etl.kube-etl.io", False),
    ("update", "pods", False),
    ("create", "pods/exec", False),
    ("get", "secrets", False),
    ("list", "configmaps", False),
    ("create", "deployments.apps", False),
    ("create", "namespaces", False),
    ("update", "customresourcedefinitions.apiextensions.k8s.io", False),
    ("create", "rolebindings.rbac.authorization.k8s.io", False),
    ("create", "events.events.k8s.io", False),
    ("update", "etltasks.etl.kube-etl.io/status", False),
    ("update", "etltasks.etl.kube-etl.io/finalizers", False),
    ("create", "pods/eviction", False),
    ("get", "pods/log", False),
]


@pytest.mark.parametrize("verb,resource,allowed", OPERATOR_VERBS)
def test_operator_account_can_i(
    release: str, tools: Tools, kubeconfig: Path, verb: str, resource: str, allowed: bool
) -> None:
    subject = f"system:serviceaccount:{RELEASE_NAMESPACE}:{OPERATOR_ACCOUNT}"

    assert can_i(tools, kubeconfig, subject, verb, resource, TASK_NAMESPACE) is allowed


@pytest.mark.parametrize("verb,resource", [("get", "pods"), ("get", "secrets"), ("list", "etltasks")])
def test_job_account_can_do_nothing(
    release: str, tools: Tools, kubeconfig: Path, verb: str, resource: str
) -> None:
    subject = f"system:serviceaccount:{TASK_NAMESPACE}:{JOB_ACCOUNT}"

    assert can_i(tools, kubeconfig, subject, verb, resource, TASK_NAMESPACE) is False


def test_operator_under_chart_account_runs_task(
    release: str,
    tools: Tools,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    test_cluster: ClusterUnderTest,
    session_operators: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    # Two operators that watch the whole cluster would both act on the task.
    for process in session_operators:
        process.stop()
    apps: Any = client.AppsV1Api(kube_api)
    deployment = apps.api_client.sanitize_for_serialization(
        apps.read_namespaced_deployment("kube-etl-operator", RELEASE_NAMESPACE)
    )
    container = operator_container(deployment)
    settings = {name: value for name, value in environment_of(container).items() if isinstance(value, str)}
    operator = ChartOperator(
        kubeconfig=account_kubeconfig(tools, kubeconfig, RELEASE_NAMESPACE, OPERATOR_ACCOUNT, tmp_path),
        arguments=container["args"],
        environment={**settings, "POD_NAME": "chart-test", "KUBE_ETL_DATABASE_URL": test_cluster.taskdb_url},
        log_path=tmp_path / "operator.log",
    )
    tasks = Tasks(kube_api, TASK_NAMESPACE)
    leases: Any = client.CoordinationV1Api(kube_api)
    with operator.running():
        assert operator.healthz() == 200
        tasks.create("under-chart-account", parameters={"seconds": 0.2})

        status = tasks.wait_until_finished("under-chart-account", timeout=60)
        pod = tasks.core.read_namespaced_pod("under-chart-account-1", TASK_NAMESPACE)
        lease = leases.read_namespaced_lease("kube-etl-operator", RELEASE_NAMESPACE)
    tasks.delete("under-chart-account")

    assert status["phase"] == "Succeeded", operator.log()
    assert pod.spec.service_account_name == JOB_ACCOUNT
    assert lease.spec.holder_identity == "chart-test"
    assert "Forbidden" not in operator_requests_log(operator.log())
    assert "kube-etl operator stopped" in operator.log()


def test_helm_lists_deployed_release(release: str, tools: Tools, kubeconfig: Path) -> None:
    result = tools.helm("list", "--namespace", RELEASE_NAMESPACE, "--output", "yaml", kubeconfig=kubeconfig)

    (listed,) = [item for item in yaml.safe_load(result.stdout) if item["name"] == release]
    assert listed["status"] == "deployed"
