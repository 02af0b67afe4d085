"""The pod runner: a STAND-IN FOR KUBELET, and the only stand-in in kube-etl.

`cluster.LocalCluster` starts it as a separate process (`python -m etl_localcluster.podrunner`), so it
keeps running like a node when the process that started the cluster ends. It registers a Node, renews
the node's Lease, and runs every pod that the scheduler binds to that node as local processes in the
project's own environment. What it does differently from kubelet:

- The image is ignored. A container's `command` plus `args` run as a local process with the runner's
  Python virtualenv first on PATH and the runner's `--python-path` folders first on PYTHONPATH, so job
  modules that an image would contain must be importable from there. A container needs a `command`,
  because the runner cannot read an image's entrypoint.
- The process gets host paths. Volumes are files in `STATE_DIR/pods/NAMESPACE_POD/volumes`, and env
  values, command and argument items and `workingDir` that start with a `mountPath` are rewritten to them.
  Without `workingDir`, a process starts in its pod folder `STATE_DIR/pods/NAMESPACE_POD`.
- Each container is a process group. When its main process exits, the rest of the group is killed, as a
  container runtime ends a container's remaining processes.
- Only `restartPolicy: Never` is supported. A pod with another restart policy stays Pending with reason
  `RestartPolicyNotSupported`.
- A configuration error that can never resolve (an unsupported field) fails the pod at once, where kubelet
  would keep it Pending. A missing Secret or ConfigMap is retried, as kubelet does.
- Logs stay in `STATE_DIR/pods/NAMESPACE_POD/CONTAINER.log`. `kubectl logs` cannot reach them, because
  there is no kubelet API; use `etl-localcluster logs NAMESPACE POD`.
- Probes, resources, ports, service account tokens and security contexts are ignored, so every process
  runs as the runner's user. Every pod gets the IP address 127.0.0.1.
- When the runner starts, it stops processes that an earlier runner left behind and marks their pods
  Failed with reason `NodeLost`. Pending pods are started.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

from etl_localcluster._kubeapi import MERGE_PATCH, KubeApi, KubeApiError, is_conflict, is_not_found
from etl_localcluster._podworker import (
    DEFAULT_TERMINATION_GRACE_SECONDS,
    FinishedPods,
    PodWorker,
    RunnerContext,
    condition,
    now_rfc3339,
    pod_folder_name,
    stop_recorded_processes,
)

JSON = dict[str, Any]

logger = logging.getLogger("etl_localcluster.podrunner")

DEFAULT_NODE_NAME = "kube-etl-local-node"
MAX_PODS = "500"
NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
LEASE_RENEW_INTERVAL_SECONDS = 10.0
NODE_STATUS_INTERVAL_SECONDS = 60.0
# The API server ends a watch after this time; the runner then resumes from the last resource version.
WATCH_TIMEOUT_SECONDS = 300
_RETRY_DELAY_SECONDS = 1.0
_TERMINAL_PHASES = ("Succeeded", "Failed")
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}


class _WatchExpired(Exception):
    """The watch's resource version is too old (status 410): list the pods again."""


@dataclass(frozen=True)
class NodeCapacity:
    """The resources that the Node reports as capacity and allocatable."""

    cpu: str
    memory: str
    pods: str = MAX_PODS

    @classmethod
    def of_this_machine(cls) -> NodeCapacity:
        """Return the CPU count and total memory of this machine."""
        memory_kib = 0
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
        return cls(cpu=str(os.cpu_count() or 1), memory=f"{memory_kib}Ki")

    def resources(self) -> dict[str, str]:
        return {"cpu": self.cpu, "memory": self.memory, "pods": self.pods}


