"""Helpers for the integration tests: the operator as a process, and a small ETLTask client.

The session fixtures in `tests/conftest.py` build these on the local cluster (or on the cluster that
KUBE_ETL_TEST_KUBECONFIG names); the tests use them to create tasks and wait for phases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

GROUP = "etl.kube-etl.io"
VERSION = "v1alpha1"
PLURAL = "etltasks"
TERMINAL = frozenset({"Succeeded", "Failed", "UpstreamFailed", "Cancelled"})


class OperatorProcess:
    """`etl-operator` run as a child process, so tests can stop, kill and restart it."""

    def __init__(
        self,
        environment: Mapping[str, str],
        log_dir: Path,
        *,
        arguments: Sequence[str] = (),
        name: str = "operator",
    ) -> None:
        self._environment = dict(environment)
        self._log_dir = log_dir
        self._arguments = list(arguments)
        self._name = name
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self.log_path = log_dir / f"{name}-0.log"

    def start(self, timeout: float = 60.0, *, ready_line: str = "kube-etl operator started") -> None:
        """Start the process and wait until its log shows `ready_line`."""
        self._starts += 1
        self.log_path = self._log_dir / f"{self._name}-{self._starts}.log"
        log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "etl_operator", *self._arguments],
            env={**os.environ, **self._environment},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready_line in self.log_path.read_text(errors="replace"):
                return
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"etl-operator exited with {self._process.returncode}; see {self.log_path}"
                )
            time.sleep(0.1)
        raise TimeoutError(f"etl-operator did not start within {timeout} s; see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(sig)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Tasks:
    """Create, read and wait for ETLTasks in one namespace."""

    api: client.ApiClient
    namespace: str

    @property
    def _custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api)

    def manifest(self, name: str, task: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ETLTask",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"task": task, **spec},
        }

    def create(self, name: str, task: str = "tests.jobs.Sleep", **spec: Any) -> dict[str, Any]:
        return self.create_manifest(self.manifest(name, task, **spec))

    def create_manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, manifest
        )
        return result

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return result

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def patch_spec(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": dict(spec)}
        )
        return result

    def delete(self, name: str) -> None:
        try:
            self._custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as error:
            if error.status != 404:
                raise

    def task_names(self) -> set[str]:
        result = self._custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        return {item["metadata"]["name"] for item in result["items"]}

    def pods(self) -> list[Any]:
        return list(self.core.list_namespaced_pod(self.namespace).items)

    def pod_names(self) -> set[str]:
        return {pod.metadata.name for pod in self.pods()}

    def wait_for(
        self,
        name: str,
        condition: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = 60.0,
        description: str = "the condition",
    ) -> dict[str, Any]:
        """Poll the task until `condition(status)` holds; fail with its last status otherwise."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                status = self.status(name)
            except ApiException as error:
                if error.status != 404:
                    raise
            if condition(status):
                return status
            time.sleep(0.1)
        raise AssertionError(
            f"ETLTask {self.namespace}/{name} did not reach {description} within {timeout} s; "
            f"last status: {status}"
        )

    def wait_for_phase(self, name: str, *phases: str, timeout: float = 60.0) -> dict[str, Any]:
        return self.wait_for(
            name,
            lambda status: status.get("phase") in phases,
            timeout=timeout,
            description=" or ".join(phases),
        )

    def wait_until_finished(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        return self.wait_for_phase(name, *TERMINAL, timeout=timeout)

    def watch_phases(self, timeout_seconds: int) -> Iterator[tuple[str, str | None, str]]:
        """Yield (task name, phase, resourceVersion) for every watch event in the namespace."""
        from kubernetes import watch

        stream = watch.Watch().stream(
            self._custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            timeout_seconds=timeout_seconds,
        )
        for event in stream:
            body = event["object"]
            yield (
                body["metadata"]["name"],
                (body.get("status") or {}).get("phase"),
                body["metadata"]["resourceVersion"],
            )


def strand_task_on_lost_node(
    tasks: Tasks, runner_pid: int, restart_runner: Callable[[], None]
) -> dict[str, Any]:
    """Run a long task, kill the pod runner under it, and return the task's final status.

    SIGKILL leaves the Node's status and lease unrenewed, as a crashed or cut-off node would. The pod
    runner is started again afterwards, also when the task never finishes.
    """
    tasks.create("stranded", parameters={"seconds": 600})
    tasks.wait_for_phase("stranded", "Running")
    os.kill(runner_pid, signal.SIGKILL)
    try:
        return tasks.wait_until_finished("stranded", timeout=240)
    finally:
        restart_runner()
