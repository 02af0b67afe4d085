"""Service-account helpers of the chart tests: what an account may do, and the operator run as one.

`rules_of` requests an account's rules in a namespace from the apiserver (a SelfSubjectRulesReview
sent while impersonating the account), `can_i` checks one verb with `kubectl auth can-i --as`, and
`ChartOperator` runs etl-operator as a local process with the account's token.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from .support import RuleKey, Tools, expand, rule_set

# What every authenticated user may do (the system:basic-user ClusterRole): review its own access.
SELF_REVIEW_RULES = (
    expand("authentication.k8s.io", "selfsubjectreviews", "create")
    | expand("authorization.k8s.io", "selfsubjectaccessreviews", "create")
    | expand("authorization.k8s.io", "selfsubjectrulesreviews", "create")
)


def rules_of(admin: client.ApiClient, user: str, namespace: str) -> set[RuleKey]:
    """Return the resource rules of `user` in `namespace`, as the apiserver's authorizer evaluates them."""
    configuration = admin.configuration
    impersonating: Any = client.ApiClient(configuration)
    # The apiserver adds the service account groups when it impersonates a service account user.
    impersonating.set_default_header("Impersonate-User", user)
    try:
        api: Any = client.AuthorizationV1Api(impersonating)
        review = api.create_self_subject_rules_review({"spec": {"namespace": namespace}})
    finally:
        impersonating.close()
    assert not review.status.incomplete, review.status.evaluation_error
    return rule_set(rule.to_dict() for rule in review.status.resource_rules)


def can_i(tools: Tools, kubeconfig: Path, user: str, verb: str, resource: str, namespace: str) -> bool:
    """Return whether `user` may `verb` the `resource` in `namespace`, by `kubectl auth can-i --as`.

    A subresource follows a slash, as in RBAC rules: `pods/exec`.
    """
    resource, _, subresource = resource.partition("/")
    arguments = ["auth", "can-i", verb, resource, "--namespace", namespace, f"--as={user}"]
    if subresource:
        # kubectl reads TYPE/NAME as a resource name, so the subresource needs its own flag.
        arguments.append(f"--subresource={subresource}")
    result = tools.kubectl(*arguments, kubeconfig=kubeconfig, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i failed: {result.stderr}"
    return answer == "yes"


def account_kubeconfig(tools: Tools, admin: Path, namespace: str, account: str, folder: Path) -> Path:
    """Write a kubeconfig that authenticates with a short-lived token of the service account."""
    token = tools.kubectl(
        "create", "token", account, "--namespace", namespace, "--duration=10m", kubeconfig=admin
    ).stdout.strip()
    cluster = yaml.safe_load(admin.read_text())["clusters"][0]["cluster"]
    path = folder / f"{account}.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "cluster", "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": account, "context": {"cluster": "cluster", "user": account}}],
                "current-context": account,
            }
        )
    )
    path.chmod(0o600)
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ChartOperator:
    """etl-operator run as a local process with the Deployment's arguments and a service account's token.

    The liveness endpoint moves from 0.0.0.0 to a free port on 127.0.0.1.
    """

    kubeconfig: Path
    arguments: Sequence[str]
    environment: Mapping[str, str]
    log_path: Path

    def __post_init__(self) -> None:
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        arguments = [
            f"--liveness=http://127.0.0.1:{self.port}/healthz" if item.startswith("--liveness=") else item
            for item in self.arguments
        ]
        return [sys.executable, "-m", "etl_operator", *arguments]

    @contextlib.contextmanager
    def running(self, timeout: float = 60.0) -> Iterator[None]:
        """Start the operator, wait until it has started, and stop it with SIGTERM on exit."""
        environment = {**os.environ, **self.environment, "KUBECONFIG": str(self.kubeconfig)}
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.command(), env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_for("kube-etl operator started", timeout)
            yield
        finally:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _wait_for(self, line: str, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while line not in self.log():
            if self._process.poll() is not None:
                raise AssertionError(f"etl-operator exited with {self._process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"etl-operator did not start within {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def healthz(self, timeout: float = 30.0) -> int:
        """Return the HTTP status of kopf's liveness endpoint, once it responds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as response:
                    status: int = response.status
                    return status
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def operator_requests_log(log: str) -> str:
    """Return the operator's log without the lines that report a pod's own start-up errors.

    The pod runner reads a just-bound pod's Secrets as its Node, which the Node authorizer allows a
    moment later, so a pod may report "403 Forbidden" once; that is the node's request, not the
    operator's, and the operator only copies it into the task's message.
    """
    return "\n".join(line for line in log.splitlines() if "cannot start:" not in line)