def micro_time_now() -> str:
    """Return the current UTC time in the API's MicroTime format (used by Leases)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_conditions(heartbeat: str, transition: str) -> list[JSON]:
    """Return the Node conditions of a healthy node."""
    states = [
        ("Ready", "True", "PodRunnerReady", "The pod runner, a stand-in for kubelet, is ready"),
        ("MemoryPressure", "False", "PodRunnerHasSufficientMemory", "The pod runner does not check memory"),
        ("DiskPressure", "False", "PodRunnerHasNoDiskPressure", "The pod runner does not check disk space"),
        ("PIDPressure", "False", "PodRunnerHasSufficientPID", "The pod runner does not check PIDs"),
    ]
    return [
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": transition,
        }
        for kind, status, reason, message in states
    ]


def node_object(name: str, capacity: NodeCapacity, version: str, transition: str) -> JSON:
    """Return the Node that the runner registers."""
    architecture = _ARCHITECTURES.get(platform.machine(), platform.machine())
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": architecture,
            },
            "annotations": {
                "kube-etl.io/pod-runner": "stand-in for kubelet: runs containers as local processes",
            },
        },
        "spec": {},
        "status": {
            "capacity": capacity.resources(),
            "allocatable": capacity.resources(),
            "conditions": node_conditions(transition, transition),
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "kube-etl pod runner (local processes)",
                "containerRuntimeVersion": "localprocess://0",
                "kubeletVersion": version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": architecture,
            },
        },
    }


def lost_pod_status(pod: JSON) -> JSON:
    """Return the status of a pod whose processes an earlier runner started and this one cannot follow."""
    now = now_rfc3339()
    message = "The pod runner restarted and lost track of this pod's processes, so it stopped them"
    containers = pod["spec"]["containers"]
    return {
        "phase": "Failed",
        "reason": "NodeLost",
        "message": message,
        "conditions": [
            condition("ContainersReady", False, "PodCompleted"),
            condition("Ready", False, "PodCompleted"),
        ],
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 137,
                        "reason": "ContainerStatusUnknown",
                        "message": message,
                        "finishedAt": now,
                    }
                },
            }
            for container in containers
        ],
    }


def was_started(pod: JSON) -> bool:
    """Return whether a runner has started processes for POD (a container that runs or ran)."""
    status = pod.get("status", {})
    if status.get("phase") == "Running":
        return True
    entries = status.get("containerStatuses", []) + status.get("initContainerStatuses", [])
    return any(
        "running" in entry.get("state", {}) or "terminated" in entry.get("state", {}) for entry in entries
    )


class PodRunner:
    """Registers a Node and runs the pods bound to it as local processes (a stand-in for kubelet)."""

    def __init__(
        self,
        kubeconfig: Path,
        state_dir: Path,
        *,
        node_name: str = DEFAULT_NODE_NAME,
        python_paths: Sequence[str] = (),
        capacity: NodeCapacity | None = None,
        shutdown_grace_seconds: float = 10.0,
    ) -> None:
        self.node_name = node_name
        self.api = KubeApi(kubeconfig)
        self.pods_dir = state_dir / "pods"
        self.capacity = capacity or NodeCapacity.of_this_machine()
        self.context = RunnerContext(
            api=self.api,
            node_name=node_name,
            pods_dir=self.pods_dir,
            python_paths=tuple(str(Path(path).resolve()) for path in python_paths),
            virtualenv_bin=Path(sys.executable).parent,
            runner_environment=dict(os.environ),
            shutdown_grace_seconds=shutdown_grace_seconds,
        )
        self._stopping = threading.Event()
        self._workers_lock = threading.Lock()
        self._workers: dict[str, PodWorker] = {}
        self._finished = FinishedPods()
        self._registered_at = now_rfc3339()

    def run(self) -> None:
        """Register the node, then run pods until `stop` is called."""
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        leftovers = stop_recorded_processes(self.pods_dir.glob("*/*.pid"))
        if leftovers:
            logger.warning(
                "stopped %d processes left by an earlier pod runner: %s", len(leftovers), leftovers
            )
        self._register_node()
        threading.Thread(target=self._heartbeat_loop, name="node-heartbeat", daemon=True).start()
        threading.Thread(target=self._watch_loop, name="pod-watch", daemon=True).start()
        logger.info("pod runner for node %s is running", self.node_name)
        self._stopping.wait()
        self._shut_down_workers()
        logger.info("pod runner for node %s stopped", self.node_name)

    def stop(self) -> None:
        """Make `run` return after it has stopped the running pods' processes."""
        self._stopping.set()

    # The node.

    def _register_node(self) -> None:
        version = str(self.api.get("/version").get("gitVersion", ""))
        node = node_object(self.node_name, self.capacity, version, self._registered_at)
        try:
            self.api.create("/api/v1/nodes", node)
            logger.info("registered node %s", self.node_name)
        except KubeApiError as error:
            if not is_conflict(error):
                raise
            self.api.patch(f"/api/v1/nodes/{self.node_name}", {"metadata": node["metadata"]})
            self.api.patch(f"/api/v1/nodes/{self.node_name}/status", {"status": node["status"]})
            logger.info("node %s existed already; updated its status", self.node_name)
        self._renew_lease()

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{NODE_LEASE_NAMESPACE}/leases/{self.node_name}"
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": micro_time_now(),
        }
        try:
            self.api.patch(path, {"spec": spec}, content_type=MERGE_PATCH)
        except KubeApiError as error:
            if not is_not_found(error):
                raise
            node = self.api.get(f"/api/v1/nodes/{self.node_name}")
            owner = {
                "apiVersion": "v1",
                "kind": "Node",
                "name": self.node_name,
                "uid": node["metadata"]["uid"],
            }
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.node_name,
                    "namespace": NODE_LEASE_NAMESPACE,
                    "ownerReferences": [owner],
                },
                "spec": spec,
            }
            self.api.create(f"/apis/coordination.k8s.io/v1/namespaces/{NODE_LEASE_NAMESPACE}/leases", lease)

    def _report_node_status(self) -> None:
        conditions = node_conditions(now_rfc3339(), self._registered_at)
        try:
            self.api.patch(f"/api/v1/nodes/{self.node_name}/status", {"status": {"conditions": conditions}})
        except KubeApiError as error:
            if not is_not_found(error):
                raise
            logger.warning("node %s was deleted; registering it again", self.node_name)
            self._register_node()

    def _heartbeat_loop(self) -> None:
        elapsed_since_status = 0.0
        while not self._stopping.wait(LEASE_RENEW_INTERVAL_SECONDS):
            elapsed_since_status += LEASE_RENEW_INTERVAL_SECONDS
            try:
                if elapsed_since_status >= NODE_STATUS_INTERVAL_SECONDS:
                    self._report_node_status()
                    elapsed_since_status = 0.0
                self._renew_lease()
            except (KubeApiError, OSError, urllib3.exceptions.HTTPError) as error:
                logger.warning(
                    "node heartbeat failed, retrying in %.0f s: %s", LEASE_RENEW_INTERVAL_SECONDS, error
                )

    # The pods.

    def _watch_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                resource_version = self._list_and_sync()
                while not self._stopping.is_set():
                    resource_version = self._watch(resource_version)
            except _WatchExpired:
                logger.info("pod watch expired; listing the pods again")
            except (KubeApiError, OSError, urllib3.exceptions.HTTPError) as error:
                logger.warning("pod watch failed, retrying in %.0f s: %s", _RETRY_DELAY_SECONDS, error)
                self._stopping.wait(_RETRY_DELAY_SECONDS)
            except Exception:
                logger.exception("pod watch failed unexpectedly, retrying in %.0f s", _RETRY_DELAY_SECONDS)
                self._stopping.wait(_RETRY_DELAY_SECONDS)

    def _field_selector(self) -> str:
        return f"spec.nodeName={self.node_name}"

    def _list_and_sync(self) -> str:
        pod_list = self.api.get("/api/v1/pods", fieldSelector=self._field_selector())
        present = set()
        for pod in pod_list.get("items", []):
            present.add(pod["metadata"]["uid"])
            self._handle(pod, "ADDED")
        with self._workers_lock:
            vanished = [worker for uid, worker in self._workers.items() if uid not in present]
        for worker in vanished:
            worker.mark_deleted()
        return str(pod_list["metadata"]["resourceVersion"])

    def _watch(self, resource_version: str) -> str:
        """Handle watch events until the server ends the watch; return the last resource version."""
        events = self.api.watch(
            "/api/v1/pods", resource_version, WATCH_TIMEOUT_SECONDS, fieldSelector=self._field_selector()
        )
        for event in events:
            kind, obj = event["type"], event["object"]
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _WatchExpired()
                raise KubeApiError(
                    "GET",
                    "/api/v1/pods?watch=true",
                    int(obj.get("code", 0)),
                    str(obj.get("reason", "")),
                    str(obj.get("message", "")),
                )
            resource_version = str(obj["metadata"]["resourceVersion"])
            if kind != "BOOKMARK":
                self._handle(obj, kind)
            if self._stopping.is_set():
                break
        return resource_version

    def _handle(self, pod: JSON, event_type: str) -> None:
        """Route one version of a pod to its worker, or decide what to do with a pod that has none."""
        metadata = pod["metadata"]
        uid = metadata["uid"]
        with self._workers_lock:
            worker = self._workers.get(uid)
        if event_type == "DELETED":
            if worker is not None:
                worker.mark_deleted()
            return
        if worker is not None:
            worker.update(pod)
            return
        if metadata.get("deletionTimestamp"):
            self._remove_pod(pod)
        elif uid in self._finished or pod.get("status", {}).get("phase") in _TERMINAL_PHASES:
            self._finished.add(uid)
        elif pod["spec"].get("restartPolicy", "Always") != "Never":
            self._reject_restart_policy(pod)
        elif was_started(pod):
            self._mark_lost(pod)
        else:
            self._start_worker(pod)

    def _start_worker(self, pod: JSON) -> None:
        if self._stopping.is_set():
            return
        worker = PodWorker(pod, self.context, self._worker_finished)
        with self._workers_lock:
            self._workers[worker.uid] = worker
        worker.start()

    def _worker_finished(self, uid: str) -> None:
        # Mark the pod finished before dropping its worker, so that no watch event in between finds a
        # started pod without a worker and reports it lost.
        self._finished.add(uid)
        with self._workers_lock:
            self._workers.pop(uid, None)

    def _pod_path(self, pod: JSON) -> str:
        return f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}"

    def _stop_processes_of(self, pod: JSON) -> None:
        metadata = pod["metadata"]
        folder = self.pods_dir / pod_folder_name(metadata["namespace"], metadata["name"])
        stop_recorded_processes(folder.glob("*.pid"), pod_uid=metadata["uid"])

    def _remove_pod(self, pod: JSON) -> None:
        """Delete a pod that has a deletionTimestamp and no worker, as kubelet does."""
        self._stop_processes_of(pod)
        self._finished.add(pod["metadata"]["uid"])
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": pod["metadata"]["uid"]}}
        try:
            self.api.delete(self._pod_path(pod), body)
        except KubeApiError as error:
            if not (is_not_found(error) or is_conflict(error)):
                raise

    def _mark_lost(self, pod: JSON) -> None:
        logger.warning(
            "pod %s/%s ran under an earlier pod runner; marking it Failed",
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
        )
        self._stop_processes_of(pod)
        self._finished.add(pod["metadata"]["uid"])
        self._patch_status(pod, lost_pod_status(pod))

    def _reject_restart_policy(self, pod: JSON) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        message = (
            f"restartPolicy {policy} is not supported by the pod runner (a stand-in for kubelet); use Never"
        )
        logger.warning("pod %s/%s: %s", pod["metadata"]["namespace"], pod["metadata"]["name"], message)
        self._finished.add(pod["metadata"]["uid"])
        waiting = {"waiting": {"reason": "RestartPolicyNotSupported", "message": message}}
        status = {
            "phase": "Pending",
            "conditions": [condition("Ready", False, "RestartPolicyNotSupported")],
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": waiting,
                }
                for container in pod["spec"]["containers"]
            ],
        }
        self._patch_status(pod, status)

    def _patch_status(self, pod: JSON, status: JSON) -> None:
        body = {"metadata": {"uid": pod["metadata"]["uid"]}, "status": status}
        try:
            self.api.patch(self._pod_path(pod) + "/status", body)
        except KubeApiError as error:
            if not (is_not_found(error) or is_conflict(error)):
                raise

    def _shut_down_workers(self) -> None:
        with self._workers_lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.shut_down()
        for worker in workers:
            worker.join(self.context.shutdown_grace_seconds + DEFAULT_TERMINATION_GRACE_SECONDS)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the runner's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m etl_localcluster.podrunner",
        description="Stand-in for kubelet: register a Node and run the pods bound to it as local processes.",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        required=True,
        help="kubeconfig of the node's user (system:node:NAME in group system:nodes)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        required=True,
        help="folder for pod logs, volumes and PID files (STATE_DIR/pods)",
    )
    parser.add_argument("--node-name", default=DEFAULT_NODE_NAME, help="name of the Node to register")
    parser.add_argument(
        "--python-path",
        action="append",
        default=[],
        metavar="FOLDER",
        help="folder to put first on the PYTHONPATH of every pod process; repeatable",
    )
    parser.add_argument("--cpu", help="CPU capacity of the Node (default: the CPU count of this machine)")
    parser.add_argument(
        "--memory", help="memory capacity of the Node, e.g. 8Gi (default: this machine's memory)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the pod runner until SIGTERM or SIGINT."""
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    capacity = NodeCapacity.of_this_machine()
    capacity = NodeCapacity(cpu=arguments.cpu or capacity.cpu, memory=arguments.memory or capacity.memory)
    runner = PodRunner(
        arguments.kubeconfig,
        arguments.state_dir,
        node_name=arguments.node_name,
        python_paths=arguments.python_path,
        capacity=capacity,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: runner.stop())
    runner.run()


if __name__ == "__main__":
    main()
