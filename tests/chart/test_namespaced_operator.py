"""A namespaced release: the operator runs a task under the chart's Role and nothing cluster-wide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import ClusterUnderTest
from tests.integration.support import OperatorProcess, Tasks

from .accounts import ChartOperator, account_kubeconfig, operator_requests_log
from .support import CHART_DIR, Tools, environment_of, operator_container

pytestmark = pytest.mark.integration

RELEASE = "scoped"
RELEASE_NAMESPACE = "kube-etl-scoped"
WATCHED = "scoped-tasks"
OPERATOR_ACCOUNT = "scoped-kube-etl-operator"


def test_namespaced_operator_runs_task(
    tools: Tools,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    test_cluster: ClusterUnderTest,
    session_operators: list[OperatorProcess],
    tmp_path: Path,
) -> None:
    core: Any = client.CoreV1Api(kube_api)
    for namespace in (RELEASE_NAMESPACE, WATCHED):
        core.create_namespace({"metadata": {"name": namespace}})
    tools.helm(
        "install",
        RELEASE,
        str(CHART_DIR),
        "--namespace",
        RELEASE_NAMESPACE,
        "--set-string",
        f"taskDatabase.url={test_cluster.taskdb_url}",
        "--set",
        "rbac.scope=namespaced",
        "--set",
        f"rbac.watchNamespaces={{{WATCHED}}}",
        kubeconfig=kubeconfig,
    )
    try:
        # The session's operator watches the whole cluster and would act on the task too.
        for process in session_operators:
            process.stop()
        apps: Any = client.AppsV1Api(kube_api)
        deployment = apps.api_client.sanitize_for_serialization(
            apps.read_namespaced_deployment(OPERATOR_ACCOUNT, RELEASE_NAMESPACE)
        )
        container = operator_container(deployment)
        settings = {
            name: value for name, value in environment_of(container).items() if isinstance(value, str)
        }
        operator = ChartOperator(
            kubeconfig=account_kubeconfig(tools, kubeconfig, RELEASE_NAMESPACE, OPERATOR_ACCOUNT, tmp_path),
            arguments=container["args"],
            environment={
                **settings,
                "POD_NAME": "scoped-test",
                "KUBE_ETL_DATABASE_URL": test_cluster.taskdb_url,
            },
            log_path=tmp_path / "operator.log",
        )
        tasks = Tasks(kube_api, WATCHED)
        with operator.running():
            tasks.create("scoped-run", parameters={"seconds": 0.2})
            status = tasks.wait_until_finished("scoped-run", timeout=60)

        assert status["phase"] == "Succeeded", operator.log()
        assert "Forbidden" not in operator_requests_log(operator.log())
        assert f"--namespace={WATCHED}" in container["args"]
    finally:
        tools.helm("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, kubeconfig=kubeconfig)
        for namespace in (WATCHED, RELEASE_NAMESPACE):
            core.delete_namespace(namespace)
