"""Run one pod's containers as local processes and report their state, as kubelet's pod worker does.

`podrunner.PodRunner` starts a `PodWorker` thread for each new pod bound to its node and forwards every
later version of the pod object to it. The worker writes the pod's volumes, starts the init containers one
after another and then all containers, and patches the pod status (`Running`, then `Succeeded` or
`Failed`). On deletion, on `activeDeadlineSeconds` or on runner shutdown it stops the processes with
SIGTERM and, after the grace period, SIGKILL. While the API server cannot be reached (it restarts, say),
the processes run on and the worker retries its status patches until the server is back.

Each container process runs in a session of its own, with stdout and stderr in
`STATE_DIR/pods/NAMESPACE_POD/CONTAINER.log` and its PID in `CONTAINER.pid` beside it, so that a later
runner can stop processes that an earlier runner left behind.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

from etl_localcluster._kubeapi import KubeApi, KubeApiError
from etl_localcluster._podspec import (
    POD_IP,
    ContainerConfigError,
    PreparedContainer,
    decode_config_map_data,
    decode_secret_data,
    materialise_volumes,
    prepare_container,
    process_environment,
)
from etl_localcluster._processes import ProcessRecord, is_alive, read_start_ticks, stop_process, tail

JSON = dict[str, Any]

logger = logging.getLogger("etl_localcluster.podrunner")

DEFAULT_TERMINATION_GRACE_SECONDS = 30
# Exit code and reason that container runtimes report when a process cannot be started at all.
START_FAILURE_EXIT_CODE = 128
# Limits of the termination message taken from the end of the log.
TERMINATION_MESSAGE_MAX_LINES = 80
TERMINATION_MESSAGE_MAX_BYTES = 2048
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
# A status patch that fails for a reason that may pass (the API server is unreachable or responds with
# 5xx or 429) is retried this long, with a delay that doubles up to the second value.
_STATUS_PATCH_RETRY_SECONDS = 300.0
_STATUS_PATCH_MAX_DELAY_SECONDS = 5.0
# Errors of a request that did not reach the API server or got no complete response.
_UNREACHABLE_ERRORS = (OSError, urllib3.exceptions.HTTPError)
_MAX_CONFIG_RETRY_SECONDS = 10.0


def now_rfc3339() -> str:
    """Return the current UTC time in the API's timestamp format (seconds precision)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_folder_name(namespace: str, name: str) -> str:
    """Return the name of a pod's folder below STATE_DIR/pods."""
    return f"{namespace}_{name}"


@dataclass(frozen=True)
class RunnerContext:
    """Settings and clients that all pod workers of one runner share."""

    api: KubeApi
    node_name: str
    pods_dir: Path
    python_paths: tuple[str, ...]
    virtualenv_bin: Path
    runner_environment: Mapping[str, str]
    # Grace period for container processes when the runner itself stops.
    shutdown_grace_seconds: float = 10.0


