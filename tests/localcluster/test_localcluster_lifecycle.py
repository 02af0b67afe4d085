"""Integration tests for starting, finding and stopping a whole local cluster."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from etl_localcluster import cli
from etl_localcluster._kubeapi import KubeApi
from etl_localcluster._processes import ProcessRecord, is_alive, is_port_open, is_running
from etl_localcluster.cluster import LocalCluster
from etl_localcluster.controlplane import ControlPlane

pytestmark = pytest.mark.integration


def all_processes(cluster: LocalCluster) -> list[ProcessRecord]:
    records = list(ControlPlane.load(cluster.state_dir).processes)
    assert cluster.postgres.process is not None
    assert cluster.runner is not None
    return [*records, cluster.postgres.process, cluster.runner]


def start_sleeping_pod(cluster: LocalCluster) -> int:
    """Start a pod that sleeps and return the PID of its process."""
    with contextlib.closing(KubeApi(cluster.kubeconfig_path)) as api:
        pod = {
            "metadata": {"name": "sleeper"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "ignored", "command": ["sleep", "300"]}],
            },
        }
        api.create("/api/v1/namespaces/default/pods", pod)
        deadline = time.monotonic() + 20
        while True:
            status = api.get("/api/v1/namespaces/default/pods/sleeper").get("status", {})
            if status.get("phase") == "Running":
                break
            assert time.monotonic() < deadline, f"the pod did not start: {status}"
            time.sleep(0.05)
    container_id = str(status["containerStatuses"][0]["containerID"])
    return int(container_id.removeprefix("localprocess://"))


def test_stop_leaves_no_process_or_port(fresh_state_dir: Path) -> None:
    state_dir = fresh_state_dir
    cluster = LocalCluster(state_dir)
    cluster.start()
    records = all_processes(cluster)
    pod_pid = start_sleeping_pod(cluster)
    ports = [port for record in records for port in record.ports]
    assert len(ports) == 6
    assert all(is_alive(record) for record in records)

    cluster.stop()

    assert [record.name for record in records if is_alive(record)] == []
    assert not is_running(pod_pid)
    assert [port for port in ports if is_port_open(port)] == []
    assert not (state_dir / "cluster.json").exists()


def test_start_is_idempotent_and_load_reconnects(fresh_state_dir: Path) -> None:
    state_dir = fresh_state_dir
    cluster = LocalCluster(state_dir)
    info = cluster.start()
    records = all_processes(cluster)

    assert LocalCluster(state_dir).start() == info
    loaded = LocalCluster.load(state_dir)
    assert loaded.info() == info
    assert all_processes(loaded) == records
    assert loaded.is_running()

    loaded.stop()
    assert not any(is_alive(record) for record in records)
    assert not cluster.is_running()


def test_cli_up_status_down(fresh_state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state_dir = fresh_state_dir
    assert cli.main(["--state-dir", str(state_dir), "up"]) == 0
    variables = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert variables["KUBECONFIG"] == str(state_dir / "kubeconfig")
    assert variables["POSTGRES_URL"].startswith("postgresql+psycopg://postgres:")
    assert variables["KUBE_ETL_STATE_DIR"] == str(state_dir)

    assert cli.main(["--state-dir", str(state_dir), "status"]) == 0
    status = capsys.readouterr().out
    for component in (
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "postgres",
        "podrunner",
    ):
        assert f"{component}: running" in status

    assert cli.main(["--state-dir", str(state_dir), "down"]) == 0
    assert cli.main(["--state-dir", str(state_dir), "status"]) == 1
