"""The whole local cluster: control plane, Postgres and the pod runner (a stand-in for kubelet).

`etl-localcluster up/down/status` (`cli`) and the integration tests call `LocalCluster`. `start` starts the
control plane (`controlplane`), a throwaway Postgres cluster (`postgres`) and the pod runner as a separate
process, then waits until the Node is Ready and schedulable and the `default` ServiceAccount exists in the
`default` namespace. Each component records its processes in the state folder, so
`LocalCluster.load(STATE_DIR)` reconnects from another process and `stop` ends everything. `start` on a
cluster that already runs returns at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import urllib3

from etl_localcluster._kubeapi import KubeApi, KubeApiError
from etl_localcluster._podworker import stop_recorded_processes
from etl_localcluster._processes import (
    ProcessError,
    ProcessRecord,
    is_alive,
    start_process,
    stop_process,
    tail,
)
from etl_localcluster.controlplane import ControlPlane, ControlPlaneError, ControlPlaneLayout
from etl_localcluster.podrunner import DEFAULT_NODE_NAME
from etl_localcluster.postgres import PostgresCluster, PostgresError

logger = logging.getLogger(__name__)

PACKAGE_PARENT = Path(__file__).resolve().parent.parent
REPOSITORY_ROOT = PACKAGE_PARENT.parent
BUILD_SCRIPT_VARIABLE = "KUBE_ETL_BUILD_SCRIPT"
_READY_TIMEOUT_SECONDS = 60.0
_POLL_INTERVAL_SECONDS = 0.2
# The runner gives pods up to 10 s to stop, then needs a moment to report their status.
_RUNNER_STOP_TIMEOUT_SECONDS = 25.0


class LocalClusterError(RuntimeError):
    """The local cluster could not be built, started, found or stopped."""


def build_script_path() -> Path:
    """Return the control plane build script: `$KUBE_ETL_BUILD_SCRIPT` or the repository's copy."""
    configured = os.environ.get(BUILD_SCRIPT_VARIABLE)
    return Path(configured) if configured else REPOSITORY_ROOT / "hack" / "build-control-plane.sh"


def build_control_plane() -> Path:
    """Run the build script and return the bin folder that it prints on its last line.

    The first run builds the binaries (this takes many minutes); later runs only check that they exist.
    The script's progress messages go to this process's stderr.
    """
    script = build_script_path()
    if not script.is_file():
        raise LocalClusterError(
            f"control plane build script {script} not found; set {BUILD_SCRIPT_VARIABLE} to its path"
        )
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise LocalClusterError(f"{script} failed with exit code {result.returncode}; see its messages above")
    return Path(lines[-1])


@dataclass(frozen=True)
class ClusterInfo:
    """How to reach a running local cluster."""

    state_dir: Path
    kubeconfig: Path
    api_server_url: str
    postgres_url: str
    node_name: str

    def as_variables(self) -> dict[str, str]:
        """Return the connection details as environment variable assignments."""
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "POSTGRES_URL": self.postgres_url,
            "KUBE_ETL_STATE_DIR": str(self.state_dir),
        }