class ApiObjectSource:
    """Reads Secrets and ConfigMaps from the API server, each object once per instance."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api
        self._cache: dict[str, JSON | None] = {}

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        secret = self._get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        return None if secret is None else decode_secret_data(secret.get("data"))

    def config_map_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        config_map = self._get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        if config_map is None:
            return None
        return decode_config_map_data(config_map.get("data"), config_map.get("binaryData"))

    def _get(self, path: str) -> JSON | None:
        if path not in self._cache:
            try:
                self._cache[path] = self._api.get_or_none(path)
            except KubeApiError as error:
                # The node authorizer allows reading a Secret only after the API server has linked it to
                # a pod on this node, which can take a moment after the pod is bound: retry later.
                raise ContainerConfigError(f"could not read {path}: {error.status} {error.reason}") from error
            except _UNREACHABLE_ERRORS as error:
                raise ContainerConfigError(f"could not read {path}: {error}") from error
        return self._cache[path]


@dataclass
class ContainerRun:
    """One container of the pod and the state of its process."""

    prepared: PreparedContainer
    log_path: Path
    pid_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    signal_number: int | None = None
    failure_reason: str = ""
    failure_message: str = ""

    @property
    def name(self) -> str:
        return self.prepared.name

    @property
    def finished(self) -> bool:
        return self.exit_code is not None

    def collect_exit(self) -> None:
        """Record the exit status if the process has ended, and kill what it left in its process group.

        A container runtime ends every process of a container when its main process exits, so the pod
        runner does the same for background children that the process started.
        """
        if self.process is None or self.finished or self.process.poll() is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        code = self.process.returncode
        self.finished_at = now_rfc3339()
        if code < 0:
            self.signal_number = -code
            self.exit_code = 128 - code
        else:
            self.exit_code = code
        self.pid_path.unlink(missing_ok=True)

    def fail_to_start(self, reason: str, message: str) -> None:
        """Record that the process could not be started."""
        self.started_at = self.started_at or now_rfc3339()
        self.finished_at = now_rfc3339()
        self.exit_code = START_FAILURE_EXIT_CODE
        self.failure_reason = reason
        self.failure_message = message

    def state(self) -> JSON:
        """Return the `state` of this container's status."""
        if self.finished:
            return {"terminated": self._terminated_state()}
        if self.process is not None:
            return {"running": {"startedAt": self.started_at}}
        return {"waiting": {"reason": "ContainerCreating"}}

    def _terminated_state(self) -> JSON:
        reason = self.failure_reason or ("Completed" if self.exit_code == 0 else "Error")
        terminated: JSON = {
            "exitCode": self.exit_code,
            "reason": reason,
            "message": self.failure_message or termination_message(self.log_path),
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        if self.signal_number is not None:
            terminated["signal"] = self.signal_number
        if self.process is not None:
            terminated["containerID"] = self.container_id
        return terminated

    @property
    def container_id(self) -> str:
        return f"localprocess://{self.process.pid}" if self.process is not None else ""

    def status(self) -> JSON:
        """Return this container's entry in the pod's containerStatuses."""
        running = self.process is not None and not self.finished
        entry: JSON = {
            "name": self.name,
            "image": self.prepared.image,
            "imageID": "",
            "ready": running,
            "started": running,
            "restartCount": 0,
            "state": self.state(),
        }
        if self.process is not None:
            entry["containerID"] = self.container_id
        return entry


def termination_message(log_path: Path) -> str:
    """Return the end of a container log, as kubelet does for `FallbackToLogsOnError`."""
    text = tail(log_path, TERMINATION_MESSAGE_MAX_LINES)
    encoded = text.encode("utf-8")
    if len(encoded) > TERMINATION_MESSAGE_MAX_BYTES:
        text = encoded[-TERMINATION_MESSAGE_MAX_BYTES:].decode("utf-8", errors="ignore")
    return text


def condition(kind: str, status: bool, reason: str = "", transition_time: str = "") -> JSON:
    """Return a pod condition entry; the transition time defaults to now."""
    entry: JSON = {
        "type": kind,
        "status": "True" if status else "False",
        "lastTransitionTime": transition_time or now_rfc3339(),
    }
    if reason:
        entry["reason"] = reason
    return entry


class PodWorker(threading.Thread):
    """Runs one pod (restartPolicy Never) from start to its terminal phase."""

    def __init__(self, pod: JSON, context: RunnerContext, on_finished: Callable[[str], None]) -> None:
        metadata = pod["metadata"]
        super().__init__(name=f"pod-{metadata['namespace']}/{metadata['name']}", daemon=True)
        self.uid: str = metadata["uid"]
        self.namespace: str = metadata["namespace"]
        self.pod_name: str = metadata["name"]
        self._pod = pod
        self._context = context
        self._api = context.api
        self._on_finished = on_finished
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._deletion_requested = False
        self._deleted = False
        self._shutdown = False
        self._start_time = now_rfc3339()
        self._started_monotonic = time.monotonic()
        self._init_runs: list[ContainerRun] = []
        self._runs: list[ContainerRun] = []
        # Last reported status and transition time of each pod condition, by condition type.
        self._conditions: dict[str, tuple[bool, str]] = {}
        self.folder = context.pods_dir / pod_folder_name(self.namespace, self.pod_name)

    # Notifications from the runner's watch thread.

    def update(self, pod: JSON) -> None:
        """Take a newer version of the pod object; a deletionTimestamp starts the termination."""
        with self._lock:
            self._pod = pod
            if pod["metadata"].get("deletionTimestamp"):
                self._deletion_requested = True
        self._wake.set()

    def mark_deleted(self) -> None:
        """Note that the pod object is gone (force deletion): stop the processes without a grace period."""
        with self._lock:
            self._deleted = True
            self._deletion_requested = True
        self._wake.set()

    def shut_down(self) -> None:
        """Stop the processes because the runner stops."""
        with self._lock:
            self._shutdown = True
        self._wake.set()

    # The pod's life.

    def run(self) -> None:
        try:
            self._run_pod()
        except Exception:
            logger.exception("pod %s/%s: the pod worker failed", self.namespace, self.pod_name)
            self._stop_processes(0)
        finally:
            self._on_finished(self.uid)

    def _run_pod(self) -> None:
        logger.info("pod %s/%s: starting (uid %s)", self.namespace, self.pod_name, self.uid)
        self._prepare_folder()
        if not self._prepare_containers():
            return
        for run in self._init_runs:
            self._start_container(run)
            self._patch_status(self._status("Pending"))
            outcome = self._wait_for([run])
            if outcome != "exited":
                self._end(outcome)
                return
            if run.exit_code != 0:
                self._end("exited")
                return
        for run in self._runs:
            self._start_container(run)
        if any(run.process is not None for run in self._runs):
            self._patch_status(self._status("Running"))
        self._end(self._wait_for(self._runs))

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in self.folder.glob("*.log"):
            path.unlink()
        for path in self.folder.glob("*.pid"):
            path.unlink()
        (self.folder / "uid").write_text(self.uid + "\n")

    def _prepare_containers(self) -> bool:
        """Resolve volumes and containers, retrying transient errors; return False if the pod ended."""
        delay = 0.1
        reported = ""
        while True:
            try:
                self._resolve_containers()
                return True
            except ContainerConfigError as error:
                if error.permanent:
                    self._fail_configuration(str(error))
                    return False
                message = str(error)
            if message != reported:
                logger.info("pod %s/%s: waiting: %s", self.namespace, self.pod_name, message)
                self._patch_status(self._waiting_status("CreateContainerConfigError", message))
                reported = message
            outcome = self._sleep(delay)
            if outcome is not None:
                self._end(outcome)
                return False
            delay = min(delay * 2, _MAX_CONFIG_RETRY_SECONDS)

    def _resolve_containers(self) -> None:
        with self._lock:
            pod = self._pod
        source = ApiObjectSource(self._api)
        spec = pod["spec"]
        try:
            host_paths = materialise_volumes(pod, self.folder / "volumes", source)
        except OSError as error:
            raise ContainerConfigError(
                f"could not write the pod's volumes: {error}", permanent=True
            ) from error
        self._init_runs = [
            self._new_run(prepare_container(pod, container, host_paths, source))
            for container in spec.get("initContainers", [])
        ]
        self._runs = [
            self._new_run(prepare_container(pod, container, host_paths, source))
            for container in spec["containers"]
        ]

    def _new_run(self, prepared: PreparedContainer) -> ContainerRun:
        return ContainerRun(
            prepared, self.folder / f"{prepared.name}.log", self.folder / f"{prepared.name}.pid"
        )

    def _fail_configuration(self, message: str) -> None:
        logger.warning("pod %s/%s: failed: %s", self.namespace, self.pod_name, message)
        self._fail_before_start("CreateContainerConfigError", message)
        if self._deletion_requested:
            self._delete_pod_object()

    def _fail_before_start(self, reason: str, message: str) -> None:
        """Report the pod Failed for REASON although none of its processes started."""
        with self._lock:
            containers = self._pod["spec"]["containers"]
        status = self._waiting_status(reason, message)
        status.update(phase="Failed", reason=reason, message=message)
        status["containerStatuses"] = [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": START_FAILURE_EXIT_CODE,
                        "reason": reason,
                        "message": message,
                        "startedAt": self._start_time,
                        "finishedAt": now_rfc3339(),
                    }
                },
            }
            for container in containers
        ]
        self._patch_status(status)

    def _start_container(self, run: ContainerRun) -> None:
        prepared = run.prepared
        environment = process_environment(
            prepared.environment,
            hostname=self._pod["spec"].get("hostname") or self.pod_name,
            runner_environment=self._context.runner_environment,
            virtualenv_bin=self._context.virtualenv_bin,
            python_paths=self._context.python_paths,
        )
        working_dir = prepared.working_dir or self.folder
        run.started_at = now_rfc3339()
        try:
            with run.log_path.open("ab") as log:
                run.process = subprocess.Popen(
                    prepared.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=environment,
                    cwd=working_dir,
                    start_new_session=True,
                )
        except OSError as error:
            message = f"could not start {prepared.argv[0]!r} in {working_dir}: {error.strerror or error}"
            logger.warning("pod %s/%s container %s: %s", self.namespace, self.pod_name, run.name, message)
            run.fail_to_start("StartError", message)
            return
        self._write_pid_file(run)
        threading.Thread(target=self._notify_exit, args=(run.process,), daemon=True).start()
        logger.info(
            "pod %s/%s container %s: started PID %d: %s",
            self.namespace,
            self.pod_name,
            run.name,
            run.process.pid,
            prepared.spec_command,
        )

    def _notify_exit(self, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        self._wake.set()

    def _write_pid_file(self, run: ContainerRun) -> None:
        assert run.process is not None
        start_ticks = read_start_ticks(run.process.pid) or 0
        record = ProcessRecord(
            f"{self.namespace}/{self.pod_name}/{run.name}", run.process.pid, start_ticks, str(run.log_path)
        )
        run.pid_path.write_text(json.dumps({"pod_uid": self.uid, **record.to_json()}) + "\n")

    def _active_deadline(self) -> float | None:
        seconds = self._pod["spec"].get("activeDeadlineSeconds")
        return None if seconds is None else self._started_monotonic + float(seconds)

    def _stop_reason(self) -> str | None:
        """Return why the pod must stop now ('deleted', 'shutdown', 'deadline'), or None."""
        with self._lock:
            if self._deletion_requested:
                return "deleted"
            if self._shutdown:
                return "shutdown"
        deadline = self._active_deadline()
        if deadline is not None and time.monotonic() >= deadline:
            return "deadline"
        return None

    def _sleep(self, seconds: float) -> str | None:
        """Wait SECONDS unless the pod must stop; return the stop reason, if any."""
        end = time.monotonic() + seconds
        while True:
            self._wake.clear()
            reason = self._stop_reason()
            if reason is not None or time.monotonic() >= end:
                return reason
            self._wake.wait(self._wait_timeout(end))

    def _wait_timeout(self, end: float | None) -> float | None:
        candidates = [moment for moment in (end, self._active_deadline()) if moment is not None]
        return max(0.0, min(candidates) - time.monotonic()) if candidates else None

    def _wait_for(self, runs: list[ContainerRun]) -> str:
        """Wait until all RUNS have exited ('exited') or the pod must stop (the stop reason)."""
        while True:
            self._wake.clear()
            for run in runs:
                run.collect_exit()
            if all(run.finished for run in runs):
                return "exited"
            reason = self._stop_reason()
            if reason is not None:
                return reason
            self._wake.wait(self._wait_timeout(None))

    def _grace_seconds(self, outcome: str) -> float:
        with self._lock:
            pod = self._pod
            deleted = self._deleted
        configured = pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_SECONDS)
        if outcome == "deleted":
            if deleted:
                return 0.0
            return float(pod["metadata"].get("deletionGracePeriodSeconds", configured))
        if outcome == "shutdown":
            return min(float(configured), self._context.shutdown_grace_seconds)
        return float(configured)

    def _stop_processes(self, grace_seconds: float) -> None:
        """Send SIGTERM to every running container process group, then SIGKILL after GRACE_SECONDS."""
        running = [
            run for run in self._init_runs + self._runs if run.process is not None and not run.finished
        ]
        for run in running:
            self._signal(run, signal.SIGTERM)
        kill_at = time.monotonic() + grace_seconds
        while True:
            self._wake.clear()
            for run in running:
                run.collect_exit()
            if all(run.finished for run in running):
                return
            if self._deleted:
                kill_at = min(kill_at, time.monotonic())
            remaining = kill_at - time.monotonic()
            if remaining <= 0:
                break
            self._wake.wait(remaining)
        for run in running:
            if not run.finished:
                self._signal(run, signal.SIGKILL)
        for run in running:
            assert run.process is not None
            run.process.wait()
            run.collect_exit()

    def _signal(self, run: ContainerRun, signum: signal.Signals) -> None:
        assert run.process is not None
        logger.info(
            "pod %s/%s container %s: sending %s", self.namespace, self.pod_name, run.name, signum.name
        )
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.process.pid, signum)

    def _end(self, outcome: str) -> None:
        """Stop what still runs, report the terminal phase and, after a deletion, delete the pod object."""
        if outcome != "exited":
            self._stop_processes(self._grace_seconds(outcome))
        if not self._started_any():
            self._end_before_start(outcome)
            return
        status = self._status(self._terminal_phase())
        if outcome == "deadline":
            status.update(reason="DeadlineExceeded", message=DEADLINE_MESSAGE)
        elif outcome == "shutdown":
            status.update(
                reason="NodeShutdown", message="The pod runner stopped, so it stopped the pod's processes"
            )
        logger.info("pod %s/%s: %s (%s)", self.namespace, self.pod_name, status["phase"], outcome)
        if not self._deleted:
            self._patch_status(status)
        if outcome == "deleted" and not self._deleted:
            self._delete_pod_object()

    def _end_before_start(self, outcome: str) -> None:
        # A pod deleted before it started is simply removed; after a runner shutdown it stays Pending, so
        # the next runner starts it.
        logger.info(
            "pod %s/%s: ended before any process started (%s)", self.namespace, self.pod_name, outcome
        )
        if outcome == "deadline":
            self._fail_before_start("DeadlineExceeded", DEADLINE_MESSAGE)
        elif outcome == "deleted" and not self._deleted:
            self._delete_pod_object()

    def _started_any(self) -> bool:
        """Return whether the worker tried to start a process (a failed start counts)."""
        return any(run.process is not None or run.finished for run in self._init_runs + self._runs)

    def _terminal_phase(self) -> str:
        runs = self._init_runs + self._runs
        succeeded = all(run.finished and run.exit_code == 0 for run in runs)
        return "Succeeded" if succeeded else "Failed"

    # Status reporting.

    def _status(self, phase: str) -> JSON:
        initialized = all(run.finished and run.exit_code == 0 for run in self._init_runs)
        running = phase == "Running"
        not_ready_reason = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
        status: JSON = {
            "phase": phase,
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": self._start_time,
            "conditions": [
                self._condition("PodReadyToStartContainers", True),
                self._condition(
                    "Initialized", initialized, "" if initialized else "ContainersNotInitialized"
                ),
                self._condition("ContainersReady", running, "" if running else not_ready_reason),
                self._condition("Ready", running, "" if running else not_ready_reason),
            ],
            "containerStatuses": [run.status() for run in self._runs],
        }
        if self._init_runs:
            status["initContainerStatuses"] = [run.status() for run in self._init_runs]
        return status

    def _condition(self, kind: str, status: bool, reason: str = "") -> JSON:
        """Return a pod condition that keeps its transition time while its status stays the same."""
        previous = self._conditions.get(kind)
        transition_time = previous[1] if previous is not None and previous[0] == status else now_rfc3339()
        self._conditions[kind] = (status, transition_time)
        return condition(kind, status, reason, transition_time)

    def _waiting_status(self, reason: str, message: str) -> JSON:
        with self._lock:
            spec = self._pod["spec"]
        waiting = {"waiting": {"reason": reason, "message": message}}
        return {
            "phase": "Pending",
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "startTime": self._start_time,
            "conditions": [
                self._condition("ContainersReady", False, "ContainersNotReady"),
                self._condition("Ready", False, "ContainersNotReady"),
            ],
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
                for container in spec["containers"]
            ],
        }

    def _patch_status(self, status: JSON) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}/status"
        body = {"metadata": {"uid": self.uid}, "status": status}
        delay = 0.2
        deadline = time.monotonic() + _STATUS_PATCH_RETRY_SECONDS
        while True:
            try:
                self._api.patch(path, body)
                return
            except KubeApiError as error:
                if error.status in (404, 409):
                    # The pod is gone, or a new pod with the same name has another UID.
                    return
                if 400 <= error.status < 500 and error.status != 429:
                    logger.warning(
                        "pod %s/%s: status patch rejected: %s", self.namespace, self.pod_name, error
                    )
                    return
                failure: Exception = error
            except _UNREACHABLE_ERRORS as error:
                failure = error
            if time.monotonic() + delay > deadline:
                logger.error(
                    "pod %s/%s: giving up the status patch after %.0f s: %s",
                    self.namespace,
                    self.pod_name,
                    _STATUS_PATCH_RETRY_SECONDS,
                    failure,
                )
                return
            logger.warning(
                "pod %s/%s: status patch failed, retrying in %.1f s: %s",
                self.namespace,
                self.pod_name,
                delay,
                failure,
            )
            time.sleep(delay)
            delay = min(delay * 2, _STATUS_PATCH_MAX_DELAY_SECONDS)

    def _delete_pod_object(self) -> None:
        """Delete the pod object with grace period 0, as kubelet does once the containers have stopped."""
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}"
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
        try:
            self._api.delete(path, body)
        except KubeApiError as error:
            if error.status not in (404, 409):
                logger.warning("pod %s/%s: delete failed: %s", self.namespace, self.pod_name, error)
        except _UNREACHABLE_ERRORS as error:
            # The pod watch fails as well then, and the runner's next listing deletes the pod.
            logger.warning("pod %s/%s: delete failed: %s", self.namespace, self.pod_name, error)


