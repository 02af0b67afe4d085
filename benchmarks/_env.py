"""The benchmark environment: a local cluster, the task database, the CRD, the operator and namespaces."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from etl_localcluster.cluster import LocalCluster
from etl_runtime.taskdb import TaskDatabase

from ._kube import JSON, Kube, KubeError

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
CRD_PATH = REPOSITORY_ROOT / "crds" / "etltasks.etl.kube-etl.io.yaml"
TASKS_API = "/apis/etl.kube-etl.io/v1alpha1"
STARTED_LINE = "kube-etl operator started"


def machine() -> JSON:
    """Describe this machine: cores, memory, CPU model, and the load average now."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "free_h": free.strip(),
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        "python": platform.python_version(),
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


class OperatorProcess:
    """`python -m etl_operator` as a child process, with its pid for /proc readings."""

    def __init__(self, environment: Mapping[str, str], log_dir: Path) -> None:
        self._environment = dict(environment)
        self._log_dir = log_dir
        self._starts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = log_dir / "operator-0.log"

    def start(self, timeout: float = 300.0) -> float:
        """Start the operator; return the seconds until it logged that it started."""
        self._starts += 1
        self.log_path = self._log_dir / f"operator-{self._starts}.log"
        with self.log_path.open("wb") as log:
            began = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "etl_operator"],
                env={**os.environ, **self._environment},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = began + timeout
        while time.monotonic() < deadline:
            if STARTED_LINE in self.log_path.read_text(errors="replace"):
                return time.monotonic() - began
            if self.process.poll() is not None:
                raise RuntimeError(f"etl-operator exited with {self.process.returncode}; see {self.log_path}")
            time.sleep(0.02)
        raise TimeoutError(f"etl-operator did not start within {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the operator has not been started")
        return self.process.pid


class Environment:
    """A fresh local cluster with the task database, the ETLTask CRD and an operator process."""

    def __init__(self, keep: bool = False) -> None:
        self.work_dir = Path(tempfile.mkdtemp(prefix="kube-etl-bench-"))
        # The Postgres server runs as the postgres user, who must be able to enter the state folder.
        self.work_dir.chmod(0o755)
        self.keep = keep
        self.cluster = LocalCluster(
            self.work_dir / "cluster", python_paths=[REPOSITORY_ROOT / "examples", REPOSITORY_ROOT]
        )
        try:
            info = self.cluster.start()
            self.kubeconfig = str(info.kubeconfig)
            self.taskdb_url = self.cluster.create_database("kube_etl")
            database = TaskDatabase(self.taskdb_url)
            database.upgrade()
            database.dispose()
            self.engine: Engine = create_engine(self.taskdb_url)
            # The superuser on the task database, for CHECKPOINT, which its own role may not run.
            admin_url = make_url(self.cluster.postgres.admin_url).set(database="kube_etl")
            self.admin_engine: Engine = create_engine(admin_url)
            self.kube = Kube(self.kubeconfig)
            self._install_crd()
        except BaseException:
            self.cluster.stop()
            shutil.rmtree(self.work_dir, ignore_errors=True)
            raise
        self.operator = OperatorProcess(
            {"KUBECONFIG": self.kubeconfig, "KUBE_ETL_DATABASE_URL": self.taskdb_url}, self.work_dir
        )

    def close(self) -> None:
        self.operator.stop()
        self.engine.dispose()
        self.admin_engine.dispose()
        self.cluster.stop()
        if not self.keep:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _install_crd(self) -> None:
        manifest = yaml.safe_load(CRD_PATH.read_text())
        self.kube.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", manifest)
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{manifest['metadata']['name']}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            conditions = (self.kube.request("GET", path).get("status") or {}).get("conditions") or []
            if any(item["type"] == "Established" and item["status"] == "True" for item in conditions):
                return
            time.sleep(0.2)
        raise TimeoutError("the ETLTask CRD was not Established within 60 s")

    def new_namespace(self, prefix: str, annotations: Mapping[str, str] | None = None) -> str:
        """Create a namespace with the task database Secret; wait for its default ServiceAccount."""
        namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
        metadata: JSON = {"name": namespace, "annotations": dict(annotations or {})}
        self.kube.request("POST", "/api/v1/namespaces", {"metadata": metadata})
        self.kube.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/secrets",
            {"metadata": {"name": "kube-etl-taskdb"}, "stringData": {"url": self.taskdb_url}},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.kube.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
                return namespace
            except KubeError:
                time.sleep(0.1)
        raise TimeoutError(f"namespace {namespace} got no default ServiceAccount within 60 s")

    def tasks_path(self, namespace: str) -> str:
        return f"{TASKS_API}/namespaces/{namespace}/etltasks"

    def pods_path(self, namespace: str) -> str:
        return f"/api/v1/namespaces/{namespace}/pods"

    def create_task(self, namespace: str, name: str, **spec: Any) -> None:
        manifest = {
            "apiVersion": "etl.kube-etl.io/v1alpha1",
            "kind": "ETLTask",
            "metadata": {"name": name},
            "spec": {"task": "tests.jobs.Sleep", "parameters": {"seconds": 0}, **spec},
        }
        self.kube.request("POST", self.tasks_path(namespace), manifest)

    def status_history(self, namespace: str) -> dict[str, dict[str, float]]:
        """Return each task's first `recorded_at` per status in the task database, as Unix seconds."""
        query = text(
            "SELECT r.name, h.status, extract(epoch FROM min(h.recorded_at)) FROM task_status_history h "
            "JOIN task_run r ON r.id = h.task_id WHERE r.namespace = :namespace GROUP BY r.name, h.status"
        )
        result: dict[str, dict[str, float]] = {}
        with self.engine.connect() as connection:
            for name, status, epoch in connection.execute(query, {"namespace": namespace}):
                result.setdefault(name, {})[status] = float(epoch)
        return result