class LocalCluster:
    """Control plane, Postgres and pod runner, with their state in STATE_DIR."""

    def __init__(
        self, state_dir: Path, python_paths: Sequence[Path | str] = (), *, node_name: str = DEFAULT_NODE_NAME
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.python_paths = [str(Path(path).resolve()) for path in python_paths]
        self._requested_python_paths = list(self.python_paths)
        self.node_name = node_name
        self.bin_dir: Path | None = None
        self.postgres = PostgresCluster(self.state_dir)
        self.runner: ProcessRecord | None = None
        self._read_state()

    @classmethod
    def load(cls, state_dir: Path) -> LocalCluster:
        """Return the cluster recorded in STATE_DIR, running or not."""
        if not (state_dir / "cluster.json").exists():
            raise LocalClusterError(
                f"no local cluster recorded in {state_dir}; start one with `etl-localcluster --state-dir "
                f"{state_dir} up`"
            )
        return cls(state_dir)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "cluster.json"

    @property
    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig."""
        return ControlPlaneLayout(self.state_dir).admin_kubeconfig

    @property
    def node_kubeconfig_path(self) -> Path:
        """The kubeconfig of the pod runner (user `system:node:NODE` in group `system:nodes`)."""
        return ControlPlaneLayout(self.state_dir).component_kubeconfig(f"node-{self.node_name}")

    @property
    def control_plane(self) -> ControlPlane:
        """The control plane of this cluster."""
        if self.bin_dir is None:
            return ControlPlane.load(self.state_dir)
        return ControlPlane(self.bin_dir, self.state_dir)

    def info(self) -> ClusterInfo:
        """Return the connection details."""
        return ClusterInfo(
            state_dir=self.state_dir,
            kubeconfig=self.kubeconfig_path,
            api_server_url=self.control_plane.api_server_url,
            postgres_url=self.postgres.admin_url,
            node_name=self.node_name,
        )

    def component_states(self) -> dict[str, bool]:
        """Return whether each process of the cluster runs, by name."""
        states: dict[str, bool] = {}
        with contextlib.suppress(ControlPlaneError):
            states.update({record.name: is_alive(record) for record in self.control_plane.processes})
        states["postgres"] = self.postgres.is_running()
        states["podrunner"] = self.runner is not None and is_alive(self.runner)
        return states

    def is_running(self) -> bool:
        """Return whether the control plane, Postgres and the pod runner all run."""
        try:
            control_plane_running = self.control_plane.is_running()
        except ControlPlaneError:
            return False
        runner_running = self.runner is not None and is_alive(self.runner)
        return control_plane_running and self.postgres.is_running() and runner_running

    def start(self, bin_dir: Path | None = None) -> ClusterInfo:
        """Start every component and wait until pods can be scheduled; return at once if all run.

        BIN_DIR contains the control plane binaries. Without it, the build script provides them.
        """
        if self.is_running():
            self._check_python_paths()
            return self.info()
        if self._requested_python_paths:
            self.python_paths = self._requested_python_paths
        if self.state_file.exists():
            self.stop()
        self.bin_dir = bin_dir or build_control_plane()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_state()
        try:
            self._start_components()
        except (ProcessError, KubeApiError, OSError, urllib3.exceptions.HTTPError) as error:
            self._stop_after_failed_start()
            raise LocalClusterError(f"the local cluster failed to start: {error}") from error
        except BaseException:
            self._stop_after_failed_start()
            raise
        return self.info()

    def _check_python_paths(self) -> None:
        requested = self._requested_python_paths
        if requested and requested != self.python_paths:
            raise LocalClusterError(
                f"the local cluster in {self.state_dir} runs with python paths {self.python_paths}, not "
                f"{requested}; stop it with `etl-localcluster --state-dir {self.state_dir} down` to start it "
                "with other paths"
            )

    def _stop_after_failed_start(self) -> None:
        # The error that stopped the start matters more than one from stopping, which is only logged.
        try:
            self.stop()
        except (LocalClusterError, ProcessError) as error:
            logger.warning("stopping the local cluster after a failed start failed: %s", error)

    def stop(self) -> None:
        """Stop the pod runner and its pods' processes, the control plane and Postgres.

        A step that fails does not keep the later steps from running; the errors are raised together.
        """
        errors: list[str] = []
        steps = (self._stop_runner, self._stop_pod_processes, self._stop_control_plane, self.postgres.stop)
        for step in steps:
            try:
                step()
            except (ProcessError, ControlPlaneError, PostgresError) as error:
                errors.append(str(error))
        self.state_file.unlink(missing_ok=True)
        if errors:
            raise LocalClusterError("; ".join(errors))

    def _stop_runner(self) -> None:
        if self.runner is not None:
            stop_process(self.runner, _RUNNER_STOP_TIMEOUT_SECONDS)
            self.runner = None

    def _stop_pod_processes(self) -> None:
        # The runner stops its pods' processes when it gets SIGTERM; this catches those of a runner that
        # was killed.
        stopped = stop_recorded_processes((self.state_dir / "pods").glob("*/*.pid"))
        if stopped:
            logger.warning("stopped pod processes that the pod runner left behind: %s", stopped)

    def _stop_control_plane(self) -> None:
        if (self.state_dir / "controlplane.json").exists():
            ControlPlane.load(self.state_dir).stop()

    def restart_pod_runner(self) -> None:
        """Stop the pod runner (if it runs) and start a new one, as when a node's kubelet restarts.

        The new runner stops the processes that the old one left behind and marks their pods Failed.
        """
        if self.runner is not None:
            stop_process(self.runner, _RUNNER_STOP_TIMEOUT_SECONDS)
        self.runner = self._start_runner()
        self._write_state()

    def create_database(self, name: str) -> str:
        """Create a database and a login role NAME in the cluster's Postgres; return its SQLAlchemy URL."""
        return self.postgres.create_database(name)

    def _start_components(self) -> None:
        assert self.bin_dir is not None
        control_plane = ControlPlane(self.bin_dir, self.state_dir)
        control_plane.start()
        self.postgres.start()
        control_plane.write_kubeconfig(
            self.node_kubeconfig_path, f"system:node:{self.node_name}", ["system:nodes"]
        )
        self.runner = self._start_runner()
        self._write_state()
        with contextlib.closing(KubeApi(self.kubeconfig_path)) as api:
            self._wait_until(
                "the Node to be Ready and schedulable", lambda: _node_is_schedulable(api, self.node_name)
            )
            self._wait_until(
                "the default ServiceAccount in namespace default",
                lambda: api.get_or_none("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            )

    def _start_runner(self) -> ProcessRecord:
        command = [
            sys.executable,
            "-m",
            "etl_localcluster.podrunner",
            "--kubeconfig",
            str(self.node_kubeconfig_path),
            "--state-dir",
            str(self.state_dir),
            "--node-name",
            self.node_name,
        ]
        for path in self.python_paths:
            command += ["--python-path", path]
        environment = dict(os.environ)
        # The runner must import this package even when it is not installed in the virtualenv.
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE_PARENT), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        log_path = ControlPlaneLayout(self.state_dir).log("podrunner")
        return start_process("podrunner", command, log_path, env=environment)

    def _wait_until(self, description: str, check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        while not check():
            if self.runner is not None and not is_alive(self.runner):
                raise LocalClusterError(
                    f"the pod runner exited while waiting for {description}; see {self.runner.log_path}. "
                    f"Last lines:\n{tail(Path(self.runner.log_path))}"
                )
            if time.monotonic() >= deadline:
                log = self.runner.log_path if self.runner else self.state_dir / "logs"
                raise LocalClusterError(
                    f"timed out after {_READY_TIMEOUT_SECONDS:.0f} s waiting for {description}; see {log} "
                    f"and {ControlPlaneLayout(self.state_dir).log('kube-controller-manager')}"
                )
            time.sleep(_POLL_INTERVAL_SECONDS)

    def _write_state(self) -> None:
        state = {
            "bin_dir": str(self.bin_dir) if self.bin_dir else None,
            "node_name": self.node_name,
            "python_paths": self.python_paths,
            "podrunner": self.runner.to_json() if self.runner else None,
        }
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def _read_state(self) -> None:
        if not self.state_file.exists():
            return
        state = json.loads(self.state_file.read_text())
        self.bin_dir = Path(state["bin_dir"]) if state.get("bin_dir") else None
        self.node_name = str(state["node_name"])
        self.python_paths = [str(path) for path in state["python_paths"]]
        self.runner = ProcessRecord.from_json(state["podrunner"]) if state.get("podrunner") else None


def _node_is_schedulable(api: KubeApi, node_name: str) -> bool:
    node = api.get_or_none(f"/api/v1/nodes/{node_name}")
    if node is None:
        return False
    ready = any(
        entry["type"] == "Ready" and entry["status"] == "True"
        for entry in node.get("status", {}).get("conditions", [])
    )
    # The API server taints a new Node as not ready; the node lifecycle controller removes the taint once
    # it has seen the Ready condition.
    tainted = any(
        taint["key"] == "node.kubernetes.io/not-ready" for taint in node.get("spec", {}).get("taints", [])
    )
    return ready and not tainted
