"""Shared setup for the local cluster tests: import path and the integration cluster fixture."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

try:
    import etl_localcluster  # noqa: F401
except ImportError:
    # The package is not installed in the virtualenv: import it from the repository.
    sys.path.insert(0, str(REPOSITORY_ROOT / "localcluster"))

from etl_localcluster.cluster import LocalCluster, LocalClusterError  # noqa: E402

JOB_MODULE_NAME = "kube_etl_localcluster_test_job"


def make_state_dir() -> Path:
    """Return a new state folder under /tmp that every user can enter.

    The Postgres server runs as the `postgres` user, who cannot enter pytest's own temporary folders
    (mode 0700).
    """
    state_dir = Path(tempfile.mkdtemp(prefix="kube-etl-localcluster-"))
    state_dir.chmod(0o755)
    return state_dir


@pytest.fixture()
def fresh_state_dir() -> Iterator[Path]:
    """An empty state folder; a cluster recorded in it is stopped after the test."""
    state_dir = make_state_dir()
    yield state_dir
    try:
        if (state_dir / "cluster.json").exists():
            LocalCluster.load(state_dir).stop()
    except LocalClusterError as error:
        pytest.fail(f"stopping the test's cluster failed: {error}")
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def job_module_name() -> str:
    """Name of a module that pods of `local_cluster` can import through the runner's --python-path."""
    return JOB_MODULE_NAME


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[LocalCluster]:
    """A running local cluster for one test module, with a job module on its pods' PYTHONPATH."""
    state_dir = make_state_dir()
    job_folder = state_dir / "jobs"
    job_folder.mkdir()
    (job_folder / f"{JOB_MODULE_NAME}.py").write_text('MESSAGE = "job module imported"\n')
    cluster = LocalCluster(state_dir / "cluster", python_paths=[job_folder])
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
