"""Raw apiserver access for the benchmarks: watches, writes and the `/metrics` write counters.

Watches read the JSON lines themselves instead of building client models, so an event's arrival time
is taken as soon as its line is read. Every arrival time is `time.monotonic()` in this process.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client, config

JSON = dict[str, Any]
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})
_REQUEST_TOTAL = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


class Kube:
    """An admin connection to the apiserver, from a kubeconfig with a client certificate."""

    def __init__(self, kubeconfig: str) -> None:
        configuration = client.Configuration()
        loader: Any = config
        loader.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        self.api = client.ApiClient(configuration)
        self.host: str = configuration.host
        self._pool: urllib3.PoolManager = self.api.rest_client.pool_manager

    def request(self, method: str, path: str, body: JSON | None = None, *, patch: bool = False) -> JSON:
        """Send one request; return the decoded JSON body, or raise on a status of 400 or more."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/merge-patch+json" if patch else "application/json"
            data = json.dumps(body).encode()
        response = self._pool.request(method, self.host + path, body=data, headers=headers)
        if response.status >= 400:
            raise KubeError(f"{method} {path} failed with {response.status}: {response.data[:500]!r}")
        result: JSON = json.loads(response.data) if response.data else {}
        return result

    def write_counts(self) -> Counter[tuple[str, str]]:
        """Return the apiserver's write request counters, keyed by (verb, group/resource/subresource)."""
        response = self._pool.request("GET", self.host + "/metrics")
        if response.status != 200:
            raise KubeError(f"GET /metrics failed with {response.status}")
        counts: Counter[tuple[str, str]] = Counter()
        for line in response.data.decode().splitlines():
            match = _REQUEST_TOTAL.match(line)
            if match is None:
                continue
            labels = dict(_LABEL.findall(match["labels"]))
            if labels.get("verb") not in WRITE_VERBS or labels.get("dry_run"):
                continue
            resource = "/".join(
                part for part in (labels.get("group", ""), labels.get("resource", "")) if part
            )
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            counts[(labels["verb"], resource)] += int(float(match["value"]))
        return counts


class KubeError(RuntimeError):
    """An apiserver request failed."""


@dataclass
class ObjectTimes:
    """When this process first saw an object, and each phase it first reported (monotonic seconds)."""

    added: float | None = None
    phases: dict[str, float] = field(default_factory=dict)


class Recorder:
    """Watch one collection from a list's resourceVersion on, recording when each event arrives.

    PHASE_OF reads the phase from an object (`status.phase` for pods and ETLTasks). Callbacks run on
    the watch thread after the times are recorded.
    """

    def __init__(self, kube: Kube, path: str) -> None:
        self._kube = kube
        self._path = path
        self.times: dict[str, ObjectTimes] = {}
        self._lock = threading.Condition()
        self._stopped = False
        self._callbacks: list[Callable[[str, str, JSON], None]] = []
        listed = kube.request("GET", path)
        self._resource_version = str(listed["metadata"]["resourceVersion"])
        self._thread = threading.Thread(target=self._run, name=f"watch {path}", daemon=True)

    def on_event(self, callback: Callable[[str, str, JSON], None]) -> None:
        self._callbacks.append(callback)

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped = True

    def _run(self) -> None:
        pool: urllib3.PoolManager = self._kube.api.rest_client.pool_manager
        while not self._stopped:
            url = (
                f"{self._kube.host}{self._path}?watch=true&resourceVersion={self._resource_version}"
                "&timeoutSeconds=3600"
            )
            response = pool.request("GET", url, preload_content=False, timeout=urllib3.Timeout(read=None))
            buffer = b""
            try:
                for chunk in response.stream(65536):
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if line.strip():
                            self._handle(json.loads(line), time.monotonic())
                    if self._stopped:
                        break
            except urllib3.exceptions.HTTPError:
                # The apiserver ends watches when the cluster stops; otherwise watch again from the
                # last resourceVersion seen.
                if self._stopped:
                    return
            finally:
                response.release_conn()

    def _handle(self, event: JSON, arrived: float) -> None:
        kind = event["type"]
        body: JSON = event["object"]
        if kind == "ERROR":
            raise KubeError(f"watch of {self._path} failed: {body}")
        self._resource_version = body["metadata"]["resourceVersion"]
        name: str = body["metadata"]["name"]
        phase = (body.get("status") or {}).get("phase")
        with self._lock:
            times = self.times.setdefault(name, ObjectTimes())
            if kind == "ADDED" and times.added is None:
                times.added = arrived
            if phase and phase not in times.phases:
                times.phases[phase] = arrived
            self._lock.notify_all()
        for callback in self._callbacks:
            callback(kind, name, body)

    def wait(self, condition: Callable[[dict[str, ObjectTimes]], bool], timeout: float, what: str) -> None:
        """Block until CONDITION holds over the recorded times; raise TimeoutError after TIMEOUT s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition(self.times):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                self._lock.wait(min(remaining, 1.0))

    def seen_in_phase(self, phase: str) -> int:
        with self._lock:
            return sum(1 for times in self.times.values() if phase in times.phases)
