"""Fixtures of the integration suite: the CRD, the task database, the operator and a namespace per test.

The cluster comes from `tests/conftest.py`: a local cluster by default, or the cluster that the
KUBE_ETL_TEST_* variables name. With KUBE_ETL_TEST_OPERATOR=external an operator already runs in that
cluster, so the session starts none and the tests that stop or kill the session's operator are skipped.
Every test gets a namespace of its own, so mutual exclusion and concurrency limits of one test never
touch another.
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from sqlalchemy.engine import make_url

from etl_runtime.taskdb import TaskDatabase
from tests.conftest import OPERATOR_VARIABLE, ClusterUnderTest

from .support import OperatorProcess, Tasks

# Test modules import ClusterUnderTest from here, as before it moved to tests/conftest.py.
__all__ = ["ClusterUnderTest"]

INTEGRATION_DIR = Path(__file__).resolve().parent
REPOSITORY_ROOT = INTEGRATION_DIR.parents[1]
CRD_PATH = REPOSITORY_ROOT / "crds" / "etltasks.etl.kube-etl.io.yaml"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests that stop or kill the session's operator when the cluster runs its own."""
    # Collection runs before any fixture, so the variable is read here and not through test_cluster.
    if os.environ.get(OPERATOR_VARIABLE) != "external":
        return
    skip = pytest.mark.skip(
        reason=f"{OPERATOR_VARIABLE}=external: the test stops or kills the operator process that the "
        "session starts with the local cluster"
    )
    for item in items:
        if not isinstance(item, pytest.Function) or not item.path.is_relative_to(INTEGRATION_DIR):
            continue
        if "operator" in inspect.signature(item.function).parameters:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def crd_installed(kube_api: client.ApiClient) -> None:
    """Install the ETLTask CRD from crds/ and wait until the apiserver serves it."""
    import time

    extensions: Any = client.ApiextensionsV1Api(kube_api)
    manifest = yaml.safe_load(CRD_PATH.read_text())
    try:
        extensions.create_custom_resource_definition(manifest)
    except ApiException as error:
        if error.status != 409:
            raise
        existing = extensions.read_custom_resource_definition(manifest["metadata"]["name"])
        manifest["metadata"]["resourceVersion"] = existing.metadata.resource_version
        extensions.replace_custom_resource_definition(manifest["metadata"]["name"], manifest)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        crd = extensions.read_custom_resource_definition(manifest["metadata"]["name"])
        conditions = {item.type: item.status for item in (crd.status.conditions or [])}
        if conditions.get("Established") == "True":
            return
        time.sleep(0.2)
    pytest.fail("the ETLTask CRD was not Established within 60 s")


@pytest.fixture(scope="session")
def taskdb(test_cluster: ClusterUnderTest) -> Iterator[TaskDatabase]:
    database = TaskDatabase(test_cluster.taskdb_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def warehouse_url(test_cluster: ClusterUnderTest) -> str:
    return test_cluster.warehouse_url


@pytest.fixture(scope="session")
def operator(
    test_cluster: ClusterUnderTest,
    crd_installed: None,
    taskdb: TaskDatabase,
    session_operators: list[OperatorProcess],
) -> Iterator[OperatorProcess | None]:
    """etl-operator as a process of the session; None when an operator already runs in the cluster."""
    if test_cluster.external_operator:
        yield None
        return
    process = OperatorProcess(
        test_cluster.operator_environment(
            KUBE_ETL_SAFETY_INTERVAL_SECONDS="10", KUBE_ETL_NODE_LOST_SECONDS="5"
        ),
        test_cluster.work_dir,
    )
    process.start()
    session_operators.append(process)
    yield process
    process.stop()


@pytest.fixture()
def tasks(
    kube_api: client.ApiClient, operator: OperatorProcess | None, test_cluster: ClusterUnderTest
) -> Iterator[Tasks]:
    """A fresh namespace with the task database and warehouse config Secrets, and a client for it.

    The session's operator runs before and after each test; a test that stops it starts it again. The
    Secrets hold the database URLs as pods reach them.
    """
    if operator is not None and not operator.running:
        operator.start()
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    core: Any = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "kube-etl-taskdb"}, "stringData": {"url": test_cluster.pod_taskdb}},
    )
    warehouse = make_url(test_cluster.pod_warehouse).render_as_string(hide_password=False)
    config_ini = f"[warehouse]\nurl = {warehouse.replace('%', '%%').replace('$', '$$')}\n"
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "warehouse-config"}, "stringData": {"config.ini": config_ini}}
    )
    yield Tasks(kube_api, namespace)
    if operator is not None and not operator.running:
        operator.start()
    core.delete_namespace(namespace)
