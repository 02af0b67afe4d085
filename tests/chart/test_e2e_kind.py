"""The parts of the kind end-to-end test that run without Docker: the script's early checks, the
workflow that runs it, and how the test session reads its KUBE_ETL_TEST_* variables.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ClusterSettingsError, ExternalCluster, external_cluster_from

from .support import REPOSITORY_ROOT

SCRIPT = REPOSITORY_ROOT / "hack" / "e2e-kind.sh"
WORKFLOW = REPOSITORY_ROOT / ".github" / "workflows" / "e2e-kind.yaml"


def write_stub(folder: Path, name: str, body: str) -> None:
    """Write an executable shell script `name` that records its arguments, then runs `body`."""
    path = folder / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{folder}/calls"\n{body}\n')
    path.chmod(0o755)


def run_script(folder: Path) -> subprocess.CompletedProcess[str]:
    """Run the script with only `folder` and the system folders on PATH."""
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "PATH": f"{folder}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(folder: Path) -> list[str]:
    path = folder / "calls"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.skipif(
    any((Path(folder) / "docker").exists() for folder in ("/usr/bin", "/bin")),
    reason="docker is installed in a system folder, so the script finds it",
)
def test_script_stops_without_docker(tmp_path: Path) -> None:
    write_stub(tmp_path, "kind", "exit 0")

    result = run_script(tmp_path)

    assert result.returncode == 1
    assert "docker not found on PATH" in result.stderr
    assert calls(tmp_path) == []


def test_script_stops_without_kind(tmp_path: Path) -> None:
    write_stub(tmp_path, "docker", "exit 0")

    result = run_script(tmp_path)

    assert result.returncode == 1
    assert "kind not found on PATH" in result.stderr
    assert calls(tmp_path) == []


def test_script_stops_when_docker_daemon_is_down(tmp_path: Path) -> None:
    write_stub(tmp_path, "docker", "exit 1")
    write_stub(tmp_path, "kind", "exit 0")

    result = run_script(tmp_path)

    assert result.returncode == 1
    assert "the Docker daemon is not reachable" in result.stderr
    # Nothing but the daemon check ran: no cluster was created.
    assert calls(tmp_path) == ["docker info"]


def test_script_passes_shell_syntax_check() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr


def test_workflow_runs_make_e2e_kind() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())

    (job,) = workflow["jobs"].values()
    commands = [step.get("run", "") for step in job["steps"]]
    assert "make e2e-kind" in commands
    assert workflow["permissions"] == {"contents": "read"}


def test_script_uses_e2e_values_file() -> None:
    # The chart tests render, lint and scan this values file like every other one of the matrix.
    assert "VALUES=tests/chart/values/e2e-kind.yaml" in SCRIPT.read_text()


def test_settings_default_to_local_cluster() -> None:
    assert external_cluster_from({}) is None


def test_settings_read_external_cluster() -> None:
    settings = external_cluster_from(
        {
            "KUBE_ETL_TEST_KUBECONFIG": "/tmp/kind.kubeconfig",
            "KUBE_ETL_TEST_DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1:15432/kube_etl",
            "KUBE_ETL_TEST_POD_DATABASE_URL": "postgresql+psycopg://u:p@db.kube-etl.svc:5432/kube_etl",
            "KUBE_ETL_TEST_OPERATOR": "external",
        }
    )

    assert settings == ExternalCluster(
        kubeconfig=Path("/tmp/kind.kubeconfig"),
        database_url="postgresql+psycopg://u:p@127.0.0.1:15432/kube_etl",
        pod_database_url="postgresql+psycopg://u:p@db.kube-etl.svc:5432/kube_etl",
        external_operator=True,
    )


def test_settings_pod_url_defaults_to_test_url() -> None:
    settings = external_cluster_from(
        {"KUBE_ETL_TEST_KUBECONFIG": "/tmp/k", "KUBE_ETL_TEST_DATABASE_URL": "postgresql+psycopg://db/x"}
    )

    assert settings is not None
    assert settings.pod_database_url == "postgresql+psycopg://db/x"
    assert settings.external_operator is False


INVALID_SETTINGS = {
    "kubeconfig without database": {"KUBE_ETL_TEST_KUBECONFIG": "/tmp/k"},
    "database without kubeconfig": {"KUBE_ETL_TEST_DATABASE_URL": "postgresql+psycopg://db/x"},
    "external operator without kubeconfig": {"KUBE_ETL_TEST_OPERATOR": "external"},
    "unknown operator mode": {"KUBE_ETL_TEST_OPERATOR": "remote"},
}


@pytest.mark.parametrize("environ", INVALID_SETTINGS.values(), ids=INVALID_SETTINGS.keys())
def test_settings_reject_incomplete_variables(environ: dict[str, str]) -> None:
    with pytest.raises(ClusterSettingsError):
        external_cluster_from(environ)
