"""Session fixtures that every test folder shares: the cluster under test and an API client for it.

By default the session starts one local cluster (control plane, Postgres, pod runner) the first time a
test requests it; the integration suite and the chart tests both use it. These variables point the
session at another cluster instead, such as the kind cluster of `hack/e2e-kind.sh`:

- KUBE_ETL_TEST_KUBECONFIG: the cluster's kubeconfig;
- KUBE_ETL_TEST_DATABASE_URL: the task database, as the tests reach it;
- KUBE_ETL_TEST_POD_DATABASE_URL: the same database as pods in the cluster reach it (default: the
  tests' URL);
- KUBE_ETL_TEST_OPERATOR: `local` (default) starts etl-operator as a process of the session,
  `external` uses the operator that already runs in the cluster.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from etl_localcluster.cluster import LocalCluster

from .integration.support import OperatorProcess

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG_VARIABLE = "KUBE_ETL_TEST_KUBECONFIG"
DATABASE_VARIABLE = "KUBE_ETL_TEST_DATABASE_URL"
POD_DATABASE_VARIABLE = "KUBE_ETL_TEST_POD_DATABASE_URL"
OPERATOR_VARIABLE = "KUBE_ETL_TEST_OPERATOR"
OPERATOR_MODES = ("local", "external")


class ClusterSettingsError(ValueError):
    """The KUBE_ETL_TEST_* variables contradict each other or have an invalid value."""


@dataclass(frozen=True)
class ExternalCluster:
    """A cluster that the session does not start, as the KUBE_ETL_TEST_* variables describe it."""

    kubeconfig: Path
    database_url: str
    pod_database_url: str
    external_operator: bool


def external_cluster_from(environ: Mapping[str, str]) -> ExternalCluster | None:
    """Read the KUBE_ETL_TEST_* variables; return None when the session should start a local cluster."""
    operator_mode = environ.get(OPERATOR_VARIABLE, "") or "local"
    if operator_mode not in OPERATOR_MODES:
        raise ClusterSettingsError(
            f"{OPERATOR_VARIABLE}={operator_mode!r} is invalid: use one of {OPERATOR_MODES}"
        )
    kubeconfig = environ.get(KUBECONFIG_VARIABLE, "")
    database_url = environ.get(DATABASE_VARIABLE, "")
    if not kubeconfig:
        if database_url or environ.get(POD_DATABASE_VARIABLE) or operator_mode == "external":
            raise ClusterSettingsError(
                f"{DATABASE_VARIABLE}, {POD_DATABASE_VARIABLE} and {OPERATOR_VARIABLE}=external describe "
                f"another cluster: set {KUBECONFIG_VARIABLE} too, or none of them"
            )
        return None
    if not database_url:
        raise ClusterSettingsError(
            f"{KUBECONFIG_VARIABLE} is set but {DATABASE_VARIABLE} is not: set both, or neither"
        )
    return ExternalCluster(
        kubeconfig=Path(kubeconfig),
        database_url=database_url,
        pod_database_url=environ.get(POD_DATABASE_VARIABLE, "") or database_url,
        external_operator=operator_mode == "external",
    )


@dataclass(frozen=True)
class ClusterUnderTest:
    """Where the tests run."""

    kubeconfig: Path
    # Database URLs as the tests reach them.
    taskdb_url: str
    warehouse_url: str
    work_dir: Path
    # The local cluster, when the session started one; fault tests stop and start its parts.
    local: LocalCluster | None = None
    # The same databases as pods in the cluster reach them; empty means the URLs above.
    pod_taskdb_url: str = ""
    pod_warehouse_url: str = ""
    # True when an operator already runs in the cluster and the session must not start its own.
    external_operator: bool = False

    @property
    def pod_taskdb(self) -> str:
        return self.pod_taskdb_url or self.taskdb_url

    @property
    def pod_warehouse(self) -> str:
        return self.pod_warehouse_url or self.warehouse_url

    def operator_environment(self, **settings: str) -> dict[str, str]:
        """Return the environment of an operator process for this cluster, with `settings` added.

        Job pods get 5 s between SIGTERM and SIGKILL, so that tests that stop pods stay short.
        """
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "KUBE_ETL_DATABASE_URL": self.taskdb_url,
            "KUBE_ETL_TERMINATION_GRACE_SECONDS": "5",
            **settings,
        }


@pytest.fixture(scope="session")
def test_cluster() -> Iterator[ClusterUnderTest]:
    work_dir = Path(tempfile.mkdtemp(prefix="kube-etl-tests-"))
    # The Postgres server runs as the postgres user, who must be able to enter the state folder.
    work_dir.chmod(0o755)
    try:
        external = external_cluster_from(os.environ)
    except ClusterSettingsError as error:
        pytest.fail(str(error))
    if external is not None:
        # The demo warehouse tables go into the task database: another cluster brings one database.
        yield ClusterUnderTest(
            kubeconfig=external.kubeconfig,
            taskdb_url=external.database_url,
            warehouse_url=external.database_url,
            work_dir=work_dir,
            pod_taskdb_url=external.pod_database_url,
            pod_warehouse_url=external.pod_database_url,
            external_operator=external.external_operator,
        )
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
    loader: Any = config
    loader.load_kube_config(config_file=str(test_cluster.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def session_operators() -> list[OperatorProcess]:
    """Operator processes that the session started, so a test that runs its own operator can stop them.

    Two operators that watch the same cluster would both act on each task. A fixture that starts an
    operator for the whole session adds it here; `tasks` starts a stopped one again.
    """
    return []
