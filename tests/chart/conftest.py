"""Fixtures of the chart tests: helm and kubectl, and the namespaces that the values files name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from etl_localcluster.cluster import build_control_plane
from tests.conftest import ClusterUnderTest

from .support import CHART_DIR, RELEASE_NAMESPACE, VALUES_FILES, Tools, namespaces_of


@pytest.fixture(scope="session")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Tools:
    """helm and kubectl from the control plane build; the first run of the build takes many minutes."""
    return Tools(build_control_plane(), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def chart_namespaces(kube_api: client.ApiClient) -> Iterator[set[str]]:
    """Create the release namespace and every namespace that a values file names; delete them after."""
    core: Any = client.CoreV1Api(kube_api)
    namespaces = {RELEASE_NAMESPACE, *namespaces_of(VALUES_FILES)}
    created: list[str] = []
    for namespace in sorted(namespaces):
        try:
            core.create_namespace({"metadata": {"name": namespace}})
            created.append(namespace)
        except ApiException as error:
            if error.status != 409:
                raise
    yield namespaces
    for namespace in created:
        core.delete_namespace(namespace)


@pytest.fixture(scope="session")
def kubeconfig(test_cluster: ClusterUnderTest) -> Path:
    """The admin kubeconfig of the session's local cluster."""
    if test_cluster.local is None:
        pytest.skip(
            "the chart tests install and delete cluster-wide objects, kopf's CRDs among them, so they run "
            "only on the local cluster that the session starts"
        )
    return test_cluster.kubeconfig


@pytest.fixture()
def chart_crds_applied(tools: Tools, kubeconfig: Path) -> None:
    """Apply the chart's CRDs for real, so that server dry runs of objects of those kinds succeed."""
    tools.kubectl("apply", "--server-side", "-f", str(CHART_DIR / "crds"), kubeconfig=kubeconfig)
    tools.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "-f",
        str(CHART_DIR / "crds"),
        kubeconfig=kubeconfig,
    )
