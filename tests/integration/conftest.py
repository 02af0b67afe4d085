"""Session fixtures of the integration suite: a cluster, the CRD, the task database and the operator.

By default the session starts a local cluster (control plane, Postgres, pod runner) once. Set
KUBE_ETL_TEST_KUBECONFIG and KUBE_ETL_TEST_DATABASE_URL to run the same tests against another cluster
and task database instead. Every test gets a namespace of its own, so mutual exclusion and
concurrency limits of one test never touch another.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from sqlalchemy.engine import make_url

from etl_localcluster.cluster import LocalCluster
from etl_runtime.taskdb import TaskDatabase

from .support import OperatorProcess, Tasks

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = REPOSITORY_ROOT / "crds" / "etltasks.etl.kube-etl.io.yaml"
KUBECONFIG_VARIABLE = "KUBE_ETL_TEST_KUBECONFIG"
DATABASE_VARIABLE = "KUBE_ETL_TEST_DATABASE_URL"


@dataclass(frozen=True)
class ClusterUnderTest:
    """Where the integration tests run."""

    kubeconfig: Path
    taskdb_url: str
    warehouse_url: str
    work_dir: Path
    # The local cluster, when the session started one; fault tests stop and start its parts.
    local: LocalCluster | None = None


@pytest.fixture(scope="session")
def test_cluster() -> Iterator[ClusterUnderTest]:
    work_dir = Path(tempfile.mkdtemp(prefix="kube-etl-tests-"))
    # The Postgres server runs as the postgres user, who must be able to enter the state folder.
    work_dir.chmod(0o755)
    external = os.environ.get(KUBECONFIG_VARIABLE)
    if external:
        database_url = os.environ.get(DATABASE_VARIABLE)
        if not database_url:
            pytest.fail(f"{KUBECONFIG_VARIABLE} is set but {DATABASE_VARIABLE} is not: set both, or neither")
        yield ClusterUnderTest(Path(external), database_url, database_url, work_dir, local=None)
        shutil.rmtree(work_dir, ignore_errors=True)
        return

    cluster = LocalCluster(work_dir / "cluster", python_paths=[REPOSITORY_ROOT / "examples", REPOSITORY_ROOT])
    try:
        info = cluster.start()
        yield ClusterUnderTest(
            kubeconfig=info.kubeconfig,
            taskdb_url=cluster.create_database("kube_etl"),
            warehouse_url=cluster.create_database("warehouse"),
            work_dir=work_dir,
            local=cluster,
        )
    finally:
        cluster.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kube_api(test_cluster: ClusterUnderTest) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(test_cluster.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


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
    test_cluster: ClusterUnderTest, crd_installed: None, taskdb: TaskDatabase
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        {
            "KUBECONFIG": str(test_cluster.kubeconfig),
            "KUBE_ETL_DATABASE_URL": test_cluster.taskdb_url,
            "KUBE_ETL_SAFETY_INTERVAL_SECONDS": "10",
            "KUBE_ETL_TERMINATION_GRACE_SECONDS": "5",
        },
        test_cluster.work_dir,
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture()
def tasks(
    kube_api: client.ApiClient, operator: OperatorProcess, test_cluster: ClusterUnderTest
) -> Iterator[Tasks]:
    """A fresh namespace with the task database and warehouse config Secrets, and a client for it.

    The operator runs before and after each test; a test that stops it starts it again.
    """
    if not operator.running:
        operator.start()
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    core: Any = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "kube-etl-taskdb"}, "stringData": {"url": test_cluster.taskdb_url}},
    )
    warehouse = make_url(test_cluster.warehouse_url).render_as_string(hide_password=False)
    config_ini = f"[warehouse]\nurl = {warehouse.replace('%', '%%').replace('$', '$$')}\n"
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "warehouse-config"}, "stringData": {"config.ini": config_ini}}
    )
    yield Tasks(kube_api, namespace)
    if not operator.running:
        operator.start()
    core.delete_namespace(namespace)