def stop_recorded_processes(pid_files: Iterable[Path], pod_uid: str | None = None) -> list[str]:
    """Stop the container processes recorded in PID_FILES and delete the files; return the process names.

    With POD_UID, only the files of that pod are used. A pod worker deletes a PID file when its process
    ends, so the files that remain name processes that a runner started and did not see end. The files
    store the process start time, so a PID that the kernel has given to another process is not touched.
    """
    stopped: list[str] = []
    for pid_path in pid_files:
        try:
            data = json.loads(pid_path.read_text())
            record = ProcessRecord.from_json(data)
        except (OSError, ValueError, KeyError) as error:
            logger.warning("skipping unreadable PID file %s: %s", pid_path, error)
            continue
        if pod_uid is not None and data.get("pod_uid") != pod_uid:
            continue
        if is_alive(record):
            stop_process(record, timeout_seconds=5.0)
            stopped.append(record.name)
        pid_path.unlink(missing_ok=True)
    return stopped


class FinishedPods:
    """UIDs of finished pods, so that stale watch events do not start them again; safe across threads.

    Only the newest MAX_SIZE UIDs are kept. An older pod whose events arrive again is recognised by its
    terminal phase instead.
    """

    def __init__(self, max_size: int = 10_000) -> None:
        self.max_size = max_size
        self._uids: dict[str, None] = {}
        self._lock = threading.Lock()

    def add(self, uid: str) -> None:
        with self._lock:
            self._uids[uid] = None
            while len(self._uids) > self.max_size:
                del self._uids[next(iter(self._uids))]

    def __contains__(self, uid: object) -> bool:
        with self._lock:
            return uid in self._uids
